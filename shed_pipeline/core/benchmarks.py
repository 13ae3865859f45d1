"""Multiple-choice benchmarks from the bigbench archive (the analogue of SHED's MMLU and ARC, which
no package registry carries).

A bigbench multiple-choice task is a `task.json` under `benchmark_tasks/<name>/` whose examples have
`input` and `target_scores` ({choice: score}); the answer is the highest-scored choice. The requested
tasks are read out of the archive once (the same archive the default source comes from) into one
small Parquet file per task in the cache. Items are sampled deterministically per seed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.natural_instructions import fetch_archive, iter_task_files

Log = Callable[[str], None]

# Short, knowledge/commonsense tasks that a small LM can be scored on quickly on a CPU.
DEFAULT_TASKS = ("social_iqa", "strategyqa", "sports_understanding")
EXTRACT_VERSION = "1"


@dataclass(frozen=True)
class ChoiceItem:
    prompt: str  # the task's prefix and the item's input
    choices: tuple[str, ...]
    answer: int  # index of the highest-scored choice


def _cache_path(cache_dir: Path, task: str) -> Path:
    return cache_dir / f"bigbench_choice_v{EXTRACT_VERSION}" / f"{task}.parquet"


def extract_choice_tasks(archive: Path, tasks: Sequence[str], cache_dir: Path, log: Log = print) -> None:
    """Write the multiple-choice items of `tasks` to the cache (one Parquet per task)."""
    import polars as pl

    wanted = set(tasks)
    log(f"Extracting multiple-choice tasks {', '.join(sorted(wanted))} from {archive.name} ...")
    # Only the wanted tasks' files are parsed (some tasks are tens of MB).
    pattern = re.compile(r"/benchmark_tasks/(" + "|".join(re.escape(t) for t in sorted(wanted)) + r")/task\.json$")
    found = {m.group(1): data for m, data in iter_task_files(archive, pattern)}
    missing = wanted - set(found)
    if missing:
        raise ValueError(f"bigbench has no task {', '.join(sorted(missing))} (names are folder names under benchmark_tasks/, e.g. {', '.join(DEFAULT_TASKS)})")
    for task, data in found.items():
        prefix = str(data.get("task_prefix", "") or "").strip()
        cols: dict[str, list] = {"example_index": [], "prefix": [], "input": [], "choices": [], "answer": []}
        for i, ex in enumerate(data.get("examples", [])):
            scores = ex.get("target_scores")
            if not isinstance(scores, dict) or len(scores) < 2:
                continue
            choices = [str(c) for c in scores]
            values = [float(v) for v in scores.values()]
            if values.count(max(values)) > 1:  # several right answers: accuracy by argmax would be wrong
                continue
            cols["example_index"].append(i)
            cols["prefix"].append(prefix)
            cols["input"].append(str(ex.get("input", "")))
            cols["choices"].append(choices)
            cols["answer"].append(values.index(max(values)))
        if not cols["answer"]:
            raise ValueError(f"bigbench task {task} has no multiple-choice items (no target_scores)")
        out = _cache_path(cache_dir, task)
        with atomic_path(out) as tmp:
            pl.DataFrame(cols).write_parquet(tmp)
        log(f"  {task}: {len(cols['answer'])} items -> {out}")


def load_choice_items(tasks: Sequence[str], items_per_task: int, seed: int, cache_dir: Path, log: Log = print, from_end: bool = False) -> dict[str, list[tuple[str, str, tuple[str, ...], int]]]:
    """Per task, `items_per_task` items (all when 0) as (prefix, input, choices, answer), chosen by a
    hash of (seed, task, example index): the same seed gives the same items everywhere. The
    evaluation takes items from the start of that order and the lm utility `from_end`, so a task
    used by both is never scored on the items it was valued on (while 2 x items <= the task's size)."""
    import polars as pl

    if items_per_task < 0:
        raise ValueError(f"items per benchmark must be >= 0 (0 = all), got {items_per_task}")

    missing = [t for t in tasks if not _cache_path(cache_dir, t).is_file()]
    if missing:
        extract_choice_tasks(fetch_archive(cache_dir, log), missing, cache_dir, log)
    out = {}
    for task in tasks:
        df = pl.read_parquet(_cache_path(cache_dir, task))
        rank = [hashlib.sha256(f"{seed}:{task}:{i}".encode()).hexdigest() for i in df["example_index"]]
        df = df.with_columns(pl.Series("_rank", rank)).sort("_rank", descending=from_end)
        if items_per_task:
            df = df.head(items_per_task)
        out[task] = [(r["prefix"], r["input"], tuple(r["choices"]), int(r["answer"])) for r in df.iter_rows(named=True)]
    return out
