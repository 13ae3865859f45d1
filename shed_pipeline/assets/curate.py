"""curated_subset: the rows a selection method chooses (SHED's QOCS / QWCS, their variants, or a
baseline), after optional near-duplicate removal, written for SFT trainers."""

import dataclasses
import json
import time
from typing import Optional

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline.assets.embed import with_embeddings
from shed_pipeline.assets.outputs import png_md, publish_outputs
from shed_pipeline.assets.recording import record_step
from shed_pipeline.assets.strategy_config import choice_field, chosen
from shed_pipeline.assets.versions import CODE_VERSION, frame_version, upstream_data_changed
from shed_pipeline.core import plots
from shed_pipeline.core.manifest import write_manifest
from shed_pipeline.core.selection import DEFAULT_METHOD, DEFAULT_METHOD_SETTINGS, METHODS, curate
from shed_pipeline.core.selection.tables import (
    near_duplicates_frame,
    selection_inputs,
    selections_frame,
    subset_problems,
    with_row_ids,
    write_outputs,
)
from shed_pipeline.resources import LineageResource, PathsResource
from shed_pipeline.summaries import CuratedSubsetSummary

SUBSET_CHECK = "subset_is_valid"
_method_ann, _method_field = choice_field(
    METHODS, DEFAULT_METHOD, "the selection method and its settings", DEFAULT_METHOD_SETTINGS
)


class CuratedSubsetConfig(dg.Config):
    method: _method_ann = _method_field  # type: ignore[valid-type]
    fraction: float = 0.1  # of the pool, unless size is given
    size: Optional[int] = None
    # TS-DShapley's removal-index rule: keep every row of the clusters that proxy_shapley_scores'
    # rule keeps (drop the lowest-valued ones); fraction and size are then ignored.
    auto_size: bool = False
    seed: int = 0
    # Also write each row's id (what `shed-pipeline lineage why` takes) into the curated records under
    # this field; None keeps the input's own schema. The ids are in curated.manifest.json either way.
    row_id_field: Optional[str] = None
    # Near-duplicate removal before the method: rows of a cluster whose prompt cosine exceeds this
    # are twins, one is kept (None: off; 0.95 is typical).
    dedup_threshold: Optional[float] = None
    dedup_keep: str = "source"  # which twin stays: the earlier in source order, or a row value kind (best)


