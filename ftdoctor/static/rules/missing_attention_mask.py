"""missing-attention-mask: padded positions are attended to, averaged over, or the mask means the opposite.

Three shapes, each only when the code proves the padding:

* a transformers model called with ``input_ids`` that are padded (a tokenizer call with ``padding=``
  over several texts, ``pad_sequences``/``pad_sequence``, through names, ``.to(device)``, tensors and a
  ``TensorDataset`` that a DataLoader batches) and no ``attention_mask`` (and no ``**kwargs``);
* mean pooling ``hidden.mean(dim=1)`` over the ``last_hidden_state`` of a transformers model that was
  given an ``attention_mask`` (so the batch has padding), without using the mask;
* a transformers-style mask (1 = keep) passed as PyTorch's ``key_padding_mask`` (True = ignore) without
  inverting it, proven by the same tensor being passed as ``attention_mask=`` to a transformers model
  or coming from a tokenizer.
"""

from __future__ import annotations

import ast
from typing import Iterator

from ftdoctor.findings import Finding
from ftdoctor.static.constants import producers, resolve_constant
from ftdoctor.static.model import ModuleModel, call_name, expr_key, keyword
from ftdoctor.static.modelfacts import describe, is_library_model
from ftdoctor.static.rule import StaticRule, register_static_rule

_PADDERS = frozenset({"pad_sequences", "pad_sequence"})
_SAME_TENSOR = frozenset({"to", "cuda", "cpu", "long", "int", "squeeze", "unsqueeze", "contiguous", "clone", "detach"})
_TENSOR_BUILDERS = frozenset({"tensor", "LongTensor", "as_tensor", "from_numpy", "array", "asarray", "stack", "cat"})
_KEY_PADDING = frozenset({"key_padding_mask", "src_key_padding_mask", "tgt_key_padding_mask",
                          "memory_key_padding_mask"})
_TORCH_ATTENTION = ("torch.nn.MultiheadAttention", "torch.nn.TransformerEncoder", "torch.nn.TransformerEncoderLayer",
                    "torch.nn.TransformerDecoder", "torch.nn.TransformerDecoderLayer", "torch.nn.Transformer")
_MAX_DEPTH = 10


@register_static_rule
class MissingAttentionMask(StaticRule):
    slug = "missing-attention-mask"

    def check(self, module: ModuleModel) -> Iterator[Finding]:
        for call in module.calls():
            yield from self._unmasked_forward(module, call)
            yield from self._mean_over_padding(module, call)
            yield from self._inverted_key_padding(module, call)

    def _unmasked_forward(self, module: ModuleModel, call: ast.Call) -> Iterator[Finding]:
        if not isinstance(call.func, (ast.Name, ast.Attribute)) or any(kw.arg is None for kw in call.keywords):
            return
        if keyword(call, "attention_mask", 1) is not None or keyword(call, "inputs_embeds") is not None:
            return
        input_ids = keyword(call, "input_ids", 0)
        if input_ids is None or not is_library_model(module, module.value_of(call.func)):
            return
        padding = _padding(module, input_ids, 0)
        if padding is None:
            return
        yield self.finding(
            module, call,
            f"`{describe(module, call.func)}` gets padded input_ids (`{describe(module, input_ids)}`, padded at line "
            f"{padding.lineno}) but no attention_mask, so every position attends to the padding tokens and the "
            "outputs change with the batch's padding",
            "pass the tokenizer's mask: attention_mask=encoding[\"attention_mask\"] (or model(**encoding))",
        )

    def _mean_over_padding(self, module: ModuleModel, call: ast.Call) -> Iterator[Finding]:
        if call_name(call) != "mean" or not isinstance(call.func, ast.Attribute):
            return
        if module.qualified_name(call.func) == "torch.mean":
            hidden, dim = (call.args[0] if call.args else None), keyword(call, "dim", 1)
        elif module.qualified_name(call.func) is None:
            hidden, dim = call.func.value, keyword(call, "dim", 0)
        else:
            return
        if hidden is None or dim is None or resolve_constant(module, dim) not in (1, -2):
            return
        forward = _hidden_states_of(module, hidden, 0)
        if forward is None or keyword(forward, "attention_mask", 1) is None:
            return
        yield self.finding(
            module, call,
            f"`{describe(module, call)}` averages the token vectors of `{describe(module, forward.func)}` (line "
            f"{forward.lineno}) over every position, padding included, although the batch is padded (it gets an "
            "attention_mask): shorter texts' embeddings are pulled towards the padding vector",
            "weight by the mask: mask = attention_mask.unsqueeze(-1).type_as(hidden); "
            "(hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)",
        )

    def _inverted_key_padding(self, module: ModuleModel, call: ast.Call) -> Iterator[Finding]:
        for kw in call.keywords:
            if kw.arg not in _KEY_PADDING:
                continue
            owner = module.value_of(call.func)
            if owner.qualname is None or not owner.qualname.endswith(_TORCH_ATTENTION):
                continue
            mask = _strip_same_tensor(kw.value)
            if expr_key(mask) is None or not _keep_mask(module, mask, call):
                continue
            yield self.finding(
                module, kw.value,
                f"`{kw.arg}={describe(module, kw.value)}` passes a transformers attention mask (1 = real token) "
                f"where PyTorch expects True = padding to ignore: every real token is masked out and attention "
                "runs on the padding",
                f"invert it: {kw.arg}=({describe(module, mask)} == 0)",
            )


