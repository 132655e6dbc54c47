"""lr-out-of-range judges each optimizer by what it trains, whether it trains, and the schedule's peak."""

from __future__ import annotations

import pytest

from ftdoctor.settings import Settings
from ftdoctor.static.engine import check_source
from ftdoctor.static.rules.lr_out_of_range import lr_ranges

LR = "lr-out-of-range"
HEADER = (
    "import torch\nfrom peft import get_peft_model, LoraConfig, PromptTuningConfig, IA3Config\n"
    "from transformers import AutoModelForCausalLM, Trainer, TrainingArguments\n"
    "base = AutoModelForCausalLM.from_pretrained('gpt2')\n"
)
STEP = "for batch in loader:\n    model(**batch).loss.backward()\n    opt.step()\n    opt.zero_grad()\n"


def flagged(source: str, settings: Settings | None = None) -> list[int]:
    return [f.line for f in check_source(source, "train.py", settings) if f.rule == LR]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("config", "lr", "expected"),
    [
        ("LoraConfig(r=8)", "3e-3", []), ("LoraConfig(r=8)", "5e-2", [6]),
        ("PromptTuningConfig(num_virtual_tokens=8)", "0.3", []), ("PromptTuningConfig(num_virtual_tokens=8)", "5.0", [6]),
        ("IA3Config()", "5e-2", []), ("IA3Config()", "0.5", [6]),
    ],
)
def test_each_peft_method_has_its_range(config: str, lr: str, expected: list[int]) -> None:
    source = HEADER + f"model = get_peft_model(base, {config})\nopt = torch.optim.AdamW(model.parameters(), lr={lr})\n"
    assert flagged(source + STEP) == expected


def test_a_full_fine_tuning_baseline_in_a_peft_file_is_judged_as_full_fine_tuning() -> None:
    source = HEADER + (
        "model = get_peft_model(AutoModelForCausalLM.from_pretrained('gpt2'), LoraConfig(r=8))\n"
        "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n" + STEP +
        "model = base\nopt = torch.optim.AdamW(base.parameters(), lr=1e-3)\n" + STEP
    )
    assert flagged(source) == [12]


def test_a_model_handed_to_get_peft_model_carries_its_adapters() -> None:
    source = HEADER + "peft_model = get_peft_model(base, LoraConfig(r=8))\nopt = torch.optim.AdamW(base.parameters(), lr=2e-3)\n"
    assert flagged(source + STEP.replace("model(", "peft_model(")) == []


def test_the_trainer_arguments_are_judged_by_the_trainers_model() -> None:
    lora = HEADER + "model = get_peft_model(base, LoraConfig(r=8))\nfull = AutoModelForCausalLM.from_pretrained('gpt2')\n"
    args = "args = TrainingArguments(output_dir='o', learning_rate=3e-3)\nTrainer(model={}, args=args).train()\n"
    assert flagged(lora + args.format("model")) == []
    assert flagged(lora + args.format("full")) == [7]


def test_an_optimizer_never_stepped_nor_handed_on_is_not_judged() -> None:
    built = HEADER + "model = base\nopt = torch.optim.AdamW(model.parameters(), lr=1.0)\nprint(opt.param_groups)\n"
    assert flagged(built) == []
    assert flagged(built + STEP) == [6]
    assert flagged(built + "model, opt = accelerator.prepare(model, opt)\n") == [6]
    assert flagged(built + "trainer = Trainer(model=model, optimizers=(opt, None))\n") == [6]


def test_one_cycle_max_lr_is_the_rate_that_trains() -> None:
    body = HEADER + "model = base\nopt = torch.optim.AdamW(model.parameters(), lr={})\n" \
        "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr={}, total_steps=10)\n" + STEP
    assert flagged(body.format("1.0", "2e-5")) == []
    assert flagged(body.format("2e-5", "1e-2")) == [7]


def test_range_names_in_the_config() -> None:
    ranges = lr_ranges({"peft": (1e-7, 10.0), "lora": (1e-5, 1e-2)})
    assert (ranges["lora"].low, ranges["lora"].high) == (1e-5, 1e-2)  # the specific name wins over `peft`
    assert (ranges["prompt"].low, ranges["ia3"].high, ranges["peft"].high) == (1e-7, 10.0, 10.0)
    assert ranges["full"].high == 1e-4
    lora_5e2 = HEADER + "model = get_peft_model(base, LoraConfig(r=8))\nopt = torch.optim.AdamW(model.parameters(), lr=5e-2)\n" + STEP
    assert flagged(lora_5e2, Settings(rule_options={LR: {"lora": (1e-5, 1e-1)}})) == []


def test_the_config_accepts_the_new_range_names(tmp_path) -> None:
    from ftdoctor.settings import SettingsError
    from ftdoctor.sources import load_config

    (tmp_path / "pyproject.toml").write_text("[tool.ftdoctor.lr-range]\nlora = [1e-5, 1e-2]\nprompt = [1e-4, 1.0]\n")
    assert load_config(None, [str(tmp_path)]).table["lr-range"]["lora"] == [1e-5, 1e-2]
    (tmp_path / "pyproject.toml").write_text("[tool.ftdoctor.lr-range]\nadapters = [1e-5, 1e-2]\n")
    with pytest.raises(SettingsError, match="lora"):
        load_config(None, [str(tmp_path)])


def test_adapters_injected_in_place_make_the_model_peft() -> None:
    source = HEADER.replace("get_peft_model,", "get_peft_model, inject_adapter_in_model,") + (
        "inject_adapter_in_model(PromptTuningConfig(num_virtual_tokens=8), base)\n"
        "model = base\nopt = torch.optim.AdamW(base.parameters(), lr=0.3)\n"
    )
    assert flagged(source + STEP) == []
    assert flagged(source.replace("inject_adapter_in_model(", "print(") + STEP) == [7]


def test_a_trl_trainer_is_judged_by_its_peft_config() -> None:
    source = HEADER + (
        "from trl import SFTTrainer, SFTConfig\n"
        "args = TrainingArguments(output_dir='o', learning_rate=3e-3)\n"
        "SFTTrainer(model='gpt2', args=args, peft_config={}).train()\n"
    )
    assert flagged(source.format("LoraConfig(r=8)")) == []
    assert flagged(source.format("LoraConfig(r=8)").replace("3e-3", "5e-2")) == [6]
