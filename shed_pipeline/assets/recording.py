"""The lineage record every asset writes: its key, config, summary, and the runs of the upstream
assets it read, taken from the step's context."""

import dataclasses
import time
from typing import Any

import dagster as dg

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.assets.versions import CODE_VERSION
from shed_pipeline.core.lineage import LineageStore
from shed_pipeline.resources import latest_partition_run
from shed_pipeline.summaries import Summary


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


def step_asset_key(context: dg.OpExecutionContext) -> dg.AssetKey:
    """The asset this step materializes (the only asset output of its op: one-op assets, and the
    final op of a graph-backed asset)."""
    return context.asset_key


def upstream_assets(context: dg.OpExecutionContext) -> list[str]:
    """The assets this step's asset depends on, in pipeline order."""
    deps = context.assets_def.asset_deps[step_asset_key(context)]
    return [name for name in ASSET_NAMES if dg.AssetKey(name) in deps]


def record_step(
    context: dg.OpExecutionContext,
    store: LineageStore,
    config: dg.Config,
    summary: Summary,
    *,
    started: float,
    source: str | None = None,
    source_fingerprint: str | None = None,
    source_version: str | None = None,
) -> dict[str, Any]:
    """Record this step in lineage: its asset, the code version, its config, its summary (with the
    seconds since `started`, a `time.perf_counter()` value) and the runs of the upstream assets it
    read; the asset and its upstream assets come from the context. Returns the summary's metadata
    entries, to which the asset adds what only the UI shows (plots, tables)."""
    summary = dataclasses.replace(summary, seconds=round(time.perf_counter() - started, 3))
    store.record_asset(
        context.run.run_id,
        step_asset_key(context).to_user_string(),
        CODE_VERSION,
        config.model_dump(),
        summary.metadata(),
        inputs=input_runs(context, upstream_assets(context)),
        source=source,
        source_fingerprint=source_fingerprint,
        source_version=source_version,
    )
    return summary.metadata()
