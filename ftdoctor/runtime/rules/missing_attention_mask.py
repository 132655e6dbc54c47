"""missing-attention-mask (runtime side): padded ``input_ids`` reach the model without an ``attention_mask``.

Over the first ``mask_check_forwards`` forwards, reads the call's inputs (``ForwardCall``):
``input_ids`` passed by name, inside a dict batch (``model(**batch)`` or ``model(batch)``),
or first positionally to a transformers model. A transformers model inside a watched
wrapper (``self.bert(ids)`` in a custom ``nn.Module``) is read too, through a forward
pre-hook of its own that lives as long as the window: a wrapper may get the mask and drop
it. When no ``attention_mask`` comes with them,
it checks whether a row starts or ends with the pad id (right or left padding) — the pad id
from the model's config (``config.pad_token_id``; silent when it is unset, or equal to the
end-of-sequence id, where a trailing pad is ambiguous). The check costs one reduction per
such forward, and none when a mask is passed.
"""

from __future__ import annotations

from typing import Any

import torch

from ftdoctor.runtime.events import ForwardCall, Preflight, RunEnded
from ftdoctor.runtime.rule import RuntimeRule, register_runtime_rule
from ftdoctor.runtime.rules._checkpoints import pretrained_parts


@register_runtime_rule
class MissingAttentionMask(RuntimeRule):
    slug = "missing-attention-mask"
    needs = ()  # reads the model inputs of the first forwards, no core signal

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.pad_id: int | None = None
        self.positional = False  # the watched model is a transformers model: input_ids may come first positionally
        self.forwards = 0
        self.inner_forwards = 0
        self.handles: list[Any] = []  # forward pre-hooks on transformers models inside watched wrappers
        self.latest: ForwardCall | None = None  # the watched call the inner forwards belong to

    def on_preflight(self, event: Preflight) -> None:
        parts = pretrained_parts(event.model)
        config = getattr(event.model, "config", None) or next((getattr(p.module, "config", None) for p in parts), None)
        pad, eos = getattr(config, "pad_token_id", None), getattr(config, "eos_token_id", None)
        if not isinstance(pad, int) or pad == eos or (isinstance(eos, list) and pad in eos):
            self.done = True
            return
        self.pad_id = pad
        self.positional = any(part.prefix == "" for part in parts)
        for module in (event.modules or {"": event.model}).values():
            for part in pretrained_parts(module):
                if part.prefix:  # inside a wrapper: its calls are not the watched module's calls
                    self.handles.append(part.module.register_forward_pre_hook(self._inner_call, with_kwargs=True))

    def on_forward_call(self, event: ForwardCall) -> None:
        if self.pad_id is None:
            return  # before the pre-flight (an evaluation first): judged from the next forwards
        self.latest = event
        self.forwards += 1
        if self.forwards > self.options.mask_check_forwards:
            self._finish()
            return
        self._judge(event, event.args, event.kwargs, self.positional)

    def on_run_end(self, event: RunEnded) -> None:
        self._finish()

    def _inner_call(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A torch hook outside the doctor's guard: it must never raise into the user's forward."""
        try:
            self.inner_forwards += 1
            if self.fired or self.latest is None or self.inner_forwards > self.options.mask_check_forwards:
                return
            self._judge(self.latest, args, kwargs, positional=True)
            if self.fired:  # the doctor collects the finding at its next event; the hooks go now
                self._remove_hooks()
        except Exception:  # noqa: BLE001 (a broken check is silence, never a crash of the training)
            self._remove_hooks()

    def _finish(self) -> None:
        self._remove_hooks()
        self.done = True

    def _remove_hooks(self) -> None:
        handles, self.handles = self.handles, []
        for handle in handles:
            handle.remove()

    def _judge(self, event: ForwardCall, args: tuple[Any, ...], kwargs: dict[str, Any], positional: bool) -> None:
        assert self.pad_id is not None
        input_ids, mask = _inputs(args, kwargs, positional)
        if input_ids is None or mask is not None:
            return
        if input_ids.dim() != 2 or input_ids.dtype.is_floating_point or input_ids.shape[1] < 2:
            return
        edges = torch.stack([input_ids[:, 0], input_ids[:, -1]]) == self.pad_id
        padded = int(edges.any(0).sum())  # one read-back, and only for forwards without a mask
        if padded:
            self.emit(
                event.step,
                f"a forward got padded input_ids ({padded} of {input_ids.shape[0]} rows start or end with the pad "
                f"id {self.pad_id}) and no attention_mask, so the model attends to the padding and its outputs "
                f"depend on how long the batch's longest example is",
                "pass the tokenizer's attention_mask with the input_ids: model(input_ids=..., "
                "attention_mask=batch['attention_mask']) or model(**batch)",
                {"pad_token_id": self.pad_id, "padded_rows": padded, "rows": int(input_ids.shape[0]),
                 "phase": event.phase},
            )


def _inputs(args: tuple[Any, ...], kwargs: dict[str, Any], positional: bool) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of a model call; (None, None) when the ids cannot be told apart."""
    if isinstance(kwargs.get("input_ids"), torch.Tensor):
        return kwargs["input_ids"], _mask(kwargs, args[1] if positional and len(args) > 1 else None)
    for value in (*args, *kwargs.values()):
        if isinstance(value, dict) and isinstance(value.get("input_ids"), torch.Tensor):
            return value["input_ids"], _mask(value, kwargs.get("attention_mask"))
    if positional and args and isinstance(args[0], torch.Tensor):
        return args[0], _mask(kwargs, args[1] if len(args) > 1 else None)
    return None, None


def _mask(mapping: dict[str, Any], fallback: Any) -> Any:
    mask = mapping.get("attention_mask")
    return mask if mask is not None else fallback
