"""The catalogue is well-formed: unique codes and slugs, the contract's slugs all present."""

from __future__ import annotations

import re

from ftdoctor.catalogue import load_catalogue, lookup

CONTRACT_STATIC = """missing-zero-grad zero-grad-misplaced scheduler-before-optimizer lr-out-of-range
num-labels-mismatch orphan-head base-model-no-logits head-input-dim-mismatch softmax-before-loss
missing-train-mode missing-eval-mode missing-no-grad-eval missing-train-after-eval loss-accumulates-graph
freeze-noop detached-loss eval-on-train-split train-loader-not-shuffled tokenizer-model-mismatch
grad-accum-unscaled-loss optimizer-stale-params dict-batch-attribute-access load-best-strategy-mismatch
random-init-not-pretrained seed-not-set parse-error""".split()

CONTRACT_RUNTIME = """grads-accumulating lr-too-high lr-too-low overfitting-gap label-out-of-range
label-count-mismatch label-type-mismatch class-imbalance head-output-mismatch dead-parameters
params-not-in-optimizer no-trainable-params non-finite-loss exploding-gradients dropout-in-eval
eval-with-grad train-val-overlap unshuffled-batches softmax-before-loss""".split()


#: 0.2: new runtime rules, and static rules that gained a runtime side (one slug, one code, both kinds)
CONTRACT_RUNTIME_02 = "prediction-collapse eval-nondeterministic weight-decay-out-of-range".split()
CONTRACT_BOTH_KINDS_02 = """missing-attention-mask head-not-trained missing-train-mode optimizer-recreated-in-loop
random-init-not-pretrained""".split()


def test_the_02_runtime_slugs_are_catalogued_with_their_kinds() -> None:
    catalogue = load_catalogue()
    for slug in CONTRACT_RUNTIME_02:
        assert catalogue[slug].kinds == ("runtime",), slug
    for slug in CONTRACT_BOTH_KINDS_02:
        assert catalogue[slug].kinds == ("static", "runtime"), slug


def test_every_contract_slug_is_catalogued_with_its_kind() -> None:
    catalogue = load_catalogue()
    for slug in CONTRACT_STATIC:
        assert "static" in catalogue[slug].kinds, slug
    for slug in CONTRACT_RUNTIME:
        assert "runtime" in catalogue[slug].kinds, slug


def test_codes_and_slugs_are_unique_and_well_formed() -> None:
    docs = list(load_catalogue().values())
    assert len({d.code for d in docs}) == len(docs)
    for doc in docs:
        assert re.fullmatch(r"FTD\d{3}", doc.code), doc.code
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", doc.slug), doc.slug
        assert doc.path is not None and doc.path.name == f"{doc.code}-{doc.slug}.md"


def test_seed_not_set_is_info() -> None:
    assert load_catalogue()["seed-not-set"].severity.value == "info"


def test_lookup_by_slug_and_code() -> None:
    assert lookup("missing-zero-grad") is lookup("ftd101") is lookup("FTD101")
    assert lookup("no-such-rule") is None


CONTRACT_STATIC_0_2 = """test-split-selection model-output-tuple-unpack metric-args-swapped best-state-by-reference
optimizer-recreated-in-loop argparse-type-bool unknown-param-group-key unstable-label-map missing-attention-mask
head-not-trained""".split()


def test_static_rules_added_in_0_2_are_catalogued_with_their_codes() -> None:
    catalogue = load_catalogue()
    for slug in CONTRACT_STATIC_0_2:
        assert "static" in catalogue[slug].kinds, slug
    codes = {catalogue[slug].code for slug in CONTRACT_STATIC_0_2}
    assert codes == {f"FTD{n}" for n in range(126, 136)}, codes
