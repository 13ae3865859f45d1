"""Small, local instruction data made in the tests: a few tasks with real structure, plus bad rows."""

import json
import random
from pathlib import Path

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
ANIMALS = ["cat", "dog", "horse", "sparrow", "salmon", "lizard", "frog", "eagle"]
KIND = {
    "cat": "mammal",
    "dog": "mammal",
    "horse": "mammal",
    "sparrow": "bird",
    "eagle": "bird",
    "salmon": "fish",
    "lizard": "reptile",
    "frog": "amphibian",
}


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """n distinct Alpaca-style rows spread over four tasks, each with a `task` label."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        t = i % 4
        if t == 0:
            a = 7 * i + rng.randrange(7)  # distinct per row
            rows.append(
                {
                    "instruction": "Write the digits of the number as English words, separated by spaces.",
                    "input": str(a),
                    "output": " ".join(WORDS[int(d)] for d in str(a)),
                    "task": "digits_to_words",
                }
            )
        elif t == 1:
            c1, c2 = rng.sample(COLOURS, 2)
            rows.append(
                {
                    "instruction": "Name the colour that is mentioned first in the sentence.",
                    "input": f"The {c1} box sits next to the {c2} chair #{i}.",
                    "output": c1,
                    "task": "first_colour",
                }
            )
        elif t == 2:
            a = rng.choice(ANIMALS)
            rows.append(
                {
                    "instruction": "Which class of animal is this? Answer with one word.",
                    "input": f"{a} (specimen {i})",
                    "output": KIND[a],
                    "task": "animal_class",
                }
            )
        else:
            x, y = i, rng.randrange(100)  # distinct per row
            rows.append(
                {
                    "instruction": "Add the two numbers and give only the result.",
                    "input": f"{x} + {y}",
                    "output": str(x + y),
                    "task": "addition",
                }
            )
    return rows


def write_jsonl(path: Path, rows: list[dict], extra_lines: list[bytes] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for r in rows:
            fh.write(json.dumps(r).encode() + b"\n")
        for line in extra_lines:
            fh.write(line + b"\n")
    return path


BAD_LINES = [
    b'{"instruction": "broken json", "output": ',  # malformed_json
    b'{"input": "no instruction", "output": "x"}',  # missing_field
    b'{"instruction": "   ", "output": "x"}',  # empty_field
    b'{"instruction": 42, "output": "x"}',  # wrong_type
    b'{"instruction": "bad bytes \xff\xfe", "output": "x"}',  # invalid_utf8
    b'["a", "list"]',  # not_an_object
]
