"""Multiple-choice benchmarks from the bigbench archive (the analogue of SHED's MMLU and ARC, which
no package registry carries).

A bigbench multiple-choice task is a `task.json` under `benchmark_tasks/<name>/` whose examples have
`input` and `target_scores` ({choice: score}); the answer is the highest-scored choice. Some tasks
hold their items in subtasks (`hhh_alignment/harmless`, ...): naming the parent takes all of them.
Names are checked against an index of the archive's multiple-choice tasks (built once, cached), so a
wrong name fails before any work, with the names that exist. The requested tasks are read out of
the archive once (the same archive the default source comes from) into one small Parquet file per
task in the cache. Items are sampled deterministically per seed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.progress import Log
from shed_pipeline.core.sources.packaged.natural_instructions import fetch_archive, iter_task_files

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


def _usable(example) -> tuple[list[str], int] | None:
    """(choices, answer) of a multiple-choice example; None when it is not one (free text, fewer
    than two choices, or several top-scored choices, where accuracy by argmax would be wrong)."""
    scores = example.get("target_scores") if isinstance(example, dict) else None
    if not isinstance(scores, dict) or len(scores) < 2:
        return None
    values = [float(v) for v in scores.values()]
    if values.count(max(values)) > 1:
        return None
    return [str(c) for c in scores], values.index(max(values))


def choice_index(cache_dir: Path, log: Log = print, *, archive: Path | None = None) -> dict[str, int]:
    """Every multiple-choice task of the bigbench archive (subtasks as `parent/sub`) and its number
    of usable items. Built by one pass over the archive on first use (about a minute), then read
    from the cache."""
    archive = fetch_archive(cache_dir, log, archive=archive)
    path = cache_dir / f"bigbench_choice_v{EXTRACT_VERSION}" / "index.json"
    identity = {"archive": archive.name, "bytes": archive.stat().st_size}
    try:
        cached = json.loads(path.read_text())
        if cached.get("identity") == identity:
            return dict(cached["tasks"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    log(f"Indexing the multiple-choice tasks of {archive.name} (once) ...")
    tasks: dict[str, int] = {}
    for m, data in iter_task_files(
        archive, re.compile(r"/benchmark_tasks/(.+)/task\.json$"), needle=b'"target_scores"'
    ):
        n = sum(_usable(ex) is not None for ex in data.get("examples", []))
        if n:
            tasks[m.group(1)] = n
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"identity": identity, "tasks": dict(sorted(tasks.items()))}, indent=1))
    log(f"  {len(tasks)} multiple-choice tasks")
    return tasks


def resolve_benchmarks(names: Sequence[str], index: dict[str, int]) -> dict[str, list[str]]:
    """Each requested name's tasks: itself, or for a parent every subtask under it. An unknown name
    fails with what is close and how to list them all."""
    out: dict[str, list[str]] = {}
    for name in names:
        leaves = [name] if name in index else sorted(t for t in index if t.startswith(name.rstrip("/") + "/"))
        if not leaves:
            close = difflib.get_close_matches(
                name, list(index) + sorted({t.split("/")[0] for t in index}), n=5, cutoff=0.5
            )
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown benchmark {name!r}: bigbench has no multiple-choice task of that name{hint} "
                f"({len(index)} tasks: `shed-pipeline benchmarks` lists them)"
            )
        out[name] = leaves
    return out


def check_benchmarks(
    names: Sequence[str], cache_dir: Path, log: Log = print, *, archive: Path | None = None
) -> dict[str, list[str]]:
    """`resolve_benchmarks` against the archive's index: what a run checks before any work."""
    return resolve_benchmarks(names, choice_index(cache_dir, log, archive=archive)) if names else {}


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
        raise ValueError(
            f"bigbench has no task {', '.join(sorted(missing))} "
            f"(names are folder names under benchmark_tasks/, e.g. {', '.join(DEFAULT_TASKS)})"
        )
    for task, data in found.items():
        prefix = str(data.get("task_prefix", "") or "").strip()
        cols: dict[str, list] = {"example_index": [], "prefix": [], "input": [], "choices": [], "answer": []}
        for i, ex in enumerate(data.get("examples", [])):
            usable = _usable(ex)
            if usable is None:
                continue
            cols["example_index"].append(i)
            cols["prefix"].append(prefix)
            cols["input"].append(str(ex.get("input", "")))
            cols["choices"].append(usable[0])
            cols["answer"].append(usable[1])
        if not cols["answer"]:
            raise ValueError(f"bigbench task {task} has no multiple-choice items (no target_scores)")
        out = _cache_path(cache_dir, task)
        with atomic_path(out) as tmp:
            pl.DataFrame(cols).write_parquet(tmp)
        log(f"  {task}: {len(cols['answer'])} items -> {out}")


def load_choice_items(
    tasks: Sequence[str],
    items_per_task: int,
    seed: int,
    cache_dir: Path,
    log: Log = print,
    *,
    from_end: bool = False,
    archive: Path | None = None,
) -> dict[str, list[tuple[str, str, tuple[str, ...], int]]]:
    """Per requested task (a parent name: all its subtasks' items together), `items_per_task` items
    (all when 0) as (prefix, input, choices, answer), chosen by a hash of (seed, task, example
    index): the same seed gives the same items everywhere. The evaluation takes items from the start
    of that order and the lm utility `from_end`, so a task used by both is never scored on the items
    it was valued on (while 2 x items <= the task's size)."""
    import polars as pl

    if items_per_task < 0:
        raise ValueError(f"items per benchmark must be >= 0 (0 = all), got {items_per_task}")
    if all(_cache_path(cache_dir, t).is_file() for t in tasks):
        leaves = {t: [t] for t in tasks}  # extracted before: no archive needed
    else:
        leaves = check_benchmarks(tasks, cache_dir, log, archive=archive)
        missing = sorted({leaf for ls in leaves.values() for leaf in ls if not _cache_path(cache_dir, leaf).is_file()})
        if missing:
            extract_choice_tasks(fetch_archive(cache_dir, log, archive=archive), missing, cache_dir, log)
    out = {}
    for task in tasks:
        frames = []
        for leaf in leaves[task]:
            df = pl.read_parquet(_cache_path(cache_dir, leaf))
            frames.append(
                df.with_columns(
                    pl.Series(
                        "_rank",
                        [hashlib.sha256(f"{seed}:{leaf}:{i}".encode()).hexdigest() for i in df["example_index"]],
                    )
                )
            )
        df = pl.concat(frames).sort("_rank", descending=from_end)
        if items_per_task:
            df = df.head(items_per_task)
        out[task] = [(r["prefix"], r["input"], tuple(r["choices"]), int(r["answer"])) for r in df.iter_rows(named=True)]
    return out
