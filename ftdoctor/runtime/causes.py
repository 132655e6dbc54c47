"""One fault, one root cause: symptoms are folded under the finding that explains them.

A runtime rule declares which other rules' findings its own finding can explain
(``RuntimeRule.explains_findings``, narrowed by ``RuntimeRule.explains_finding``
where the evidence must match). When both fired, the symptom is listed under the
root cause as ``related`` instead of standing beside it as a second diagnosis.
The doctor knows no specific rule: it only asks the rules.
"""

from __future__ import annotations

from typing import Callable

from ftdoctor.findings import Finding

#: explains(root, symptom): whether ``root``'s rule says ``symptom`` is a consequence of it
Explains = Callable[[Finding, Finding], bool]


def fold_symptoms(findings: list[Finding], explains: Explains) -> list[Finding]:
    """``findings`` with every explained finding moved under its root cause (order kept otherwise).

    A finding explained by another that it explains in turn (a cycle) stays where it is: the
    rules disagree, so neither is folded. Chains flatten: a symptom's own symptoms follow it.
    """
    top = list(findings)
    folded = True
    while folded:
        folded = False
        for symptom in top:
            root = next((r for r in top if r is not symptom and _causes(r, symptom, explains)), None)
            if root is not None:
                top[top.index(root)] = root.with_related(symptom)
                top.remove(symptom)
                folded = True
                break
    return top


def _causes(root: Finding, symptom: Finding, explains: Explains) -> bool:
    """``root`` (or a symptom already under it) explains ``symptom``, and not the other way round."""
    return any(explains(cause, symptom) and not explains(symptom, cause) for cause in (root, *root.related))
