"""Tricky cases of the model-shape rules: orphan-head, base-model-no-logits, head-input-dim-mismatch,
num-labels-mismatch, tokenizer-model-mismatch, random-init-not-pretrained.

Each rule gets inputs that must trigger it and correct look-alikes that must not.
"""

from __future__ import annotations

import textwrap

import pytest

from ftdoctor.findings import Finding
from ftdoctor.static.engine import check_source


def findings(source: str, slug: str) -> list[Finding]:
    """The findings of one rule; the source must parse, so that silence means the rule judged it."""
    everything = check_source(textwrap.dedent(source), "script.py")
    assert not [f for f in everything if f.rule == "parse-error"], everything
    return [f for f in everything if f.rule == slug]


def lines(source: str, slug: str) -> list[int]:
    return [f.line for f in findings(source, slug)]  # type: ignore[misc]


# --------------------------------------------------------------------------- orphan-head
ORPHAN = "orphan-head"


def test_orphan_sequential_head_whose_parameters_are_only_optimised() -> None:
    source = """
        import torch
        import torch.nn as nn
        from transformers import AutoModel

        model = AutoModel.from_pretrained("roberta-base")
        model.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(768, 4))
        optimizer = torch.optim.AdamW(list(model.parameters()) + list(model.head.parameters()), lr=2e-5)
    """
    found = findings(source, ORPHAN)
    assert [f.line for f in found] == [7]
    assert "`model.head`" in found[0].message and "AutoModel" in found[0].message


def test_orphan_instance_of_a_module_class_of_this_file() -> None:
    source = """
        import torch.nn as nn
        from transformers import BertModel

        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = nn.Linear(768, 2)

        bert = BertModel.from_pretrained("bert-base-uncased")
        bert.task_head = Head()
    """
    assert lines(source, ORPHAN) == [11]


@pytest.mark.parametrize(
    "use",
    [
        "logits = model.classifier(model(**batch).pooler_output)",
        "head = model.classifier\nlogits = head(model(**batch).pooler_output)",
        "layer = getattr(model, 'classifier')",
    ],
)
def test_orphan_silent_when_the_script_uses_the_layer(use: str) -> None:
    source = (
        "import torch.nn as nn\nfrom transformers import BertModel\n"
        'model = BertModel.from_pretrained("bert-base-uncased")\n'
        "model.classifier = nn.Linear(768, 2)\n" + use + "\n"
    )
    assert findings(source, ORPHAN) == []


def test_orphan_silent_for_replaced_internal_module_and_for_non_layers() -> None:
    source = """
        import torch.nn as nn
        from transformers import AutoModelForSequenceClassification, BertModel

        base = BertModel.from_pretrained("bert-base-uncased")
        base.pooler = nn.Identity()
        base.dropout = nn.Dropout(0.2)
        base.name_for_logs = str("encoder")
        clf = AutoModelForSequenceClassification.from_pretrained("distilbert-base-uncased", num_labels=3)
        clf.pre_classifier = nn.Linear(768, 768)
    """
    assert findings(source, ORPHAN) == []


def test_orphan_silent_for_attributes_of_a_custom_module() -> None:
    source = """
        import torch.nn as nn
        from transformers import AutoModel

        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = AutoModel.from_pretrained("bert-base-uncased")
                self.classifier = nn.Linear(768, 2)

            def forward(self, **batch):
                return self.classifier(self.encoder(**batch).pooler_output)
    """
    assert findings(source, ORPHAN) == []


# --------------------------------------------------------------------------- base-model-no-logits
NO_LOGITS = "base-model-no-logits"


def test_logits_read_inline_and_loss_read_after_an_alias() -> None:
    source = """
        from transformers import AutoModel

        model = AutoModel.from_pretrained("bert-base-uncased")
        model = model.to("cuda")
        scores = model(**batch).logits
        out = model.forward(input_ids=ids)
        total = out.loss
    """
    assert lines(source, NO_LOGITS) == [6, 8]


def test_labels_passed_through_forward_to_a_base_model() -> None:
    source = """
        from transformers import XLMRobertaModel

        encoder = XLMRobertaModel.from_pretrained("xlm-roberta-base")
        outputs = encoder.forward(input_ids=ids, labels=targets)
    """
    found = findings(source, NO_LOGITS)
    assert [f.line for f in found] == [5]
    assert "`labels=`" in found[0].message and "XLMRobertaModel" in found[0].message


