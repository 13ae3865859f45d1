"""Which files a local source is, and why the others are not read.

A source is a file, or every supported file under a folder (recursive, sorted). Nothing is dropped
without a word: entries of a folder that are not read (other types, hidden, not regular files,
broken links) are listed as (name, why) in `SourceReport.skipped`, and logged with `skipped_lines`.
In a folder, any entry whose path below the folder has a component starting with "." is hidden
and not read. `why_skipped` is the one rule for local folders and s3:// prefixes.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Sequence

from shed_pipeline.core.sources.readers import EXPECTED, SUPPORTED_SUFFIXES, source_kind, unsupported_reason
from shed_pipeline.core.sources.units import SourceError, display_name

HIDDEN = "hidden (a name in its path starts with '.')"


def is_hidden(relative: str) -> bool:
    """A path below a source root (`/`-separated) with any component starting with '.'."""
    return any(part.startswith(".") for part in relative.split("/") if part)


def why_skipped(relative: str) -> str | None:
    """None when the file at `relative` (its path below the source root, '/'-separated) is read; else
    why not. The one rule for local folders and s3:// prefixes."""
    if is_hidden(relative):
        return HIDDEN
    if source_kind(relative) is None:
        return unsupported_reason(relative)
    return None


def skipped_lines(skipped: Sequence[tuple[str, str]], limit: int = 20) -> list[str]:
    """Log lines for skipped entries: each one up to `limit`, then one line counting the rest by reason."""
    lines = [f"{name}: not read: {why}" for name, why in skipped[:limit]]
    rest = skipped[limit:]
    if rest:
        by_reason = Counter(why.split(" (")[0] for _, why in rest)
        lines.append(
            f"and {len(rest):,} more not read: " + ", ".join(f"{why} {n:,}" for why, n in by_reason.most_common())
        )
    return lines


def _mode_name(mode: int) -> str:
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return what
    return "an unknown kind of file"


def _entry_kind(path: Path) -> tuple[str, str]:
    """("file" | "dir" | "missing" | "bad", why) for a path, following symbolic links."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            if exc.errno == errno.ELOOP:
                return "bad", "symbolic link loop"
            try:
                target = display_name(os.readlink(path))
            except OSError:
                target = "?"
            return "bad", f"broken symbolic link (points to {target})"
        if isinstance(exc, FileNotFoundError):
            return "missing", "no such file or folder"
        return "bad", f"cannot read ({exc.strerror or exc})"
    if stat.S_ISREG(st.st_mode):
        return "file", ""
    if stat.S_ISDIR(st.st_mode):
        return "dir", ""
    return "bad", f"not a regular file ({_mode_name(st.st_mode)})"


def list_source_files(source: str | os.PathLike[str], skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """A file, or every supported file under a folder (recursive, sorted for determinism).

    In a folder, entries that are not read are appended to `skipped` as (name, why): other types,
    hidden paths (a hidden folder is one entry), links to folders (not followed), FIFOs and other
    special files, broken links and link loops. A source that is none of these fails in one line."""
    path = Path(source)
    shown = display_name(path)
    kind, why = _entry_kind(path)
    if kind in ("missing", "bad"):
        raise SourceError(f"{shown}: {why}")
    if kind == "file":
        if source_kind(path.name) is None:
            raise SourceError(f"{shown}: {unsupported_reason(path.name)} ({EXPECTED})")
        return [path]
    files: list[Path] = []
    found: list[tuple[str, str]] = []
    _scan_folder(path, "", files, found)
    found.sort()
    if skipped is not None:
        skipped.extend(found)
    if not files:
        more = "; ".join(f"{n[len(shown) + 1 :] if n.startswith(shown + '/') else n}: {w}" for n, w in found[:3])
        more = f" (not read: {more}{f'; and {len(found) - 3} more' if len(found) > 3 else ''})" if found else ""
        raise SourceError(f"{shown}: folder holds no {', '.join(SUPPORTED_SUFFIXES)} files{more}")
    return sorted(files)  # Path order (by components), as before


def _scan_folder(folder: Path, relative: str, files: list[Path], skipped: list[tuple[str, str]]) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        if not relative:
            raise SourceError(f"{display_name(folder)}: cannot list the folder ({exc.strerror or exc})") from exc
        skipped.append((display_name(folder) + "/", f"cannot list the folder ({exc.strerror or exc})"))
        return
    for entry in entries:
        path = Path(entry.path)
        rel = f"{relative}{entry.name}"
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if entry.name.startswith("."):
            skipped.append((display_name(path) + ("/" if is_dir else ""), HIDDEN))
            continue
        if is_dir:
            _scan_folder(path, rel + "/", files, skipped)
            continue
        kind, why = _entry_kind(path)
        if kind == "dir":  # a link to a folder: not followed (loops, and files read twice)
            skipped.append((display_name(path), "symbolic link to a folder (not followed)"))
            continue
        if kind != "file":
            skipped.append((display_name(path), why))
            continue
        reason = why_skipped(rel)
        if reason:
            skipped.append((display_name(path), reason))
            continue
        files.append(path)
