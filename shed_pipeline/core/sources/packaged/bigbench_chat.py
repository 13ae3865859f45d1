"""A second packaged source, `bigbench-chat`: bigbench's own free-text (generative) tasks as chat rows.

It is read from the same bigbench==1.0.0 archive as the default source (fetched once with pip) and
differs from it in shape: `messages` rows (system / user / assistant turns) from several hundred
small, unrelated tasks, many of them templated (list functions, data wrangling, ...).

Which tasks: every `benchmark_tasks/<name>/task.json` (subtasks as `parent/sub`) with examples that
have a `target` text, except
  - `natural_instructions/*` (the default source),
  - every task of a family (the first folder under benchmark_tasks) in which any task has an example
    with `target_scores`: those are the multiple-choice tasks the evaluation can be asked to score
    (a superset of `benchmarks.choice_index`, which also needs two choices and one best), and
    naming a parent there takes its subtasks, so their free-text siblings go too.
Tasks defined in Python (task.py, no task.json) are not read.

Rendering (one row per example): system = the task's `task_prefix`, else its `description`; user =
the task's declared `example_input_prefix` + input + `example_output_prefix` (bigbench's "Q:" / "A:"
defaults are not added: the roles say it), stripped; assistant = the target, the first one when it
is a list. Rows with an empty user or assistant turn, longer than MAX_CHARS in all, or repeating an
earlier example of their task are dropped and counted. Then at most PER_TASK examples per task are
kept, those with the smallest hash of (task, turns), so no task dominates and the choice does not
depend on example order; a row equal to one of an earlier task (by name) is dropped too.

The result is one Parquet file in the cache (columns task, family, example_index, messages), written
atomically on first use and read afterwards, with a JSON summary beside it (counts, and which tasks
were left out and why).
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections import Counter
from pathlib import Path
from typing import Iterator

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.progress import Log, Progress
from shed_pipeline.core.sources.packaged.natural_instructions import fetch_archive

TASK_PATTERN = re.compile(r"/benchmark_tasks/(.+)/task\.json$")
NI_FAMILY = "natural_instructions"
# Extraction version: bump when the rule or the table's shape changes (a new file is then made).
EXTRACT_VERSION = "1"
PER_TASK = 40
MAX_CHARS = 8_000  # system + user + assistant; the longest Natural Instructions row is about 11,000


def _text(value) -> str:
    return "" if value is None else str(value)


def render(task: dict, example: dict) -> list[dict[str, str]]:
    """The chat turns of one example (see the module docstring); the system turn is left out when
    the task has neither prefix nor description."""
    system = _text(task.get("task_prefix")).strip() or _text(task.get("description")).strip()
    user = (
        _text(task.get("example_input_prefix")) + _text(example.get("input")) + _text(task.get("example_output_prefix"))
    ).strip()
    target = example.get("target")
    if isinstance(target, list):
        target = target[0] if target else ""
    turns = [{"role": "system", "content": system}] if system else []
    return turns + [{"role": "user", "content": user}, {"role": "assistant", "content": _text(target).strip()}]


def _turns_key(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, ensure_ascii=False, separators=(",", ":"))


def _rank(task: str, key: str) -> str:
    return hashlib.sha256(f"{task}\n{key}".encode()).hexdigest()


def _task_files(archive: Path, log: Log) -> Iterator[tuple[str, dict]]:
    """(name, parsed task.json) of every task of the archive but Natural Instructions, with progress
    over the archive's bytes (one pass takes about a minute)."""
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:gz") as tf:
            total_mb = max(1, archive.stat().st_size // 1_000_000)
            progress = Progress(total_mb, f"reading {archive.name}", log, unit="MB")
            for member in tf:
                read_mb = min(raw.tell() // 1_000_000, total_mb)
                if read_mb > progress.done:
                    progress.advance(read_mb - progress.done)
                m = TASK_PATTERN.search(member.name)
                if not m or not member.isfile() or m.group(1).split("/")[0] == NI_FAMILY:
                    continue
                fh = tf.extractfile(member)
                if fh is not None:
                    yield m.group(1), json.loads(fh.read())
            if progress.done < total_mb:
                progress.advance(total_mb - progress.done)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise RuntimeError(f"{archive}: cannot read the bigbench archive ({exc}); delete it to download again") from exc


def extract_bigbench_chat(
    archive: Path, out_path: Path, per_task: int = PER_TASK, max_chars: int = MAX_CHARS, log: Log = print
) -> dict:
    """Write the chat rows of the archive's generative tasks to `out_path` (Parquet) and a summary
    beside it (`<name>.json`); return the summary."""
    import polars as pl

    log(f"Extracting bigbench's generative tasks as chat rows from {archive.name} ...")
    kept: dict[str, list[tuple[str, int, list[dict[str, str]]]]] = {}  # task -> [(rank, example index, turns)]
    mc_families: set[str] = set()
    left_out: dict[str, str] = {}
    dropped: Counter[str] = Counter()
    for name, data in _task_files(archive, log):
        examples = [ex for ex in data.get("examples", []) if isinstance(ex, dict)] if isinstance(data, dict) else []
        if any("target_scores" in ex for ex in examples):
            mc_families.add(name.split("/")[0])
            left_out[name] = "multiple_choice"
            continue
        if not any(ex.get("target") not in (None, "", []) for ex in examples):
            if examples:  # a parent's task.json, with its examples in subtasks, is not a task
                left_out[name] = "no_text_targets"
            continue
        seen: set[str] = set()
        candidates = []
        for i, ex in enumerate(examples):
            turns = render(data, ex)
            if not turns[-1]["content"] or not turns[-2]["content"]:
                dropped["empty"] += 1
            elif sum(len(t["content"]) for t in turns) > max_chars:
                dropped["too_long"] += 1
            elif (key := _turns_key(turns)) in seen:
                dropped["duplicate"] += 1
            else:
                seen.add(key)
                candidates.append((_rank(name, key), i, turns))
        if candidates:
            kept[name] = sorted(candidates)[:per_task]
            dropped["over_per_task"] += len(candidates) - len(kept[name])
        else:
            left_out[name] = "no_usable_examples"
    cols: dict[str, list] = {"task": [], "family": [], "example_index": [], "messages": []}
    seen_anywhere: set[str] = set()
    tasks_out = 0
    for name in sorted(kept):
        family = name.split("/")[0]
        if family in mc_families:
            left_out[name] = "multiple_choice_family"
            continue
        n_before = len(cols["task"])
        for _, i, turns in sorted(kept[name], key=lambda r: r[1]):
            key = _turns_key(turns)
            if key in seen_anywhere:
                dropped["duplicate_of_other_task"] += 1
                continue
            seen_anywhere.add(key)
            cols["task"].append(name)
            cols["family"].append(family)
            cols["example_index"].append(i)
            cols["messages"].append(turns)
        tasks_out += len(cols["task"]) > n_before
    if not cols["task"]:
        raise RuntimeError(
            f"{archive}: holds no generative bigbench tasks outside natural_instructions "
            "and the multiple-choice families"
        )
    summary = {
        "extract_version": EXTRACT_VERSION,
        "archive": archive.name,
        "per_task": per_task,
        "max_chars": max_chars,
        "tasks": tasks_out,
        "families": len(set(cols["family"])),
        "rows": len(cols["task"]),
        "dropped": dict(sorted(dropped.items())),
        "left_out": dict(sorted(left_out.items())),
    }
    schema = {
        "task": pl.Utf8,
        "family": pl.Utf8,
        "example_index": pl.Int64,
        "messages": pl.List(pl.Struct({"role": pl.Utf8, "content": pl.Utf8})),
    }
    # The summary first: the Parquet file's presence is what says the extraction is complete.
    with atomic_path(out_path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    with atomic_path(out_path) as tmp:
        pl.DataFrame(cols, schema=schema).write_parquet(tmp)
    reasons = Counter(left_out.values())
    rows_dropped = ", ".join(f"{n} {r}" for r, n in sorted(dropped.items())) or "none"
    log(
        f"  {summary['tasks']} tasks ({summary['families']} families), {summary['rows']} rows -> {out_path}; "
        f"left out: {', '.join(f'{n} {r}' for r, n in sorted(reasons.items()))}; rows dropped: {rows_dropped}"
    )
    return summary


def bigbench_chat_parquet(cache_dir: Path, log: Log = print, *, archive: Path | None = None) -> Path:
    """The extracted chat table, fetching the archive (`fetch_archive`) and extracting on first use."""
    out = cache_dir / f"bigbench_chat_v{EXTRACT_VERSION}" / f"bigbench_chat_v{EXTRACT_VERSION}.parquet"
    if not out.is_file():
        extract_bigbench_chat(fetch_archive(cache_dir, log, archive=archive), out, log=log)
    return out
