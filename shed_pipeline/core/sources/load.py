"""From a source name to validated, split rows: the whole of `raw_dataset` without Dagster.

`load_source` lists a source (a packaged name, a local file or folder, an s3:// object or prefix),
reads its files (`readers`), samples the units (`sampling`), validates them into rows and
quarantine entries (`checks`) and assigns splits (`splits`), returning frames in ROW_SCHEMA and
QUARANTINE_SCHEMA with what reading noticed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import polars as pl

from shed_pipeline.core.objectstore import ObjectStore, S3Uri, is_s3
from shed_pipeline.core.sources import s3
from shed_pipeline.core.sources.checks import consumed, validate_units
from shed_pipeline.core.sources.digests import combine_digests, file_digest
from shed_pipeline.core.sources.fields import FieldMapping
from shed_pipeline.core.sources.listing import list_source_files
from shed_pipeline.core.sources.packaged import (
    BIGBENCH_CHAT,
    DEFAULT_ROWS,
    NATURAL_INSTRUCTIONS,
    PACKAGED_SOURCES,
    bigbench_chat,
    natural_instructions,
)
from shed_pipeline.core.sources.quarantine import ReadResult
from shed_pipeline.core.sources.readers import iter_files, read_files
from shed_pipeline.core.sources.rows import Row
from shed_pipeline.core.sources.sampling import sample_units
from shed_pipeline.core.sources.splits import split_of
from shed_pipeline.core.sources.units import RawUnit, SourceReport, display_name

ROW_SCHEMA = {
    "row_id": pl.Utf8,
    "split": pl.Utf8,
    "task": pl.Utf8,
    "instruction": pl.Utf8,
    "input": pl.Utf8,
    "output": pl.Utf8,
    "source_file": pl.Utf8,
    "source_locator": pl.Int64,
    "source_order": pl.Int64,
    "record": pl.Utf8,
    "messages": pl.Utf8,  # chat rows: the prompt turns kept, JSON [{role, content}, ...]; null for alpaca rows
    # Chat rows: turns not used (after the last assistant turn, tool/other roles); 0 otherwise.
    "turns_dropped": pl.Int64,
}
QUARANTINE_SCHEMA = {
    "source_file": pl.Utf8,
    "source_locator": pl.Int64,
    "row_id": pl.Utf8,
    "reason": pl.Utf8,
    "detail": pl.Utf8,
    "excerpt": pl.Utf8,
}


@dataclass(kw_only=True)
class LoadedSource:
    rows: pl.DataFrame  # ROW_SCHEMA, in source order
    quarantine: pl.DataFrame
    units_available: int  # units in the source before sampling
    fingerprint: str  # content hash of the files read
    label: str
    result: ReadResult
    # What a watcher compares: the fingerprint for local files, the listing version (keys, sizes,
    # ETags) for s3:// sources, whose content the sensor does not download.
    version: str = ""
    # What reading noticed besides rows and quarantine (units.SourceReport), for the log and metadata:
    file_units: dict[str, int] = field(default_factory=dict)  # units read from each file, before sampling
    # Files not in plain UTF-8 -> 'utf-8-sig', 'utf-16-le', ...
    encodings: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why) of folder entries / objects not read
    # One line each: byte-order marks, files without records, format guesses.
    notes: list[str] = field(default_factory=list)

    @property
    def turns_dropped_after_last_assistant(self) -> int:
        return self.result.turns_after_last_assistant

    @property
    def turns_dropped_other_roles(self) -> int:
        return self.result.turns_other_roles


def source_label(source: str) -> str:
    """What a source is recorded under in lineage, and what source_change_sensor looks up: the
    packaged data's name, an s3:// location without its trailing slash, or an absolute path."""
    if source in PACKAGED_SOURCES:
        return source
    if is_s3(source):
        return s3.normalize(source)
    path = Path(source).expanduser()
    try:
        path = path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop: load_source says so, naming the path
        path = path.absolute()
    return display_name(path)


def read_units(source: str | os.PathLike[str], report: SourceReport | None = None) -> list[RawUnit]:
    """The units of every file of a local file or folder source (`list_source_files`), in order."""
    skipped = report.skipped if report is not None else None
    return read_files([(path, display_name(path)) for path in list_source_files(source, skipped)], report)


