"""eval-nondeterministic: the same batch, run twice in eval mode without gradients, gives different outputs.

At the first evaluation forward made in eval mode (``model.training`` False, under
``no_grad``/``inference_mode`` or ``doctor.evaluation()``) the doctor replays that
forward once (see ``EvalReplay``). Outputs that differ by more than
``replay_tolerance`` x their largest magnitude mean randomness is still active in
evaluation whatever the module flags say — a custom layer that calls
``F.dropout(x, p, training=True)``, or reads its rate from the module instead of
``self.training`` (transformers PR 33844). A flag-level train-mode evaluation is
dropout-in-eval's finding: no replay is made then. Cost: one extra forward per run.
"""

from __future__ import annotations

from ftdoctor.runtime.events import EvalReplay
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule


@register_runtime_rule
class EvalNondeterministic(RuntimeRule):
    slug = "eval-nondeterministic"
    needs = ("evaluation", "logits")

    def on_eval_replay(self, event: EvalReplay) -> None:
        self.done = True  # once, at the first evaluation
        first, second = event.first, event.second
        if first.shape != second.shape or not first.is_floating_point() or first.numel() == 0:
            return
        first, second = first.float(), second.float()
        difference, scale = (first - second).abs().max(), first.abs().max()
        difference, scale = float(difference), float(scale)  # one read-back, once per run
        tolerance = self.options.replay_tolerance * max(scale, 1e-6)
        if difference <= tolerance:
            return
        self.emit(
            event.step,
            f"the first evaluation batch, run twice in eval mode without gradients, gave different outputs "
            f"(largest difference {difference:.3g}, {difference / max(scale, 1e-12):.1%} of the outputs' scale): "
            f"something random is still active in evaluation although model.eval() was called",
            "find the layer that ignores eval mode — e.g. F.dropout(x, p, training=True) or a dropout rate read "
            "from the module — and make it use self.training (F.dropout(x, p, training=self.training)) "
            "or nn.Dropout",
            {"max_abs_difference": difference, "output_scale": scale, "tolerance": tolerance,
             "relative_tolerance": self.options.replay_tolerance},
        )
