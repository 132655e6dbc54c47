"""Library knowledge as data: what well-known classes and callables do to a training run.

The static engines (:mod:`ftdoctor.static.analysis_values`, :mod:`ftdoctor.static.analysis_flow`)
read these tables; rules never name library classes themselves. Entries are *resolved qualified
names* (``torch.optim.LBFGS``, never what a script happened to call a variable), or, for open class
families (``BertForSequenceClassification``, ``StableDiffusionPipeline``), a name pattern that only
applies to a class reached through a known library or through the ``from_pretrained`` protocol.

When a callee is in none of these tables, the engine does not guess: it stays silent.

Sources: the libraries' own documentation — torch.optim (``Optimizer.step(closure)``, LBFGS),
torch.distributed.autograd / torch.distributed.optim (``DistributedOptimizer`` has no ``zero_grad``;
each ``dist_autograd.context()`` holds its own gradients), DeepSpeed (``deepspeed.initialize`` returns
``(engine, optimizer, dataloader, lr_scheduler)``; ``engine.backward(loss)`` / ``engine.step()`` run the
backward, the optimizer step, the gradient clearing and the scheduler step), transformers
(``GenerationMixin.generate`` and ``Pipeline.__call__`` run under ``torch.no_grad``), diffusers
(``DiffusionPipeline.__call__`` is decorated with ``torch.no_grad``).
"""

from __future__ import annotations

import re

# ----------------------------------------------------------------------------- models
#: libraries whose classes of a model family (below) are ``torch.nn.Module`` s
MODEL_LIBRARIES = frozenset({"transformers", "peft", "sentence_transformers", "setfit", "diffusers", "timm",
                             "torchvision", "trl"})
#: model families: ``*Model``, ``*For<Task>``, ``*LMHeadModel``, ``AutoModel*``, ``PeftModel*``, ``AutoPeftModel*``
_MODEL_FAMILY = re.compile(r"^(AutoModel|AutoPeftModel|PeftModel)|(Model|LMHeadModel|For[A-Z]\w*)$")
#: model classes outside the families above, by library
MODEL_CLASSES = frozenset({
    "sentence_transformers.SentenceTransformer", "sentence_transformers.CrossEncoder",
    "sentence_transformers.SparseEncoder", "diffusers.AutoencoderKL", "diffusers.AutoencoderTiny",
    "trl.AutoModelForCausalLMWithValueHead", "trl.AutoModelForSeq2SeqLMWithValueHead",
})
#: classes that end like a model family but are not modules (TF/Flax ports, data collators)
_NOT_MODEL_PREFIXES = ("TF", "Flax", "DataCollator")
#: functions that build and return a new model
MODEL_FACTORIES = frozenset({"timm.create_model"})
#: module whose lower-case functions are model factories (``torchvision.models.resnet18()``)
MODEL_FACTORY_MODULES = ("torchvision.models.",)
#: calls that return the model they are given, with the same parameters (``torch.compile(model)``)
MODEL_WRAPPERS = ("torch.compile", "DataParallel", "DistributedDataParallel", "FullyShardedDataParallel",
                  "prepare_model_for_kbit_training", "prepare_model_for_int8_training")
#: methods of a model that return the model itself (``model = model.to(device)``)
SELF_RETURNING_METHODS = frozenset(
    {"to", "cuda", "cpu", "half", "float", "double", "bfloat16", "train", "eval", "requires_grad_", "xpu", "mps"}
)
#: bases that make a project class a model (resolved; a project class deriving from one counts too)
MODEL_BASES = frozenset({
    "torch.nn.Module", "torch.nn.modules.module.Module", "transformers.PreTrainedModel",
    "transformers.modeling_utils.PreTrainedModel", "lightning.LightningModule", "lightning.pytorch.LightningModule",
    "pytorch_lightning.LightningModule", "pytorch_lightning.core.LightningModule",
})
#: ``torch.nn`` classes without parameters: calling one is no model forward, replacing one loses no parameters
PARAMETER_FREE_LAYERS = frozenset({
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Identity", "ReLU", "ReLU6", "GELU", "Tanh",
    "Sigmoid", "SiLU", "Softmax", "LogSoftmax", "Softmin", "Flatten", "Unflatten", "LeakyReLU", "ELU", "SELU",
    "CELU", "Mish", "Softplus", "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid", "Tanhshrink", "Threshold",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Upsample",
    "PixelShuffle", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "CosineSimilarity", "PairwiseDistance",
})

