"""`torchrun --nproc_per_node 2 -m ftdoctor run --config ...` (and `accelerate launch`) on CPU (gloo), on loopback.

Each rank trains on its shard under its own doctor; the label histogram the
report shows is summed over both ranks; only rank 0 prints and writes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

N_TRAIN, N_VAL, BATCH, WORLD = 64, 32, 8, 2


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_dataset(folder: Path) -> Counter[int]:
    """A small two-class review set (3 of 4 examples positive); the training label histogram."""
    words = {0: ["dull", "awful", "boring", "weak"], 1: ["great", "lovely", "superb", "fun"]}
    train_labels: Counter[int] = Counter()
    for split, size in (("train", N_TRAIN), ("validation", N_VAL)):
        lines = []
        for i in range(size):
            label = 0 if i % 4 == 0 else 1
            if split == "train":
                train_labels[label] += 1
            text = f"a {words[label][i % 4]} {split} film number {i}"  # the splits share no text
            lines.append(json.dumps({"text": text, "label": label}))
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return train_labels


def _write_config(folder: Path) -> Path:
    config = folder / "tiny.yaml"
    config.write_text(
        "model: builtin:tiny\n"
        "data:\n  train: train.jsonl\n  validation: validation.jsonl\n"
        f"train:\n  batch_size: {BATCH}\n  epochs: 1\n  eval_every: 2\n  learning_rate: 1.0e-3\n  seed: 0\n"
    )
    return config


def _cpu_env() -> dict[str, str]:
    """CPU ranks (gloo) even on a GPU host, on loopback; nothing inherited from an outer launcher."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    for inherited in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT"):
        env.pop(inherited, None)
    return env


def _launcher(name: str, port: int) -> list[str]:
    if name == "torchrun":
        return [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD),
            "--master_addr", "127.0.0.1", "--master_port", str(port),
        ]
    return [  # accelerate's multi-process launcher; on a machine without GPUs the ranks use gloo
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(WORLD),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_cpu_ranks_report_once_with_labels_summed_over_ranks(tmp_path: Path, launcher: str) -> None:
    train_labels = _write_dataset(tmp_path)
    config = _write_config(tmp_path)
    report_dir = tmp_path / "report"
    env = _cpu_env()
    command = _launcher(launcher, _free_loopback_port()) + [
        "-m", "ftdoctor", "run", "--config", str(config), "--report-dir", str(report_dir), "--format", "json",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    # exactly one report: rank 0's, printed once and written once
    assert done.stdout.count('"tool": "ftdoctor"') == 1
    assert sorted(path.name for path in report_dir.iterdir()) == ["findings.sarif", "report.html", "report.json"]
    assert done.stderr.count("report written to") == 1
    assert done.stderr.count("training builtin:tiny") == 1  # the display runs on rank 0 only

    report = json.loads((report_dir / "report.json").read_text())
    assert [f for f in report["findings"] if f["severity"] != "info"] == []
    steps_per_rank = N_TRAIN // (WORLD * BATCH)
    assert report["steps"] == steps_per_rank
    # each rank saw half of the data; the histogram is both ranks' sum: the whole training set
    seen = {int(label): count for label, count in report["run"]["labels_seen"].items()}
    assert seen == dict(train_labels)
    assert report["run"]["world_size"] == WORLD


@pytest.mark.slow
def test_a_users_ddp_script_under_torchrun_is_watched_on_its_inner_model(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "fixtures" / "user_scripts" / "ddp_loop.py"
    report_file = tmp_path / "report.json"
    command = _launcher("torchrun", _free_loopback_port()) + [
        "-m", "ftdoctor", "run", str(script), "--format", "json", "--output", str(report_file),
    ]
    # the timeout guards against a rank hanging at teardown (seen once while the DDP model was freed
    # before the doctor detached; the runner now keeps the script's objects alive until then)
    done = subprocess.run(command, cwd=tmp_path, env=_cpu_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("final loss") == 1  # the script's own output, from its rank 0
    report = json.loads(report_file.read_text())
    assert [f for f in report["findings"] if f["severity"] != "info"] == []
    assert report["script"]["watched"] == [{"model": "BertForSequenceClassification", "optimizers": ["AdamW"]}]
    assert report["steps"] == 2 * 256 // (WORLD * 16)
    assert report["verdict"] == "healthy"  # every core signal seen on rank 0, evaluation included


def test_without_a_launcher_the_run_is_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from ftdoctor.runner import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    model = torch.nn.Linear(2, 2)
    with distributed.process_group() as ranks:
        assert (ranks.rank, ranks.world_size, ranks.is_main) == (0, 1, True)
        assert distributed.parallel_model(model) is model
        assert distributed.shard_sampler(list(range(10)), shuffle=True, seed=0) is None
        assert distributed.rank_details({1: 3, 0: 2}, collective=True) == {
            "world_size": 1, "labels_seen": {"0": 2, "1": 3},
        }
    assert not torch.distributed.is_initialized()


def test_a_launcher_environment_names_the_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    from ftdoctor.runner.distributed import is_main_process, launched_ranks

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert launched_ranks() == launched_ranks().__class__(rank=1, world_size=2)
    assert not is_main_process()
