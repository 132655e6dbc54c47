"""Generate the bundled ``builtin:reviews`` dataset (deterministic, seeded).

Short English product/place/media reviews from a small grammar, labelled
``positive`` or ``negative``. Every review states its verdict in its own words
(a judgement, a negation, or an overall clause after a contrasting one), so a
model must read more than one keyword to be right on the contrast forms.
Train and validation are disjoint as sets of texts; both are balanced.

Run from the repository root::

    python tools/make_reviews.py          # rewrites ftdoctor/runner/data/reviews_*.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20240611
TRAIN_PER_CLASS = 1500
VALIDATION_PER_CLASS = 300
OUT_DIR = Path(__file__).resolve().parent.parent / "ftdoctor" / "runner" / "data"

# product -> aspects; a trailing "+" marks a plural aspect ("the speakers are").
DOMAINS: dict[str, list[str]] = {
    "phone": ["battery", "screen", "camera", "speakers+", "charger", "case", "fingerprint reader"],
    "laptop": ["keyboard", "trackpad", "battery", "display", "fan", "hinge", "ports+"],
    "pair of headphones": ["sound", "bass", "ear cushions+", "noise cancelling", "cable", "microphone"],
    "restaurant": ["food", "service", "staff", "pasta", "dessert", "atmosphere", "portions+", "prices+"],
    "hotel": ["room", "bed", "breakfast", "staff", "location", "shower", "view", "wifi"],
    "movie": ["plot", "acting", "soundtrack", "ending", "dialogue", "pacing", "special effects+"],
    "book": ["story", "characters+", "writing", "ending", "plot twists+", "translation"],
    "blender": ["motor", "blades+", "lid", "jug", "buttons+", "noise level"],
    "coffee maker": ["coffee", "carafe", "timer", "water tank", "filter", "design"],
    "backpack": ["straps+", "zippers+", "fabric", "pockets+", "stitching", "size"],
}

ADJECTIVES = {
    "positive": ["great", "excellent", "fantastic", "superb", "solid", "reliable", "comfortable", "wonderful",
                 "impressive", "lovely", "sturdy", "delightful", "perfect", "brilliant", "outstanding"],
    "negative": ["awful", "terrible", "cheap", "flimsy", "disappointing", "poor", "useless", "horrible",
                 "mediocre", "dreadful", "unreliable", "broken", "noisy", "bland", "frustrating"],
}
INTENSIFIERS = ["", "", "", "really ", "very ", "truly ", "incredibly ", "quite ", "absolutely "]

# (singular, plural) forms of each verb phrase.
VERB_PHRASES = {
    "positive": [("works perfectly", "work perfectly"), ("exceeded my expectations",) * 2,
                 ("is worth every penny", "are worth every penny"), ("was a pleasant surprise", "were a pleasant surprise"),
                 ("does exactly what it should", "do exactly what they should"), ("held up well",) * 2,
                 ("keeps getting better", "keep getting better"), ("made my day",) * 2],
    "negative": [("stopped working after a week",) * 2, ("fell apart quickly",) * 2,
                 ("was a huge letdown", "were a huge letdown"), ("is a waste of money", "are a waste of money"),
                 ("broke on the first day",) * 2, ("keeps failing", "keep failing"), ("ruined the whole thing",) * 2,
                 ("never worked properly",) * 2],
}
# Negations whose meaning is unambiguous, keyed by the polarity they express.
NEGATED = {
    "positive": [("I have no complaints about the {a}",) * 2, ("the {a} never lets me down", "the {a} never let me down"),
                 ("I could not be happier with the {a}",) * 2, ("nothing is wrong with the {a}",) * 2],
    "negative": [("the {a} is not {pos} at all", "the {a} are not {pos} at all"),
                 ("the {a} does not work", "the {a} do not work"),
                 ("the {a} is nowhere near {pos}", "the {a} are nowhere near {pos}"),
                 ("I would not call the {a} {pos}",) * 2],
}
OVERALL = {
    "positive": ["overall I love this {p}", "overall it is {a_pos} {p}", "all in all I am happy with it",
                 "I would happily {again}", "I still recommend it"],
    "negative": ["overall I regret choosing this {p}", "overall it is {a_neg} {p}", "all in all I am disappointed",
                 "I would never {again}", "I cannot recommend it"],
}
# How to say "use it again" for each product.
AGAIN = {"restaurant": "eat at this restaurant again", "hotel": "stay at this hotel again",
         "movie": "watch this movie again", "book": "read this book again"}
OPENERS = ["", "", "", "Honestly, ", "To be fair, ", "After a month, ", "I have to say ", "Well, ", "So far "]
CLOSERS = {
    "positive": ["", "", "Would buy again.", "Highly recommended.", "Five stars.", "Love it.", "Great value."],
    "negative": ["", "", "Returned it.", "Avoid.", "One star.", "Save your money.", "Not worth it."],
}
OPPOSITE = {"positive": "negative", "negative": "positive"}


def _aspect(rng: random.Random, product: str) -> tuple[str, bool]:
    raw = rng.choice(DOMAINS[product])
    return raw.rstrip("+"), raw.endswith("+")


def _judgement(rng: random.Random, product: str, polarity: str) -> str:
    aspect, plural = _aspect(rng, product)
    form = rng.randrange(3)
    if form == 0:
        be = "are" if plural else "is"
        return f"the {aspect} {be} {rng.choice(INTENSIFIERS)}{rng.choice(ADJECTIVES[polarity])}"
    if form == 1:
        return f"the {aspect} {rng.choice(VERB_PHRASES[polarity])[plural]}"
    template = rng.choice(NEGATED[polarity])[plural]
    return template.format(a=aspect, pos=rng.choice(ADJECTIVES["positive"]))


def _with_article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _fill(template: str, product: str, rng: random.Random) -> str:
    return template.format(
        p=product,
        again=AGAIN.get(product, f"buy this {product} again"),
        a_pos=_with_article(rng.choice(ADJECTIVES["positive"])),
        a_neg=_with_article(rng.choice(ADJECTIVES["negative"])),
    )


def review(rng: random.Random, polarity: str) -> str:
    product = rng.choice(sorted(DOMAINS))
    shape = rng.randrange(4)
    if shape == 0:  # one judgement
        body = _judgement(rng, product, polarity)
    elif shape == 1:  # two judgements that agree
        body = f"{_judgement(rng, product, polarity)} and {_judgement(rng, product, polarity)}"
    elif shape == 2:  # a contrary detail, then the verdict
        body = f"{_judgement(rng, product, OPPOSITE[polarity])}, but {_fill(rng.choice(OVERALL[polarity]), product, rng)}"
    else:  # a verdict about the product, then a detail that agrees
        body = f"{_fill(rng.choice(OVERALL[polarity]), product, rng)}; {_judgement(rng, product, polarity)}"
    text = rng.choice(OPENERS) + body
    text = text[0].upper() + text[1:] + "."
    closer = rng.choice(CLOSERS[polarity])
    return f"{text} {closer}".strip()


def generate(seed: int = SEED) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    rng = random.Random(seed)
    seen: set[str] = set()

    def draw(per_class: int) -> list[dict[str, str]]:
        rows = []
        for polarity in ("negative", "positive"):
            count = 0
            while count < per_class:
                text = review(rng, polarity)
                key = text.lower()
                if key in seen:
                    continue
                seen.add(key)
                rows.append({"text": text, "label": polarity})
                count += 1
        rng.shuffle(rows)
        return rows

    return draw(TRAIN_PER_CLASS), draw(VALIDATION_PER_CLASS)


def write_jsonl(rows: list[dict[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    train, validation = generate()
    write_jsonl(train, args.out_dir / "reviews_train.jsonl")
    write_jsonl(validation, args.out_dir / "reviews_validation.jsonl")
    print(f"wrote {len(train)} train and {len(validation)} validation reviews to {args.out_dir}")


if __name__ == "__main__":
    main()
