"""A user's own tiny fine-tuning script, run by benchmarks/fault_suite.py as `ftdoctor run fault_script.py`.

Correct by default: a random-init tiny BERT classifier (built from a config: no download) learns from generated
token data with a plain PyTorch loop. Two switches seed the faults that only a user's script shows:

    --label-shift K   hand the model labels + K (K=1: labels 1..2 for a 2-way head; cross-entropy crashes)
    --crash-at N      raise an error no rule explains after N optimizer steps (a dataset key renamed mid-run)
"""

from __future__ import annotations

import argparse

import torch
from transformers import BertConfig, BertForSequenceClassification

VOCAB, SEQ_LEN, EXAMPLES, BATCH = 100, 16, 256, 16


def make_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids whose label is whether the signal token 5 or 6 occurs; fillers are 10..99."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, VOCAB, (EXAMPLES, SEQ_LEN), generator=generator)
    labels = torch.randint(0, 2, (EXAMPLES,), generator=generator)
    ids[:, 1] = 5 + labels
    return ids, labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-shift", type=int, default=0)
    parser.add_argument("--crash-at", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    model = BertForSequenceClassification(config)  # noqa: FTD124 - a tiny random-init model is the point here
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, labels = make_data(args.seed)

    model.train()
    for step in range(args.steps):
        batch = torch.randperm(EXAMPLES)[:BATCH]
        optimizer.zero_grad()
        output = model(input_ids=ids[batch], labels=labels[batch] + args.label_shift)
        output.loss.backward()
        optimizer.step()
        if step + 1 == args.crash_at:
            raise KeyError("label")  # the unrelated bug: a renamed dataset column
    print(f"final loss {output.loss.item():.3f}")


if __name__ == "__main__":
    main()