#: ``torch.nn`` classes that behave the same in train and eval mode (no dropout, no running statistics)
MODE_FREE_LAYERS = (PARAMETER_FREE_LAYERS - {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"}) | {
    "Linear", "Bilinear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "Embedding", "EmbeddingBag", "LayerNorm", "GroupNorm", "RMSNorm", "PReLU",
}
#: functional calls whose result depends on the mode (a module calling one is not mode-free)
MODE_DEPENDENT_FUNCTIONS = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                                      "feature_alpha_dropout", "batch_norm", "instance_norm"})

# ----------------------------------------------------------------------------- from_pretrained families
#: ``X.from_pretrained`` that is no model: (kind, class-name pattern). First match wins.
PRETRAINED_NON_MODELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("tokenizer", re.compile(r"Tokenizer|(Processor|FeatureExtractor)$")),
    ("config", re.compile(r"Config$")),
    ("pipeline", re.compile(r"Pipeline$")),
    ("object", re.compile(r"Scheduler$|Quantizer$")),
)

# ----------------------------------------------------------------------------- gradients
#: (``from_pretrained`` families above give kind ``pipeline``: a callable that runs without gradients)
#: factories of grad-free callables (``transformers.pipeline("text-classification")``)
GRAD_FREE_FACTORIES = frozenset({"transformers.pipeline"})
#: model methods that run without gradients (``model.generate`` is decorated with ``torch.no_grad``)
GRAD_FREE_METHODS = frozenset({"generate"})
#: model methods that run the forward pass with gradients as the call would
FORWARD_METHODS = frozenset({"forward"})
#: context managers / decorators that turn autograd off (by last name: ``torch.no_grad``, ``no_grad``)
NO_GRAD_CONTEXTS = frozenset({"no_grad", "inference_mode"})
#: functions that backpropagate their argument at this position (a tensor or a list of tensors)
BACKWARD_FUNCTIONS: dict[str, int] = {"torch.autograd.backward": 0, "torch.distributed.autograd.backward": 1}
#: context managers whose block starts from no gradients (each context holds its own): they clear gradients
FRESH_GRADIENT_CONTEXTS = frozenset({"torch.distributed.autograd.context"})

# ----------------------------------------------------------------------------- optimizers
#: optimizers that are not under ``torch.optim.`` (by resolved name)
OPTIMIZER_CLASSES = frozenset({
    "torch.distributed.optim.DistributedOptimizer", "torch.distributed.optim.ZeroRedundancyOptimizer",
    "torch.distributed.optim.PostLocalSGDOptimizer",
})
#: optimizers without ``zero_grad`` (gradients live in a ``dist_autograd.context()``): never advise calling it
OPTIMIZERS_WITHOUT_ZERO_GRAD = frozenset({"torch.distributed.optim.DistributedOptimizer"})
#: ``optimizer.step(closure)`` calls the closure, which runs the forward and the backward (LBFGS needs one;
#: every ``torch.optim`` optimizer accepts one): the engine walks a closure passed to any ``step`` first

# ----------------------------------------------------------------------------- engines
#: factories returning a tuple whose elements are (kind, via) — ``via="engine"`` marks a training engine:
#: calling it is the forward pass, its ``backward(loss)`` the backward, its ``step()`` the optimizer step and
#: the gradient clearing (and the scheduler step when one was given to it: not assumed)
TUPLE_FACTORIES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "deepspeed.initialize": (("model", "engine"), ("optimizer", "engine"), ("dataloader", None),
                             ("scheduler", "engine")),
}
#: an engine's methods and the protocol events they are
ENGINE_METHODS: dict[str, tuple[str, ...]] = {"step": ("step", "zero_grad")}