def _strip_same_tensor(node: ast.expr) -> ast.expr:
    """``mask.bool().to(device)`` -> ``mask`` (casts and moves keep the meaning)."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
        *_SAME_TENSOR, "bool", "byte", "float"
    ):
        node = node.func.value
    return node


def _padding(module: ModuleModel, node: ast.AST, depth: int) -> ast.AST | None:
    """Where ``node``'s token ids were padded, when every value it may hold is padded."""
    if depth > _MAX_DEPTH:
        return None
    sources = producers(module, node) or ([node] if not isinstance(node, ast.Name) else [])
    found = [_padded_source(module, s, depth + 1) for s in sources]
    return found[0] if found and all(f is not None for f in found) else None


def _padded_source(module: ModuleModel, node: ast.expr, depth: int) -> ast.AST | None:
    if isinstance(node, ast.Subscript):
        key = resolve_constant(module, node.slice)
        if key == "input_ids":
            return _padding_tokenizer(module, node.value)
        if isinstance(key, int):
            return _batch_element(module, node.value, key, depth)
        return None
    if isinstance(node, ast.Attribute):
        return _padding_tokenizer(module, node.value) if node.attr == "input_ids" else None
    if not isinstance(node, ast.Call):
        return None
    name = call_name(node) or ""
    if name in _PADDERS:
        return node
    if isinstance(node.func, ast.Attribute) and name in _SAME_TENSOR and module.qualified_name(node.func) is None:
        return _padding(module, node.func.value, depth)
    if name in _TENSOR_BUILDERS and node.args and module.qualified_name(node.func):
        return _padding(module, node.args[0], depth)
    return None


def _padding_tokenizer(module: ModuleModel, encoding: ast.expr) -> ast.Call | None:
    """The tokenizer call that produced ``encoding``, when it pads a batch of several texts."""
    sources = producers(module, encoding) or []
    calls = [s for s in sources if isinstance(s, ast.Call)]
    if not calls or len(calls) != len(sources):
        return None
    for call in calls:
        func = call.func
        tokenizer = func.value if isinstance(func, ast.Attribute) and call_name(call) in (
            "batch_encode_plus", "encode_plus", "__call__") else func
        if module.value_of(tokenizer).kind != "tokenizer" or not _pads(module, call):
            return None
    return calls[0]


