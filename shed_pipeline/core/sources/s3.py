"""Sources under an s3:// location: which objects a source is, a local copy to read them from, and
a cheap change check for the sensor (keys, sizes and ETags: nothing is downloaded to notice a change).

An s3:// source is either one object (`s3://bucket/data.jsonl`) or every supported object under a
folder-like prefix (`s3://bucket/instructions/`, recursive, hidden names and other types skipped),
exactly like a local file or folder. Rows name their object by its s3:// location.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from shed_pipeline.core.files import folder_lock
from shed_pipeline.core.objectstore import ObjectChanged, ObjectInfo, ObjectStore, ObjectStoreError, S3Uri
from shed_pipeline.core.sources.digests import file_digest
from shed_pipeline.core.sources.listing import why_skipped
from shed_pipeline.core.sources.readers import SUPPORTED_SUFFIXES, source_kind
from shed_pipeline.core.sources.scan import SourceScan
from shed_pipeline.core.sources.units import SourceError


def normalize(location: str) -> str:
    """The label a source is recorded under: no trailing slash (s3://b/p and s3://b/p/ are one source)."""
    uri = S3Uri.parse(location)
    return str(S3Uri(uri.bucket, uri.key.rstrip("/")))


def list_source_objects(
    store: ObjectStore, location: str, skipped: list[tuple[str, str]] | None = None
) -> list[ObjectInfo]:
    """The objects of a source, sorted by key. Raises SourceError naming the location when there are none.
    Under a prefix, the objects not read are appended to `skipped` as (s3:// location, why): the same
    rule as a local folder (listing.why_skipped on the key below the prefix: hidden paths, other types)."""
    uri = S3Uri.parse(location)
    key = uri.key.rstrip("/")
    try:
        if key and source_kind(key) is not None and not uri.key.endswith("/"):
            one = store.head(S3Uri(uri.bucket, key))
            if one is not None:
                return [one]
        prefix = f"{key}/" if key else ""
        objs = []
        for o in store.list(S3Uri(uri.bucket, prefix)):
            relative = o.key[len(prefix) :]
            if not relative or relative.endswith("/"):
                continue  # a "folder" marker, not an object with content
            why = why_skipped(relative)
            if why is None:
                objs.append(o)
            elif skipped is not None:
                skipped.append((str(S3Uri(uri.bucket, o.key)), why))
    except ObjectStoreError as exc:
        raise SourceError(str(exc)) from exc
    if not objs:
        raise SourceError(f"{location}: no {', '.join(SUPPORTED_SUFFIXES)} objects at this location")
    return objs


def listing_version(objs: list[ObjectInfo]) -> str:
    """A version of the listing: changes when an object is added, removed or rewritten (new ETag or size)."""
    h = hashlib.sha256()
    for o in sorted(objs, key=lambda o: o.key):
        h.update(f"{o.key}\0{o.size}\0{o.etag}\n".encode())
    return "s3-" + h.hexdigest()[:24]


@dataclass
class MirroredFile:
    path: Path  # the local copy
    location: str  # s3://bucket/key
    sha256: str


def mirror_source(store: ObjectStore, location: str, objs: list[ObjectInfo], mirror_dir: Path) -> list[MirroredFile]:
    """Local copies of the objects, downloaded only when an object's ETag or size is new to the
    mirror (and pinned to the listed ETag: ObjectChanged if it was rewritten since); copies of
    objects no longer in the listing are removed. Callers hold `mirror_lock` around this and the
    reads of the copies."""
    uri = S3Uri.parse(location)
    mirror_dir.mkdir(parents=True, exist_ok=True)
    out: list[MirroredFile] = []
    keep = set()
    for o in objs:
        tag = hashlib.sha256(f"{uri.bucket}\0{o.key}\0{o.size}\0{o.etag}".encode()).hexdigest()[:24]
        local = mirror_dir / f"{tag}{Path(o.key).suffix.lower()}"
        keep.add(local.name)
        obj_uri = S3Uri(uri.bucket, o.key)
        try:
            if local.exists() and local.stat().st_size == o.size:
                digest = file_digest(local)
            else:
                digest = store.download(obj_uri, local, etag=o.etag)
        except ObjectChanged:
            raise
        except ObjectStoreError as exc:
            raise SourceError(str(exc)) from exc
        out.append(MirroredFile(local, str(obj_uri), digest))
    for stale in mirror_dir.iterdir():
        # Hidden names are temporaries and the lock: left alone.
        if stale.is_file() and stale.name not in keep and not stale.name.startswith("."):
            stale.unlink(missing_ok=True)
    return out


def mirror_lock(mirror_dir: Path):
    """An exclusive lock on a mirror folder, so that two runs reading the same source (a sensor's
    run beside a manual one) never remove or replace a copy the other is reading."""
    return folder_lock(mirror_dir)


@contextmanager
def mirrored(
    store: ObjectStore, location: str, mirror_dir: Path, attempts: int = 3, skipped: list[tuple[str, str]] | None = None
) -> Iterator[tuple[list[ObjectInfo], list[MirroredFile]]]:
    """The source's listing and local copies that match it, locked while the caller reads them. An
    object rewritten between the listing and its download means listing again (up to `attempts`).
    `skipped` gets the objects the (last) listing does not read, as list_source_objects says."""
    with mirror_lock(mirror_dir):
        for attempt in range(1, attempts + 1):
            listing_skipped: list[tuple[str, str]] = []
            objs = list_source_objects(store, location, listing_skipped)
            try:
                files = mirror_source(store, location, objs, mirror_dir)
                break
            except ObjectChanged as exc:
                if attempt == attempts:
                    raise SourceError(
                        f"{exc} (it kept changing over {attempts} listings; try again when the writer is done)"
                    ) from exc
        if skipped is not None:
            skipped.extend(listing_skipped)
        yield objs, files


def scan_s3_source(store: ObjectStore, location: str) -> SourceScan:
    """The sensor's view of an s3:// source: key -> [size, etag], and the listing version."""
    objs = list_source_objects(store, location)
    return SourceScan(listing_version(objs), {o.key: [o.size, o.etag] for o in objs}, 0)