def test_no_logits_silent_for_head_models_and_models_that_have_logits() -> None:
    source = """
        from transformers import AutoModel, AutoModelForSequenceClassification, EncoderDecoderModel

        clf = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
        a = clf(**batch, labels=y).logits
        seq2seq = EncoderDecoderModel.from_pretrained("patrickvonplaten/bert2bert_cnn_daily_mail")
        b = seq2seq(input_ids=ids, labels=y).loss
        encoder = AutoModel.from_pretrained("bert-base-uncased")
        outputs = encoder(**batch)
        outputs = clf(**batch)
        c = outputs.logits
    """
    assert findings(source, NO_LOGITS) == []


# --------------------------------------------------------------------------- head-input-dim-mismatch
DIM = "head-input-dim-mismatch"


def test_head_replaced_on_a_large_head_model() -> None:
    source = """
        import torch.nn as nn
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained("FacebookAI/roberta-large", num_labels=3)
        model.classifier.out_proj = nn.Linear(1024, 3)
        model.score = nn.Linear(768, 3)
    """
    found = findings(source, DIM)
    assert [f.line for f in found] == [7]
    assert "1024" in found[0].message and "768" in found[0].message


def test_sequential_head_through_dropout_and_a_constant_width() -> None:
    source = """
        import torch
        import torch.nn as nn
        from transformers import AutoModel

        HIDDEN = 768
        encoder = AutoModel.from_pretrained("google/electra-small-discriminator")
        head = nn.Sequential(nn.Dropout(0.1), nn.Linear(HIDDEN, 2))
        dropout = nn.Dropout(0.2)

        def logits_for(batch):
            cls = encoder(**batch).last_hidden_state[:, 0]
            return head(dropout(torch.tanh(cls)))
    """
    found = findings(source, DIM)
    assert [f.line for f in found] == [8]
    assert "256" in found[0].message and "electra-small" in found[0].message


@pytest.mark.parametrize(
    "checkpoint, head_input",
    [
        ('"my-org/bert-finetuned"', "768"),  # unknown checkpoint: no opinion
        ('"bert-base-uncased"', "768"),  # matches
        ('"sentence-transformers/all-MiniLM-L6-v2"', "encoder.config.hidden_size"),
    ],
)
def test_head_dim_silent_cases(checkpoint: str, head_input: str) -> None:
    source = (
        "import torch.nn as nn\nfrom transformers import AutoModel\n"
        f"encoder = AutoModel.from_pretrained({checkpoint})\n"
        f"head = nn.Linear({head_input}, 2)\n"
        "logits = head(encoder(**batch).pooler_output)\n"
    )
    assert findings(source, DIM) == []


def test_head_dim_silent_when_features_are_concatenated() -> None:
    source = """
        import torch
        import torch.nn as nn
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
        head = nn.Linear(768, 2)  # two 384-wide sentence vectors side by side

        def pair_logits(a, b):
            u = encoder(**a).pooler_output
            v = encoder(**b).pooler_output
            return head(torch.cat([u, v], dim=-1))
    """
    assert findings(source, DIM) == []


# --------------------------------------------------------------------------- num-labels-mismatch
NUM_LABELS = "num-labels-mismatch"


def test_linear_head_output_size_against_a_label_list() -> None:
    source = """
        import torch.nn as nn
        from transformers import AutoModelForSequenceClassification

        class_names = ("sports", "politics", "science")
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=len(class_names))
        model.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(768, 2))
    """
    found = findings(source, NUM_LABELS)
    assert [f.line for f in found] == [7]
    assert "2 outputs" in found[0].message and "`class_names`" in found[0].message


def test_config_num_labels_against_label2id_comprehension() -> None:
    source = """
        from transformers import AutoConfig

        LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
        label2id = {label: i for i, label in enumerate(LABELS)}
        config = AutoConfig.from_pretrained("bert-base-cased", num_labels=3, label2id=label2id)
    """
    found = findings(source, NUM_LABELS)
    assert [f.line for f in found] == [6]
    assert "num_labels=3" in found[0].message and "5 classes" in found[0].message


