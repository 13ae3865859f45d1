"""Helpers shared by the asset modules: data versions, metadata, lineage inputs, graph-asset pieces."""

import base64
import hashlib
import re
from pathlib import Path
from typing import Iterator, Sequence

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline import __version__
from shed_pipeline.core.objectstore import is_s3, publish
from shed_pipeline.resources import PathsResource, latest_partition_run, object_store

# Recorded in lineage with every asset: which code produced the records.
CODE_VERSION = __version__


def one_config(config_class: type[dg.Config], ops: Sequence[str]) -> dg.ConfigMapping:
    """One config for every op of a graph asset: run config and the launchpad read as for a one-op asset."""
    return dg.ConfigMapping(
        config_fn=lambda cfg: {op: {"config": cfg} for op in ops}, config_schema=config_class.to_config_schema()
    )


def graph_ins(columns: Sequence[str], *after: str) -> dict[str, dg.In]:
    """Inputs of a graph asset's op: raw_dataset read for `columns` at most, and Nothing inputs named
    `after` that only order the op after others (the shares it waits for)."""
    return {"raw_dataset": dg.In(metadata={"columns": list(columns)}), **{name: dg.In(dg.Nothing) for name in after}}


def worker_parts(kind: str, workers: int, output_name: str) -> Iterator[dg.DynamicOutput]:
    """One dynamic output per worker, keyed `<kind>_<i>_of_<workers>` (see `worker_part`)."""
    for i in range(workers):
        yield dg.DynamicOutput(None, mapping_key=f"{kind}_{i}_of_{workers}", output_name=output_name)


def worker_part(context: dg.OpExecutionContext) -> tuple[int, int]:
    """(i, workers) of a mapped step, from its key `<kind>_<i>_of_<workers>`."""
    i, workers = re.fullmatch(r"[a-z]+_(\d+)_of_(\d+)", context.get_mapping_key() or "").groups()
    return int(i), int(workers)


FRAME_HASH_ROWS = 65_536


def frame_version(df: pl.DataFrame) -> dg.DataVersion:
    """A content hash of a frame: equal content, equal version (independent of run or time).
    polars row hashes are stable within a polars release, which is all a data version needs."""
    h = hashlib.sha256()
    h.update(str(df.schema).encode())
    # A block of rows at a time: row hashes do not depend on the other rows, so the bytes are those
    # of one whole-frame hash_rows, which takes about 3x a million 384-d vectors' size in memory.
    for start in range(0, df.height, FRAME_HASH_ROWS):
        h.update(df.slice(start, FRAME_HASH_ROWS).hash_rows(seed=0).to_numpy().tobytes())
    return dg.DataVersion(h.hexdigest()[:24])


def png_md(png: bytes, alt: str) -> dg.MetadataValue:
    # Dagster has no image metadata type; an inline data URI renders in the UI's markdown.
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def publish_outputs(paths: PathsResource, s3: S3Resource, files: list[Path], log) -> dict[str, dg.MetadataValue]:
    """Result files written under paths.out(): with an s3:// out_dir, also uploaded there (one
    atomic PUT each). Metadata pointing at where a user finds each file."""
    if not is_s3(paths.out_dir):
        return {f.name: dg.MetadataValue.path(str(f)) for f in files}
    locations = publish(object_store(s3, log), files, paths.out_dir)
    return {f.name: dg.MetadataValue.url(loc) for f, loc in zip(files, locations, strict=True)}


def input_runs(context: dg.AssetExecutionContext, upstream: list[str]) -> dict[str, str | None]:
    """The run that produced each upstream asset this step reads (lineage across runs). A
    partitioned (sharded) upstream adds the run of each partition read, as `<asset>/<partition>`
    (a backfill writes each shard in its own run); its own entry is the latest of them."""
    out: dict[str, str | None] = {}
    graph = context.job_def.asset_layer.asset_graph
    for name in upstream:
        key = dg.AssetKey(name)
        ev = context.instance.get_latest_materialization_event(key)
        out[name] = ev.run_id if ev is not None else None
        partitions = graph.get(key).partitions_def if graph.has(key) else None
        for part in partitions.get_partition_keys() if partitions is not None else []:
            out[f"{name}/{part}"] = latest_partition_run(context.instance, key, part)
    return out


def upstream_data_changed() -> dg.AutomationCondition:
    """Run when an upstream asset's *data version* changed, not whenever it ran (`eager()` would
    re-run downstream after an upstream run that produced the same data). Not while this asset or
    an upstream one is being computed, not again right after it ran (a whole-job run updates the
    upstream and this asset together), and not while an upstream asset is missing."""
    return (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.newly_updated()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.any_deps_missing()
    ).with_label("upstream data changed")
