"""One run at a time per project folder.

A project folder holds state that a run reads and rewrites as a whole: the asset values, the cluster
anchors, the validation snapshot, the lineage database, the published curated files. Two runs that
interleave there would read each other's data. Runs therefore take turns: the run that orchestrates
the steps (the CLI's process, or Dagster's run worker for runs started by the UI, a schedule or a
sensor) holds an exclusive lock on `<home>/project.lock` for the whole run, and a second run waits,
saying which run it waits for, or fails at once with one line when told not to wait.

The lock is `flock(2)`: the kernel drops it when its holder exits, also on SIGKILL, so a crashed run
never leaves the project locked. The holder describes itself (run id, how it was started, pid, host,
start time) in the lock file, for the waiting run to name.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

LOCK_NAME = "project.lock"

Log = Callable[[str], None]


class ProjectBusy(Exception):
    """The project folder is in use by another run and the caller asked not to wait."""


@dataclass(frozen=True)
class Holder:
    run_id: str
    via: str  # how the run was started: "shed-pipeline run", "sensor source_change_sensor", ...
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    since: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))

    def describe(self) -> str:
        return f"run {self.run_id} ({self.via}, pid {self.pid} on {self.host}, since {self.since})"


# Locks this process holds, by lock path: a run that already holds its project's lock (the CLI
# around an in-process execution) may enter it again instead of waiting for itself.
_held: dict[str, tuple[str, int]] = {}
_held_guard = threading.Lock()


def lock_path(home: str | Path) -> Path:
    return Path(home).expanduser() / LOCK_NAME


def current_holder(home: str | Path) -> Holder | None:
    """Who holds (or last held) the project's lock, as its holder wrote it; None if unknown."""
    try:
        data = json.loads(lock_path(home).read_text(encoding="utf-8") or "null")
        return Holder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


@contextmanager
def project_lock(
    home: str | Path,
    holder: Holder,
    log: Log = print,
    wait: bool = True,
    poll_s: float = 0.5,
    report_every_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Hold the project folder's lock for the block. While another run holds it: wait (logging which
    run, then again every `report_every_s`), or with `wait=False` raise ProjectBusy naming it."""
    path = lock_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _held_guard:
        mine = _held.get(key)
        if mine is not None and mine[0] == holder.run_id:
            _held[key] = (mine[0], mine[1] + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            _release_reentry(key)
        return

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started, last_report = clock(), None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                other = current_holder(home)
                who = other.describe() if other is not None else "another run"
                if not wait:
                    raise ProjectBusy(f"project folder {Path(home).expanduser()} is busy: {who} is using it; run again when it has finished, or wait for it (drop --no-wait)") from None
                now = clock()
                if last_report is None or now - last_report >= report_every_s:
                    waited = f" (waited {now - started:.0f}s)" if last_report is not None else ""
                    log(f"waiting for {who} to finish with project folder {Path(home).expanduser()}: runs on one project take turns{waited}")
                    last_report = now
                sleep(poll_s)
        if last_report is not None:
            log(f"project folder is free after {clock() - started:.0f}s; starting")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode("utf-8"), 0)
        with _held_guard:
            _held[key] = (holder.run_id, 1)
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(key, None)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _release_reentry(key: str) -> None:
    with _held_guard:
        run_id, depth = _held[key]
        _held[key] = (run_id, depth - 1)
