"""One run at a time per project folder.

A project folder holds state that a run reads and rewrites as a whole: the asset values, the cluster
anchors, the validation snapshot, the lineage database, the published curated files. Two runs that
interleave there would read each other's data. Runs therefore take turns: the run that orchestrates
the steps (the CLI's process, or Dagster's run worker for runs started by the UI, a schedule or a
sensor) holds an exclusive lock on `<home>/project.lock` for the whole run, and a second run waits,
saying which run it waits for, or fails at once with one line when told not to wait.

Runs that only compute shards of a sharded per-row step (each writes its own shard's files and
reads nothing another shard run writes) may share the folder: they hold the lock in shared mode, so
a backfill's shard runs run side by side while any other run waits for all of them, and they for it.

The lock is `flock(2)`: the kernel drops it when its holder exits, also on SIGKILL, so a crashed run
never leaves the project locked. The holder describes itself (run id, how it was started, pid, host,
start time) in the lock file, for the waiting run to name.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from shed_pipeline.core.progress import Log

LOCK_NAME = "project.lock"
# The run tag that names a run's project (`project_key`): a Dagster run queue limit of 1 per value
# keeps a second run of a project queued, rather than started and waiting on the lock.
PROJECT_TAG = "shed/project"


class ProjectBusy(Exception):
    """The project folder is in use by another run and the caller asked not to wait."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Holder:
    run_id: str
    via: str  # how the run was started: "shed-pipeline run", "sensor source_change_sensor", ...
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    since: str = field(default_factory=_now)

    def describe(self) -> str:
        return f"run {self.run_id} ({self.via}, pid {self.pid} on {self.host}, since {self.since})"


class ProjectLockError(Exception):
    """The project folder's lock file cannot be locked at all (not: it is busy)."""


def project_key(home: str | Path) -> str:
    """A short stable name of a project folder (a hash of its absolute path), for run tags."""
    return hashlib.sha256(str(Path(home).expanduser().resolve()).encode()).hexdigest()[:12]


def lock_path(home: str | Path) -> Path:
    return Path(home).expanduser() / LOCK_NAME


def shared_holders_dir(home: str | Path) -> Path:
    """Where shared holders describe themselves, one file each (several hold the lock at once)."""
    return Path(home).expanduser() / (LOCK_NAME + ".shared")


def _read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def current_holder(home: str | Path) -> Holder | None:
    """Who holds (or last held) the project's lock, as its holder wrote it (the earliest shared
    holder when only shared holders are in); None if unknown."""
    holder = _read_holder(lock_path(home))
    if holder is None:
        shared = [h for f in sorted(shared_holders_dir(home).glob("*.json")) if (h := _read_holder(f)) is not None]
        holder = min(shared, key=lambda h: h.since) if shared else None
    return holder


def _no_interrupt() -> None:
    """The default interrupt check while waiting: Ctrl-C raises KeyboardInterrupt by itself."""


@contextmanager
def project_lock(
    home: str | Path,
    holder: Holder,
    *,
    log: Log = print,
    wait: bool = True,
    poll_s: float = 0.5,
    report_every_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    check_interrupt: Callable[[], None] = _no_interrupt,
    shared: bool = False,
) -> Iterator[None]:
    """Hold the project folder's lock for the block (`shared`: alongside other shared holders, not
    alongside an exclusive one). While another run holds it: wait (logging which
    run, then again every `report_every_s`), or with `wait=False` raise ProjectBusy naming it.
    `check_interrupt` is called on every poll and raises to stop waiting (Dagster captures Ctrl-C
    and a terminate request as a flag that only its own checkpoints look at)."""
    folder = Path(home).expanduser()
    path = lock_path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ProjectLockError(f"{path}: cannot open the project lock ({exc.strerror or exc})") from exc
    try:
        started, last_report = clock(), None
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            except OSError as exc:  # ENOLCK: a network filesystem mounted without locking
                raise ProjectLockError(
                    f"{path}: cannot lock the project folder ({exc.strerror or exc}); its filesystem must support "
                    "file locks (NFS: do not mount with nolock)"
                ) from exc
            other = current_holder(folder)
            who = other.describe() if other is not None else "another run"
            if not wait:
                raise ProjectBusy(
                    f"project folder {folder} is busy: {who} is using it; run again when it has finished, or wait for "
                    "it (drop --no-wait)"
                )
            now = clock()
            if last_report is None or now - last_report >= report_every_s:
                waited = f" (waited {now - started:.0f}s)" if last_report is not None else ""
                log(f"waiting for {who} to finish with project folder {folder}: runs on one project take turns{waited}")
                last_report = now
            check_interrupt()
            sleep(poll_s)
        if last_report is not None:
            log(f"project folder is free after {clock() - started:.0f}s; starting")
        holder = replace(holder, since=_now())  # holding since now, not since it started waiting
        described = json.dumps(asdict(holder)).encode("utf-8")
        if shared:  # each shared holder in its own file, removed when it leaves
            os.ftruncate(fd, 0)  # no exclusive holder is in: what the lock file says is stale
            own = (
                shared_holders_dir(folder)
                / f"{os.getpid()}-{hashlib.sha256(holder.run_id.encode()).hexdigest()[:12]}.json"
            )
            own.parent.mkdir(exist_ok=True)
            own.write_bytes(described)
        else:  # no shared holder is in: files left by killed ones are stale
            for stale in shared_holders_dir(folder).glob("*.json"):
                stale.unlink(missing_ok=True)
            os.ftruncate(fd, 0)
            os.pwrite(fd, described, 0)
        try:
            yield
        finally:
            if shared:
                own.unlink(missing_ok=True)
            else:
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