@pytest.mark.parametrize(
    "extra",
    [
        'labels = [0, 1, 1, 0, 2]',  # a data column, not a label set
        'labels = ["neg", "pos", "neutral"]\ncategories = ["a", "b", "c", "d"]',  # ambiguous evidence
        'labels = ["neg", "pos"]\nHEAD_OUT = 1',  # one logit for two classes is a binary head
    ],
)
def test_num_labels_silent_without_clear_contradiction(extra: str) -> None:
    source = (
        "from transformers import AutoModelForSequenceClassification\n" + extra + "\n"
        'model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", '
        f"num_labels={'1' if 'HEAD_OUT' in extra else '2'})\n"
    )
    assert findings(source, NUM_LABELS) == []


def test_num_labels_silent_for_regression_head() -> None:
    source = """
        import torch.nn as nn
        from transformers import AutoModel

        labels = ["low", "mid", "high"]
        encoder = AutoModel.from_pretrained("bert-base-uncased")
        score_head = nn.Linear(768, 1)
    """
    assert findings(source, NUM_LABELS) == []


# --------------------------------------------------------------------------- tokenizer-model-mismatch
TOKENIZER = "tokenizer-model-mismatch"


def test_cased_tokenizer_with_uncased_model() -> None:
    source = """
        from transformers import BertForSequenceClassification, BertTokenizerFast

        tokenizer = BertTokenizerFast.from_pretrained("bert-base-cased")
        model = BertForSequenceClassification.from_pretrained("google-bert/bert-base-uncased", num_labels=2)
    """
    found = findings(source, TOKENIZER)
    assert [f.line for f in found] == [5]
    assert "`model`" in found[0].message and "`tokenizer`" in found[0].message


def test_tokenizer_silent_for_unknown_tokenizer_and_matching_pairs() -> None:
    unknown = """
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained("./artifacts/tokenizer")
        model = AutoModel.from_pretrained("roberta-base")
    """
    distillation = """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        teacher_tokenizer = AutoTokenizer.from_pretrained("roberta-large")
        teacher = AutoModelForSequenceClassification.from_pretrained("roberta-large", num_labels=2)
        student_tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")
        student = AutoModelForSequenceClassification.from_pretrained("distilbert-base-uncased", num_labels=2)
    """
    assert findings(unknown, TOKENIZER) == []
    assert findings(distillation, TOKENIZER) == []


# --------------------------------------------------------------------------- random-init-not-pretrained
RANDOM_INIT = "random-init-not-pretrained"


def test_token_classifier_from_a_pretrained_config() -> None:
    source = """
        from transformers import BertConfig, BertForTokenClassification

        config = BertConfig.from_pretrained("bert-base-cased", num_labels=9)
        model = BertForTokenClassification(config)
    """
    found = findings(source, RANDOM_INIT)
    assert [f.line for f in found] == [5]
    assert "`model`" in found[0].message and "bert-base-cased" in found[0].message
    assert "from_pretrained" in found[0].fix


@pytest.mark.parametrize(
    "source",
    [
        # pretraining a masked LM from scratch with the BERT shape
        'config = AutoConfig.from_pretrained("bert-base-uncased")\nmodel = AutoModelForMaskedLM.from_config(config)\n',
        # weights restored afterwards
        'config = AutoConfig.from_pretrained("bert-base-uncased", num_labels=2)\n'
        "model = AutoModelForSequenceClassification.from_config(config)\n"
        'trainer.train(resume_from_checkpoint="out/checkpoint-500")\n',
        # a default config but no pretrained tokenizer: nothing says a checkpoint was meant
        "model = BertForSequenceClassification(BertConfig(num_labels=2))\n",
        # the config of another model: unknown origin
        "model = BertForSequenceClassification(teacher.config)\n",
    ],
)
def test_random_init_silent_cases(source: str) -> None:
    header = (
        "from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification, "
        "BertConfig, BertForSequenceClassification\n"
    )
    assert findings(header + source, RANDOM_INIT) == []


def test_random_init_silent_for_the_from_scratch_branch_of_a_pretrained_script() -> None:
    source = """
        from transformers import AutoConfig, AutoModelForSequenceClassification

        config = AutoConfig.from_pretrained(args.config_name, num_labels=3)
        if args.model_name_or_path:
            model = AutoModelForSequenceClassification.from_pretrained(args.model_name_or_path, config=config)
        else:
            model = AutoModelForSequenceClassification.from_config(config)
    """
    assert findings(source, RANDOM_INIT) == []
