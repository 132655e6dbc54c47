"""Generate the bundled ``builtin:reviews`` dataset (deterministic, seeded).

Short English product/place/media reviews from a small grammar, labelled
``positive`` or ``negative``. Every review states its verdict in its own words
(a judgement, a negation, or an overall clause after a contrasting one), so a
model must read more than one keyword to be right on the contrast forms.
Train and validation are disjoint as sets of texts; both are balanced.

It is meant to be informative, not solved at the first evaluation:

- mixed reviews (praise and complaints in equal measure) whose verdict is only a
  hedged closing remark ("Can't complain.", "I expected more.");
- vocabulary the training split never shows: validation draws some adjectives and
  two products from held-out lists, so only pretrained knowledge carries over;
- label noise, as in real annotation: a fixed share of each split carries the
  wrong label (equally many each way, so both splits stay balanced). It caps
  validation accuracy below 1 and gives a long run something to memorise, so the
  overfitting gap is real.

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
#: share of each class whose label is flipped (annotation noise)
NOISE_RATE = 0.06
#: chance that an adjective slot of a validation review takes a held-out adjective
HELD_OUT_ADJECTIVE_RATE = 0.5
#: chance that a validation review is about a held-out product
HELD_OUT_PRODUCT_RATE = 0.2
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

# Products and adjectives that only validation reviews use.
HELD_OUT_DOMAINS: dict[str, list[str]] = {
    "tent": ["poles+", "zipper", "rain fly", "floor", "pegs+", "setup"],
    "vacuum cleaner": ["suction", "hose", "filter", "brush", "cord", "dust bin"],
}
HELD_OUT_ADJECTIVES = {
    "positive": ["stellar", "exquisite", "flawless", "terrific", "splendid", "top-notch"],
    "negative": ["abysmal", "shoddy", "subpar", "atrocious", "pathetic", "lousy"],
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
# The only verdict of a mixed review.
HEDGED = {
    "positive": ["Can't complain.", "Not bad overall.", "It does the job.", "I'd keep it.", "Fair enough for the price."],
    "negative": ["I expected more.", "Could be better.", "Not what I hoped for.", "I'd think twice.",
                 "Hard to justify the price."],
}


class Vocabulary:
    """The products and adjectives one split draws from."""

    def __init__(self, rng: random.Random, *, held_out: bool) -> None:
        self.rng = rng
        self.held_out = held_out

    def product(self) -> str:
        if self.held_out and self.rng.random() < HELD_OUT_PRODUCT_RATE:
            return self.rng.choice(sorted(HELD_OUT_DOMAINS))
        return self.rng.choice(sorted(DOMAINS))

    def aspects(self, product: str) -> list[str]:
        return DOMAINS.get(product) or HELD_OUT_DOMAINS[product]

    def adjective(self, polarity: str) -> str:
        if self.held_out and self.rng.random() < HELD_OUT_ADJECTIVE_RATE:
            return self.rng.choice(HELD_OUT_ADJECTIVES[polarity])
        return self.rng.choice(ADJECTIVES[polarity])


def _aspect(words: Vocabulary, product: str) -> tuple[str, bool]:
    raw = words.rng.choice(words.aspects(product))
    return raw.rstrip("+"), raw.endswith("+")


def _judgement(words: Vocabulary, product: str, polarity: str) -> str:
    rng = words.rng
    aspect, plural = _aspect(words, product)
    form = rng.randrange(3)
    if form == 0:
        be = "are" if plural else "is"
        return f"the {aspect} {be} {rng.choice(INTENSIFIERS)}{words.adjective(polarity)}"
    if form == 1:
        return f"the {aspect} {rng.choice(VERB_PHRASES[polarity])[plural]}"
    template = rng.choice(NEGATED[polarity])[plural]
    return template.format(a=aspect, pos=words.adjective("positive"))


def _with_article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _fill(template: str, product: str, words: Vocabulary) -> str:
    return template.format(
        p=product,
        again=AGAIN.get(product, f"buy this {product} again"),
        a_pos=_with_article(words.adjective("positive")),
        a_neg=_with_article(words.adjective("negative")),
    )


def review(words: Vocabulary, polarity: str) -> str:
    rng = words.rng
    product = words.product()
    shape = rng.randrange(5)
    closer = rng.choice(CLOSERS[polarity])
    if shape == 0:  # one judgement
        body = _judgement(words, product, polarity)
    elif shape == 1:  # two judgements that agree
        body = f"{_judgement(words, product, polarity)} and {_judgement(words, product, polarity)}"
    elif shape == 2:  # a contrary detail, then the verdict
        body = f"{_judgement(words, product, OPPOSITE[polarity])}, but {_fill(rng.choice(OVERALL[polarity]), product, words)}"
    elif shape == 3:  # a verdict about the product, then a detail that agrees
        body = f"{_fill(rng.choice(OVERALL[polarity]), product, words)}; {_judgement(words, product, polarity)}"
    else:  # mixed: praise and a complaint in either order; only the hedged remark decides
        pair = [_judgement(words, product, "positive"), _judgement(words, product, "negative")]
        rng.shuffle(pair)
        body = f"{pair[0]}, while {pair[1]}"
        closer = rng.choice(HEDGED[polarity])
    text = rng.choice(OPENERS) + body
    text = text[0].upper() + text[1:] + "."
    return f"{text} {closer}".strip()


def _add_label_noise(rows: list[dict[str, str]], rng: random.Random) -> None:
    """Flip the label of NOISE_RATE of each class (as many each way, so the split stays balanced)."""
    by_label = {polarity: [i for i, row in enumerate(rows) if row["label"] == polarity] for polarity in OPPOSITE}
    for polarity, indices in by_label.items():
        for i in rng.sample(indices, round(NOISE_RATE * len(indices))):
            rows[i] = {"text": rows[i]["text"], "label": OPPOSITE[polarity]}


def generate(seed: int = SEED) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    rng = random.Random(seed)
    seen: set[str] = set()

    def draw(per_class: int, held_out: bool) -> list[dict[str, str]]:
        words = Vocabulary(rng, held_out=held_out)
        rows = []
        for polarity in ("negative", "positive"):
            count = 0
            while count < per_class:
                text = review(words, polarity)
                key = text.lower()
                if key in seen:
                    continue
                seen.add(key)
                rows.append({"text": text, "label": polarity})
                count += 1
        _add_label_noise(rows, rng)
        rng.shuffle(rows)
        return rows

    return draw(TRAIN_PER_CLASS, held_out=False), draw(VALIDATION_PER_CLASS, held_out=True)


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
