"""The manifest of a set of published files: which files belong together, with their sizes and digests."""

from __future__ import annotations

import json
from pathlib import Path

from shed_pipeline.core.files import sha256_file, write_text_atomic


def write_manifest(dest: str | Path, files: list[Path], **about) -> Path:
    """A JSON manifest of `files` (each one's bytes and sha256) and `about` (the run id, the row
    count). Written after the files and published after them, it is what says which files belong
    together: a reader that finds each file's sha256 as listed has one run's set, never a mix."""
    entries = {Path(f).name: {"bytes": Path(f).stat().st_size, "sha256": sha256_file(f)} for f in files}
    return write_text_atomic(dest, json.dumps({**about, "files": entries}, indent=2, sort_keys=True) + "\n")