def _pads(module: ModuleModel, call: ast.Call) -> bool:
    padding = resolve_constant(module, keyword(call, "padding"))
    legacy = resolve_constant(module, keyword(call, "pad_to_max_length"))
    if padding == "max_length" or legacy is True:
        return True
    if padding not in (True, "longest"):
        return False
    texts = keyword(call, "text", 0)
    return texts is not None and not isinstance(resolve_constant(module, texts), str)  # one text is never padded


def _batch_element(module: ModuleModel, batch: ast.expr, index: int, depth: int) -> ast.AST | None:
    """``batch[i]`` of a DataLoader over ``TensorDataset(a, b, c)``: the padding of the i-th tensor."""
    info = module.value_of(batch)
    if info.kind != "batch" or info.origin is None:
        return None
    loader = info.origin.origin().info  # the batch binding -> the DataLoader it iterates
    dataset = loader.argument("dataset", 0) if loader.kind == "dataloader" else None
    return _tensor_dataset_part(module, dataset, index, depth) if dataset is not None else None


def _tensor_dataset_part(module: ModuleModel, dataset: ast.expr, index: int, depth: int) -> ast.AST | None:
    sources = producers(module, dataset)
    if len(sources) != 1 or not isinstance(sources[0], ast.Call) or call_name(sources[0]) != "TensorDataset":
        return None
    parts = sources[0].args
    if index >= len(parts) or any(isinstance(p, ast.Starred) for p in parts):
        return None
    return _padding(module, parts[index], depth + 1)


def _hidden_states_of(module: ModuleModel, node: ast.expr, depth: int) -> ast.Call | None:
    """The transformers forward call whose token states ``node`` is (``out.last_hidden_state``, ``out[0]``)."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(node, ast.Name):
        sources = producers(module, node)
        found = [_hidden_states_of(module, s, depth + 1) for s in sources if s is not node]
        return found[0] if found and all(found) and len(found) == len(sources) else None
    if isinstance(node, ast.Attribute) and node.attr == "last_hidden_state":
        return _forward_call(module, node.value)
    if isinstance(node, ast.Subscript) and resolve_constant(module, node.slice) in (0, "last_hidden_state"):
        return _forward_call(module, node.value)
    return None


def _forward_call(module: ModuleModel, node: ast.expr) -> ast.Call | None:
    sources = [node] if isinstance(node, ast.Call) else producers(module, node)
    if len(sources) != 1 or not isinstance(sources[0], ast.Call):
        return None
    call = sources[0]
    func = call.func
    if not isinstance(func, (ast.Name, ast.Attribute)):
        return None
    info = module.value_of(func)
    return call if is_library_model(module, info) and not info.is_head else None


def _keep_mask(module: ModuleModel, mask: ast.expr, at: ast.Call) -> bool:
    """``mask`` holds 1 for real tokens: it is given as ``attention_mask=`` to a transformers model in the same
    function, or comes from a tokenizer's ``attention_mask``."""
    key = expr_key(mask)
    scope = module.scope_of(at)
    for call in scope.calls:
        passed = keyword(call, "attention_mask")
        if passed is not None and expr_key(_strip_same_tensor(passed)) == key and isinstance(call.func, (ast.Name, ast.Attribute)):
            if is_library_model(module, module.value_of(call.func)):
                return module.binding_of(passed) is module.binding_of(mask)
    for source in producers(module, mask):
        if isinstance(source, ast.Subscript) and resolve_constant(module, source.slice) == "attention_mask":
            if _tokenizer_output(module, source.value):
                return True
        elif isinstance(source, ast.Attribute) and source.attr == "attention_mask" and _tokenizer_output(module, source.value):
            return True
    return False


def _tokenizer_output(module: ModuleModel, node: ast.expr) -> bool:
    sources = producers(module, node)
    return bool(sources) and all(
        isinstance(s, ast.Call) and module.value_of(s.func if not isinstance(s.func, ast.Attribute) or call_name(s) not in (
            "batch_encode_plus", "encode_plus") else s.func.value).kind == "tokenizer"
        for s in sources
    )
