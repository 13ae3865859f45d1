"""Content hashes of source files: a file's sha256 (`file_digest`) and the fingerprint of a set of
files (`combine_digests`, `source_fingerprint`), which lineage records and the sensor compares."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from shed_pipeline.core.files import sha256_file
from shed_pipeline.core.sources.units import display_name, unreadable


def file_digest(path: Path) -> str:
    """sha256 of a source file's bytes; an unreadable file is a SourceError naming it."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise unreadable(display_name(path), exc) from exc


def combine_digests(named: Sequence[tuple[str, str]]) -> str:
    """The fingerprint of a set of files from (name, sha256 hex) pairs, in source order."""
    h = hashlib.sha256()
    for name, digest in named:
        h.update(name.encode("utf-8", "surrogateescape"))  # a file name that is not UTF-8: its bytes
        h.update(bytes.fromhex(digest))
    return h.hexdigest()[:24]


def source_fingerprint(files: Sequence[Path]) -> str:
    """Content hash of a set of files (names relative to nothing: content and order only)."""
    return combine_digests([(f.name, file_digest(f)) for f in files])
