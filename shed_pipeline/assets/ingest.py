"""raw_dataset: the source read into rows with stable ids; bad rows quarantined with reasons."""

import dataclasses
import time

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource
from pydantic import Field

from shed_pipeline.assets.recording import record_step
from shed_pipeline.assets.versions import CODE_VERSION, frame_version
from shed_pipeline.core.objectstore import is_s3
from shed_pipeline.core.sources import (
    DEFAULT_ROWS,
    NATURAL_INSTRUCTIONS,
    FieldMapping,
    diff_rows,
    load_source,
    skipped_lines,
)
from shed_pipeline.resources import LineageResource, PathsResource, object_store
from shed_pipeline.summaries import RawDatasetSummary

QUARANTINE_CHECK = "quarantine_within_bound"


class RawDatasetConfig(dg.Config):
    source: str | None = Field(
        None,
        description=(
            "'natural-instructions', 'bigbench-chat', a path to a JSONL/JSON/Parquet/CSV file or a folder of them, or "
            "an s3:// object or prefix; default: the project's source (SHED_PIPELINE_SOURCE), else "
            "natural-instructions"
        ),
    )
    rows: int | None = Field(
        None,
        description=f"Deterministic sample size; default {DEFAULT_ROWS} for the packaged sources, every row for files",
    )
    seed: int = 0
    format: str = "auto"  # auto | alpaca | messages
    instruction_field: str = "instruction"
    input_field: str = "input"
    output_field: str = "output"
    messages_field: str = "messages"
    task_field: str | None = "task"  # optional label column (stratified sampling, task coverage, NMI)
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_chars: int = 32_000  # instruction + input + output; longer rows are quarantined
    max_quarantine_fraction: float = 0.2  # the blocking check fails the run above this


