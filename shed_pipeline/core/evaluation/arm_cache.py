"""The evaluation arms' cache: each arm's results in a JSON file named by a hash of everything they
depend on, so a re-run whose subsets did not change fine-tunes nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from shed_pipeline.core.files import write_text_atomic
from shed_pipeline.core.lm import FinetuneBudget

CACHE_VERSION = 2  # 2: per-row / per-item scores; arms trained by epochs


def read_arm(path: Path) -> list[dict] | None:
    """An arm's cached results; None when it has none."""
    return json.loads(path.read_text()) if path.is_file() else None


def write_arm(path: Path, results: list[dict]) -> None:
    write_text_atomic(path, json.dumps(results))


def material_digest(test_prompts, test_targets, benchmarks) -> str:
    """A digest of what every arm is scored on: the test rows and the benchmark items."""
    h = hashlib.sha256()
    for part in (
        list(zip(test_prompts, test_targets, strict=True)),
        [(name, it.prompt, it.choices, it.answer) for name, items in benchmarks.items() for it in items],
    ):
        h.update(b"|")
        _update(h, part)
    return h.hexdigest()


def arm_path(
    cache_dir: Path,
    *,
    model_key: str,
    budget: FinetuneBudget | None,
    rows: Sequence[tuple[str, str]],
    material: str,
    choice_max_tokens: int,
) -> Path:
    """The file of one arm's results: named by a hash of the model, the arm's resolved budget, its
    rows' texts in order, the material it is scored on, the scoring's token limit and CACHE_VERSION."""
    ident = {
        "model": model_key,
        "budget": budget.as_dict() if budget else None,
        "material": material,
        "choice_max_tokens": choice_max_tokens,
        "version": CACHE_VERSION,
    }
    h = hashlib.sha256(json.dumps(ident, sort_keys=True).encode())
    _update(h, rows)
    return Path(cache_dir) / f"{h.hexdigest()[:32]}.json"


def _update(h, items) -> None:
    for item in items:
        b = json.dumps(item).encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
