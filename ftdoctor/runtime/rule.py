"""Base class and registry for runtime rules (Lightning-callback style).

A rule subscribes to events by defining ``on_<event>`` methods, keeps its own
state, and calls :meth:`RuntimeRule.emit` once, at the step it becomes
certain. The doctor calls each handler inside a guard: an exception in a rule
becomes a doctor error, never a crash of the user's training.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ftdoctor.catalogue import make_finding
from ftdoctor.findings import Finding
from ftdoctor.registry import RuleRegistry

#: slug -> rule class, filled by @register_runtime_rule
RUNTIME_RULES: RuleRegistry = RuleRegistry("runtime")
register_runtime_rule = RUNTIME_RULES.register


class RuntimeRule:
    slug: ClassVar[str]
    #: Regexes matched against ``"ExceptionType: message"`` of a crash that this
    #: rule's finding explains (e.g. label-out-of-range: ``Target 2 is out of bounds``).
    explains_crashes: ClassVar[tuple[str, ...]] = ()
    #: Slugs of other rules whose findings are symptoms of this rule's finding (one fault, one
    #: root cause: see runtime/causes.py); narrow it by overriding :meth:`explains_finding`.
    explains_findings: ClassVar[frozenset[str]] = frozenset()
    #: The core signals (``events.CORE_SIGNALS``) without which this rule cannot judge;
    #: a run that never showed one of them lists the rule under ``coverage.not_run``.
    needs: ClassVar[tuple[str, ...]] = ()
    #: Handlers this rule does not want on routine occasions — a training batch (``on_batch``,
    #: ``on_forward``, ``on_loss_input``) or a step whose gradients are not measured
    #: (``on_before_step``, ``on_after_step``): those skip the rule without a call. What the doctor
    #: pays per step is what routine handlers cost.
    skip_routine: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, options: Any = None) -> None:
        self.options = options  # the doctor's thresholds (DoctorOptions)
        self.findings: list[Finding] = []
        self.fired = False
        #: set True once the rule has judged everything it ever will; the doctor
        #: then stops sending it events (a fired rule is done too)
        self.done = False
        #: handlers whose window has closed (see :meth:`stop_listening`)
        self.closed_handlers: set[str] = set()
        self.listening_changed = False

    def emit(self, step: int, message: str, fix: str, evidence: dict[str, Any], **location: Any) -> None:
        """Record this rule's finding once; later calls are ignored."""
        if self.fired:
            return
        self.fired = True
        self.findings.append(make_finding(self.slug, message, fix, step=step, evidence=evidence, **location))

    def stop_listening(self, *handlers: str) -> None:
        """Stop receiving these events (e.g. ``"on_batch"`` once a batch window has closed);
        the others still arrive. Cheaper per step than checking a window in the handler."""
        if not set(handlers) <= self.closed_handlers:
            self.closed_handlers.update(handlers)
            self.listening_changed = True

    def explains(self, error: BaseException) -> bool:
        """Whether this rule fired and its finding says why the run crashed with ``error``."""
        text = f"{type(error).__name__}: {error}"
        return self.fired and any(re.search(pattern, text) for pattern in self.explains_crashes)

    def explains_finding(self, finding: Finding) -> bool:
        """Whether this rule's finding is the root cause of ``finding`` (another rule's)."""
        return self.fired and finding.rule in self.explains_findings

    # Handlers, overridden by subclasses that care (names match events.py):
    # on_preflight(Preflight), on_batch(BatchSeen), on_forward_call(ForwardCall), on_forward(ForwardDone),
    # on_loss_input(LossInput), on_backward(BackwardDone),
    # on_before_step(OptimizerStep), on_after_step(OptimizerStep),
    # on_zero_grad(ZeroGrad), on_optimizer_added(OptimizerAdded), on_eval_pass(EvalPass),
    # on_eval_replay(EvalReplay),
    # on_evaluation(Evaluation), on_run_end(RunEnded)