# ----------------------------------------------------------------------------- datasets
#: ``datasets`` formats whose rows and slices are no dicts (``ds.set_format("pandas"); ds[:]`` is a DataFrame)
TABLE_FORMATS = frozenset({"pandas", "pd", "arrow", "pa", "polars", "pl"})
#: ``datasets`` methods that change what indexing returns: (works in place, takes a format type)
FORMAT_METHODS: dict[str, tuple[bool, bool]] = {
    "set_format": (True, True), "with_format": (False, True), "set_transform": (True, False),
    "with_transform": (False, False),
}

# ----------------------------------------------------------------------------- frameworks owning the loop
#: libraries whose ``*Trainer`` classes run the training loop themselves
TRAINER_LIBRARIES = ("transformers", "trl", "setfit", "sentence_transformers")
#: classes whose subclasses' methods a framework's loop calls (``training_step``): their loops are no
#: training or evaluation loops of the script (any base merely *named* ``*Trainer`` counts too: a suppression)
LOOP_OWNING_BASES = frozenset({
    "lightning.LightningModule", "lightning.pytorch.LightningModule", "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
})
#: ``accelerator.<method>(model)`` contexts that scale and synchronise accumulated gradients
ACCUMULATION_CONTEXTS = frozenset({"accumulate"})


def owns_training_loop(base: str) -> bool:
    """A (resolved) base class whose subclasses are driven by a framework's own loop."""
    return base in LOOP_OWNING_BASES or base.endswith("Trainer")


def is_model_class(qualname: str) -> bool:
    """A library class (resolved name) whose instances are models: a known model family of a model library."""
    root, _, rest = qualname.partition(".")
    last = qualname.rsplit(".", 1)[-1]
    if qualname in MODEL_CLASSES:
        return True
    if root not in MODEL_LIBRARIES or not last[:1].isupper():
        return False
    return is_model_family(last)


def is_model_family(class_name: str) -> bool:
    """A class name of a model family (``AutoModelForCausalLM``, ``BertModel``, ``PeftModel``)."""
    if class_name.startswith(_NOT_MODEL_PREFIXES) or class_name in ("PreTrainedModel", "PretrainedConfig"):
        return False
    return bool(_MODEL_FAMILY.search(class_name))


def is_model_factory(qualname: str) -> bool:
    """A function (resolved name) that builds and returns a model."""
    if qualname in MODEL_FACTORIES:
        return True
    last = qualname.rsplit(".", 1)[-1]
    return qualname.startswith(MODEL_FACTORY_MODULES) and last[:1].islower() and not last.startswith("get_")


def pretrained_kind(owner: str) -> str | None:
    """The kind ``Owner.from_pretrained(...)`` returns: ``model`` for model families, else the non-model
    family's kind (``tokenizer``, ``config``, ``pipeline``, ``object``), None when the class is unknown."""
    for kind, pattern in PRETRAINED_NON_MODELS:
        if pattern.search(owner):
            return kind
    return "model" if is_model_family(owner) or owner in {n.rsplit(".", 1)[-1] for n in MODEL_CLASSES} else None


def is_parameter_free_layer(qualname: str) -> bool:
    """``torch.nn.ReLU`` and friends: modules that hold no parameters."""
    return qualname.startswith("torch.nn.") and qualname.rsplit(".", 1)[-1] in PARAMETER_FREE_LAYERS


def is_model_base(qualname: str) -> bool:
    """A resolved base class that makes its subclasses models: ``nn.Module`` (or any ``torch.nn`` module class
    but the losses), ``PreTrainedModel`` and its per-architecture bases, ``LightningModule``, a model class."""
    if qualname in MODEL_BASES or is_model_class(qualname):
        return True
    last = qualname.rsplit(".", 1)[-1]
    if qualname.startswith("torch.nn.") and last[:1].isupper():
        return not last.endswith("Loss") and last not in ("Parameter", "ParameterList", "ParameterDict")
    return qualname.split(".", 1)[0] in MODEL_LIBRARIES and last.endswith("PreTrainedModel")


def tuple_factory(qualname: str) -> tuple[tuple[str, str | None], ...] | None:
    """The element kinds of a tuple-returning factory (``deepspeed.initialize``), also through re-exports
    (``msamp.deepspeed.initialize``)."""
    for name, elements in TUPLE_FACTORIES.items():
        if qualname == name or qualname.endswith("." + name):
            return elements
    return None