@dg.asset(
    group_name="ingest",
    code_version=CODE_VERSION,
    kinds={"python", "parquet"},
    pool="duckdb",
    check_specs=[
        dg.AssetCheckSpec(
            QUARANTINE_CHECK,
            asset="raw_dataset",
            blocking=True,
            description="Quarantined share of input rows is within the configured bound",
        )
    ],
)
def raw_dataset(
    context: dg.AssetExecutionContext,
    config: RawDatasetConfig,
    paths: PathsResource,
    lineage: LineageResource,
    s3: S3Resource,
):
    """Instruction rows with a content-hash `row_id`, a deterministic pool/validation/test split, and
    the original record (so outputs keep the input's schema). Every input row is either here or in
    the lineage quarantine table with a reason. Compared by row id with the previous snapshot of the
    same source: rows added, removed (and edited, as a removal plus an addition at the same place)
    are counted in the metadata and recorded in the lineage table `row_changes`."""
    t0 = time.perf_counter()
    source = config.source or paths.source or NATURAL_INSTRUCTIONS
    mapping = FieldMapping(
        format=config.format,
        instruction=config.instruction_field,
        input=config.input_field,
        output=config.output_field,
        messages=config.messages_field,
        task=config.task_field,
    )
    store = object_store(s3, context.log.warning) if is_s3(source) else None
    loaded = load_source(
        source,
        mapping,
        rows=config.rows,
        seed=config.seed,
        max_chars=config.max_chars,
        validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction,
        cache_dir=paths.cache(),
        log=context.log.info,
        store=store,
        mirror_dir=paths.s3_mirror(),
        bigbench_archive=paths.archive(),
    )
    # Nothing read or dropped without a word: encodings and format guesses, files not read, files
    # whose every record was quarantined.
    for line in loaded.notes:
        context.log.info(line)
    for line in skipped_lines(loaded.skipped):
        context.log.warning(line)
    for line in loaded.result.all_quarantined_files():
        context.log.warning(line)
    rows, q = loaded.rows, loaded.quarantine
    rows_in = rows.height + q.height
    splits = dict(rows.group_by("split").len().iter_rows())
    counts = loaded.result.quarantine_counts()
    summary = RawDatasetSummary(
        rows_available=loaded.units_available,
        rows_in=rows_in,
        rows_ok=rows.height,
        rows_quarantined=q.height,
        rows_pool=splits.get("pool", 0),
        rows_validation=splits.get("validation", 0),
        rows_test=splits.get("test", 0),
        quarantine_reasons=counts,
        files_read=len(loaded.file_units),
        files_skipped=len(loaded.skipped),
        encodings=loaded.encodings,
        turns_dropped_after_last_assistant=loaded.turns_dropped_after_last_assistant,
        turns_dropped_other_roles=loaded.turns_dropped_other_roles,
        tasks=rows["task"].n_unique() if rows["task"].null_count() < rows.height else 0,
    )
    source_record = {"source": loaded.label, "source_fingerprint": loaded.fingerprint, "source_version": loaded.version}
    store = lineage.store()
    store.write_table(
        "rows",
        context.run.run_id,
        rows.select("row_id", "split", "task", "source_file", "source_locator", "turns_dropped"),
    )
    store.write_table("quarantine", context.run.run_id, q)
    problem = _unusable(source, loaded, rows_in, splits.get("pool", 0))
    if problem:
        # Recorded before failing: the run, its quarantine and the reasons stay queryable.
        failed = dataclasses.replace(summary, extra={"failed": problem})
        record_step(context, store, config, failed, started=t0, **source_record)
        raise ValueError(problem)
    previous, previous_run = store.previous_snapshot(loaded.label, context.run.run_id)
    diff = diff_rows(previous, rows)
    store.write_table(
        "row_changes",
        context.run.run_id,
        diff.changes.with_columns(pl.lit(previous_run, dtype=pl.Utf8).alias("previous_run_id")),
    )
    summary = dataclasses.replace(summary, **diff.counts(), previous_run=previous_run)
    meta = record_step(context, store, config, summary, started=t0, **source_record)
    frac = q.height / rows_in
    per_file = loaded.result.file_counts()
    yield dg.Output(
        rows,
        data_version=frame_version(rows),
        metadata={
            **{k: v for k, v in meta.items() if k not in ("quarantine_reasons", "encodings")},
            "quarantine_reasons": dg.MetadataValue.json(counts),
            "encodings": dg.MetadataValue.json(loaded.encodings),
            "skipped_files": dg.MetadataValue.json([{"file": name, "why": why} for name, why in loaded.skipped]),
            # Every file's balance: records in the file = rows kept + rows quarantined (of the sample, with `rows`).
            "rows_per_file": dg.MetadataValue.json(
                {
                    f: {"records_in_file": n, "rows_ok": ok, "rows_quarantined": bad}
                    for f, n in loaded.file_units.items()
                    for ok, bad in [per_file.get(f, (0, 0))]
                }
            ),
            "source": loaded.label,
            "source_fingerprint": loaded.fingerprint,
            "preview": dg.MetadataValue.md(_preview(rows)),
        },
    )
    within = frac <= config.max_quarantine_fraction
    yield dg.AssetCheckResult(
        check_name=QUARANTINE_CHECK,
        passed=within,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "quarantined_fraction": frac,
            "bound": config.max_quarantine_fraction,
            "reasons": dg.MetadataValue.json(counts),
        },
        description=quarantine_bound_text(q.height, rows_in, config.max_quarantine_fraction, counts),
    )


def quarantine_bound_text(quarantined: int, rows_in: int, bound: float, reasons: dict[str, int]) -> str:
    """'312 of 1,400 rows quarantined (22.3%) > max_quarantine_fraction 0.2; reasons: missing_field 300, ...'"""
    frac = quarantined / rows_in if rows_in else 0.0
    top = ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return (
        f"{quarantined:,} of {rows_in:,} rows quarantined ({frac:.1%}) {'<=' if frac <= bound else '>'} "
        f"max_quarantine_fraction {bound:g}" + (f"; reasons: {top}" if top else "")
    )


def _unusable(source: str, loaded, rows_in: int, pool_rows: int) -> str | None:
    """Why the source cannot be curated (no records, or fewer than 2 pool rows), saying what happened."""
    if rows_in == 0:
        return "; ".join([f"{source}: the source holds no records", *skipped_lines(loaded.skipped, limit=3)])
    if pool_rows < 2:
        return (
            loaded.result.all_quarantined_message(loaded.label)
            or f"{source}: only {pool_rows} usable pool rows of {rows_in:,} records; need at least 2"
        )
    return None


def _preview(rows: pl.DataFrame) -> str:
    head = rows.head(5)
    lines = ["| row_id | split | task | instruction | output |", "|---|---|---|---|---|"]
    for r in head.iter_rows(named=True):
        cells = [r["row_id"][:12], r["split"], str(r["task"] or ""), r["instruction"][:60], r["output"][:40]]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)
