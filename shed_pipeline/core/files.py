"""Atomic local writes: a reader sees the previous file (or folder) or the new one, never a part.

Every writer of caches, state and outputs goes through `atomic_path`: the content is written to a
hidden temporary name beside the destination (same filesystem, so the rename is atomic; a random
part in the name keeps two writers apart, also pods on a shared volume, which all run as pid 1;
hidden, so folder scans skip it) and renamed over the destination only when the writing block
completes. On an error the temporary is removed and the destination is left as it was.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """A temporary path to write `dest`'s new content to (a file, or a folder the block creates);
    renamed onto `dest` when the block completes, removed if it raises."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(6)}.partial")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{dest}: the writer produced nothing at {tmp}")
        if tmp.is_dir() and dest.exists():
            _remove(dest)  # a folder cannot be renamed over a non-empty one
        os.replace(tmp, dest)
    except OSError as exc:
        _remove(tmp)
        if exc.errno == errno.ENOSPC:  # name what the user knows, not the hidden temporary
            raise OSError(errno.ENOSPC, "No space left on device", str(dest)) from exc
        raise
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def folder_lock(folder: str | Path, name: str = ".lock") -> Iterator[None]:
    """An exclusive lock on a folder (a hidden lock file in it, `flock(2)`) for the block: waits while
    another process holds it. The kernel drops the lock when its holder exits."""
    import fcntl  # POSIX; the pipeline runs on Linux and macOS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_text_atomic(dest: str | Path, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def sha256_file(path: str | Path) -> str:
    """sha256 hex of a file's bytes, read in blocks (files may be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