def load_source(
    source: str,
    mapping: FieldMapping,
    *,
    rows: int | None,
    seed: int,
    max_chars: int,
    validation_fraction: float,
    test_fraction: float,
    cache_dir: Path,
    log: Callable[[str], None] = print,
    store: ObjectStore | None = None,
    mirror_dir: Path | None = None,
    bigbench_archive: Path | None = None,
) -> LoadedSource:
    """The source's rows (a sample of `rows` units by `seed`; every unit when None, DEFAULT_ROWS
    for the packaged sources) validated against `mapping` and `max_chars`, with their splits.
    `store` and `mirror_dir` (where s3:// objects are copied to be read) serve s3:// sources;
    `bigbench_archive`, a local copy of the archive the packaged sources come from (else downloaded)."""
    version = None
    label = source_label(source)
    report = SourceReport()
    if source == NATURAL_INSTRUCTIONS:
        rows = DEFAULT_ROWS if rows is None else rows
        path = natural_instructions.natural_instructions_parquet(cache_dir, log, archive=bigbench_archive)
        named = [(path.name, file_digest(path))]
        units = read_units(path, report)
        stratify = "task"  # spread the sample over the 61 tasks
    elif source == BIGBENCH_CHAT:
        rows = DEFAULT_ROWS if rows is None else rows
        path = bigbench_chat.bigbench_chat_parquet(cache_dir, log, archive=bigbench_archive)
        named = [(path.name, file_digest(path))]
        units = read_units(path, report)
        # Our own columns, whatever fields the user's files use; the task field stays choosable:
        # `task` (614 tasks, the default) or `family` (45 task families).
        mapping = FieldMapping(format="messages", task=mapping.task)
        stratify = mapping.task
    elif is_s3(source):
        if store is None or mirror_dir is None:
            raise ValueError(f"{source}: reading an s3:// source needs an object store and a mirror folder")
        with s3.mirrored(
            store, source, mirror_dir / hashlib.sha256(label.encode()).hexdigest()[:16], skipped=report.skipped
        ) as (objs, mirrored):
            version = s3.listing_version(objs)
            log(f"{label}: {len(mirrored)} objects, {sum(o.size for o in objs):,} bytes")
            named = [(S3Uri.parse(m.location).name, m.sha256) for m in mirrored]
            units = read_files([(m.path, m.location) for m in mirrored], report)
        stratify = mapping.task
    else:
        files = list_source_files(source, report.skipped)
        named = [(f.name, file_digest(f)) for f in files]
        listed = [(f, display_name(f)) for f in files]  # the files just listed, not a second listing
        stratify = mapping.task
        if rows is None:  # every row: read, validate and store one record after another
            result, df = _validated(
                iter_files(listed, report),
                mapping,
                max_chars,
                seed=seed,
                validation_fraction=validation_fraction,
                test_fraction=test_fraction,
            )
            available = sum(report.file_units.values())
            return _loaded(df, result, available=available, named=named, label=label, version=version, report=report)
        units = read_files(listed, report)
    available = len(units)
    units = sample_units(units, rows, seed, stratify=stratify)
    result, df = _validated(
        consumed(units),
        mapping,
        max_chars,
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )
    del units
    return _loaded(df, result, available=available, named=named, label=label, version=version, report=report)


def _rows_frame(rows: list[Row], seed: int, validation_fraction: float, test_fraction: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row_id": [r.row_id for r in rows],
            "split": [split_of(r.row_id, seed, validation_fraction, test_fraction) for r in rows],
            "task": [r.task for r in rows],
            "instruction": [r.instruction for r in rows],
            "input": [r.input for r in rows],
            "output": [r.output for r in rows],
            "source_file": [r.source_file for r in rows],
            "source_locator": [r.source_locator for r in rows],
            "source_order": [r.source_order for r in rows],
            "record": [r.record for r in rows],
            "messages": [r.messages for r in rows],
            "turns_dropped": [r.turns_dropped for r in rows],
        },
        schema=ROW_SCHEMA,
    )


def _validated(
    units: Iterable[RawUnit],
    mapping: FieldMapping,
    max_chars: int,
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
) -> tuple[ReadResult, pl.DataFrame]:
    """Validated rows as one frame, built a block of rows at a time (peak memory: the frame, not a
    Python object per field per row besides it)."""
    frames: list[pl.DataFrame] = []
    result = validate_units(
        units,
        mapping,
        max_chars,
        sink=lambda block: frames.append(_rows_frame(block, seed, validation_fraction, test_fraction)),
    )
    df = pl.concat(frames, rechunk=False) if frames else _rows_frame([], seed, validation_fraction, test_fraction)
    return result, df


def _loaded(
    df: pl.DataFrame,
    result: ReadResult,
    *,
    available: int,
    named: list[tuple[str, str]],
    label: str,
    version: str | None,
    report: SourceReport,
) -> LoadedSource:
    q = pl.DataFrame(
        {
            "source_file": [e.source_file for e in result.quarantine],
            "source_locator": [e.source_locator for e in result.quarantine],
            "row_id": [e.row_id for e in result.quarantine],
            "reason": [e.reason for e in result.quarantine],
            "detail": [e.detail for e in result.quarantine],
            "excerpt": [e.excerpt for e in result.quarantine],
        },
        schema=QUARANTINE_SCHEMA,
    )
    fingerprint = combine_digests(named)
    return LoadedSource(
        rows=df,
        quarantine=q,
        units_available=available,
        fingerprint=fingerprint,
        label=label,
        result=result,
        version=version or fingerprint,
        file_units=report.file_units,
        encodings=report.encodings,
        skipped=report.skipped,
        notes=report.notes,
    )