@dg.asset(
    group_name="selection",
    code_version=CODE_VERSION,
    kinds={"python", "parquet"},
    pool="duckdb",
    automation_condition=upstream_data_changed(),
    check_specs=[
        dg.AssetCheckSpec(
            SUBSET_CHECK,
            asset="curated_subset",
            blocking=True,
            description="Selected rows are distinct pool rows and their number is the target",
        )
    ],
    ins={
        "raw_dataset": dg.AssetIn(metadata={"columns": ["row_id", "split", "task", "output", "record"]})
    },  # at most these: not the prompts
)
def curated_subset(
    context: dg.AssetExecutionContext,
    config: CuratedSubsetConfig,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    clusters: pl.DataFrame,
    proxy_shapley_scores: pl.DataFrame,
    row_values: pl.DataFrame,
    paths: PathsResource,
    lineage: LineageResource,
    s3: S3Resource,
):
    """The selected rows in draw order, each with its cluster, the cluster's proxy score and the rule
    that chose it. Also written as curated.jsonl and curated.parquet in the output folder."""
    t0 = time.perf_counter()
    method, settings = chosen(METHODS, config.method)
    scored = clusters.join(
        proxy_shapley_scores.select("cluster_id", "score"), on="cluster_id", how="left", maintain_order="left"
    )
    pool_size = int(scored["size"].sum())
    prefix = ""
    if config.auto_size:
        if (
            "dropped_by_removal_rule" not in proxy_shapley_scores.columns
            or proxy_shapley_scores["dropped_by_removal_rule"].null_count()
        ):
            raise ValueError(
                "auto_size needs the removal-index rule's result: re-materialize proxy_shapley_scores with "
                "removal_points > 0"
            )
        dropped = proxy_shapley_scores.filter(pl.col("dropped_by_removal_rule"))["cluster_id"]
        scored = scored.filter(~pl.col("cluster_id").is_in(dropped.implode()))
        prefix = (
            f"auto size: the removal-index rule dropped the {dropped.len()} lowest-valued of "
            f"{dropped.len() + scored.height} clusters; "
        )
    # The responses of the pool; the original records only of the rows selected (a million of them are gigabytes).
    pool_rows = raw_dataset.filter(pl.col("split") == "pool").select("row_id", "output").collect()
    pool_ids = set(pool_rows["row_id"].to_list())
    pool = with_embeddings(pool_rows, embeddings)  # the pool's vectors only
    del pool_rows
    inputs = selection_inputs(pool, scored, row_values, seed=config.seed, log=context.log.info)
    del pool
    result = curate(
        inputs,
        method.name,
        settings,
        fraction=config.fraction,
        size=config.size,
        every_row=config.auto_size,
        dedup_threshold=config.dedup_threshold,
        dedup_keep=config.dedup_keep,
    )
    n = result.target
    sel = selections_frame(
        result.selections,
        dict(zip(scored["cluster_id"].to_list(), scored["score"].to_list(), strict=True)),
        method.name,
        prefix,
    )
    records = (
        raw_dataset.filter(pl.col("row_id").is_in(sel["row_id"].to_list()))
        .select("row_id", "split", "task", "record")
        .collect()
    )
    subset = sel.join(records, on="row_id", how="left", maintain_order="left")
    del records
    row_ids = subset["row_id"].to_list()
    jsonl, parquet = write_outputs(
        with_row_ids([json.loads(r) for r in subset["record"].to_list()], row_ids, config.row_id_field), paths.out()
    )
    # The ids in the files' order: line i of curated.jsonl is row_ids[i] (`shed-pipeline lineage why ID`).
    manifest = write_manifest(
        paths.out() / "curated.manifest.json",
        [jsonl, parquet],
        run_id=context.run.run_id,
        rows=subset.height,
        row_id_field=config.row_id_field,
        row_ids=row_ids,
    )
    links = publish_outputs(paths, s3, [jsonl, parquet, manifest], context.log.warning)  # the manifest last
    store = lineage.store()
    store.write_table(
        "selections", context.run.run_id, sel.select("row_id", "cluster_id", "method", "draw_order", "score", "reason")
    )
    store.write_table("near_duplicates", context.run.run_id, near_duplicates_frame(result.near_duplicates))
    per_cluster = sel.group_by("cluster_id").len().sort("len", descending=True)
    summary = CuratedSubsetSummary(
        method=method.name,
        method_settings=dataclasses.asdict(settings),
        target_size=n,
        auto_size=config.auto_size,
        selected=sel.height,
        pool_rows=pool_size,
        near_duplicates_removed=len(result.near_duplicates),
        rows_after_dedup=result.rows_after_dedup,
        clusters_used=per_cluster.height,
        clusters_total=scored.height,
        tasks_covered=subset["task"].drop_nulls().n_unique(),
        curated_jsonl=links[jsonl.name].value,
        curated_parquet=links[parquet.name].value,
        curated_manifest=links[manifest.name].value,
    )
    meta = record_step(context, store, config, summary, started=t0)
    # In the UI, the files as links (local paths or s3:// URLs) rather than text.
    meta.update(
        curated_jsonl=links[jsonl.name], curated_parquet=links[parquet.name], curated_manifest=links[manifest.name]
    )
    meta["selections_per_cluster"] = png_md(
        plots.bars(
            [str(c) for c in per_cluster["cluster_id"].head(30)],
            per_cluster["len"].head(30).to_list(),
            "selected rows per cluster (top 30)",
            "rows",
        ),
        "selections per cluster",
    )
    yield dg.Output(subset, data_version=frame_version(subset), metadata=meta)
    problems = subset_problems(sel["row_id"].to_list(), pool_ids, n)
    yield dg.AssetCheckResult(
        check_name=SUBSET_CHECK,
        passed=not problems,
        metadata={"selected": sel.height, "target": n},
        description="; ".join(problems) or "ok",
    )
