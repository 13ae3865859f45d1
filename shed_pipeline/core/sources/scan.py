"""Scanning a local file or folder source for the sensor: noticing that it changed, cheaply enough to
poll. A file's content hash is reused while its size and modification time are unchanged, and the
fingerprint is the same one `raw_dataset` records in lineage (so a watcher and a run agree on what
"this content" is). s3:// sources are scanned by `s3.scan_s3_source`, from their listing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shed_pipeline.core.sources.digests import combine_digests, file_digest
from shed_pipeline.core.sources.listing import list_source_files


@dataclass
class SourceScan:
    fingerprint: str
    files: dict[str, list]  # path relative to the source -> [size, mtime_ns, sha256 hex]
    hashed: int  # files whose bytes were read this time

    def to_cursor(self) -> dict:
        return {"fingerprint": self.fingerprint, "files": self.files}


def scan_source(source: str | Path, previous: dict | None = None) -> SourceScan:
    """Fingerprint a file or folder source. `previous` is an earlier scan's `to_cursor()`."""
    root = Path(source).expanduser()
    files = list_source_files(root)
    known = (previous or {}).get("files", {})
    entries: dict[str, list] = {}
    named = []
    hashed = 0
    for f in files:
        st = f.stat()
        rel = f.name if root.is_file() else str(f.relative_to(root))
        old = known.get(rel)
        if old and old[0] == st.st_size and old[1] == st.st_mtime_ns:
            digest = old[2]
        else:
            digest = file_digest(f)
            hashed += 1
        entries[rel] = [st.st_size, st.st_mtime_ns, digest]
        named.append((f.name, digest))
    return SourceScan(combine_digests(named), entries, hashed)
