"""curated_subset: rows chosen from scored clusters (QOCS, QWCS or random), written for SFT trainers."""

import json
import time
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline.assets._common import CODE_VERSION, frame_version, input_runs, png_md, publish_outputs, upstream_data_changed
from shed_pipeline.core import plots
from shed_pipeline.core.files import atomic_path, write_manifest
from shed_pipeline.core.sampling import auto_temperature, select, target_size
from shed_pipeline.resources import LineageResource, PathsResource

SUBSET_CHECK = "subset_is_valid"


class CuratedSubsetConfig(dg.Config):
    method: str = "qocs"  # qocs | qwcs | random
    fraction: float = 0.1  # of the pool, unless size is given
    size: int | None = None
    # TS-DShapley's removal-index rule: keep every row of the clusters that proxy_shapley_scores'
    # rule keeps (drop the lowest-valued ones); fraction and size are then ignored.
    auto_size: bool = False
    temperature: float | None = None  # qwcs softmax temperature (1/beta); default: std of the scores
    seed: int = 0
    # Also write each row's id (what `shed-pipeline lineage why` takes) into the curated records under
    # this field; None keeps the input's own schema. The ids are in curated.manifest.json either way.
    row_id_field: str | None = None


def with_row_ids(records: list[dict], row_ids: list[str], field: str | None) -> list[dict]:
    """The records, each with its row id under `field` (unchanged when `field` is None)."""
    if not field:
        return records
    clash = next((i for i, rec in enumerate(records) if field in rec), None)
    if clash is not None:
        raise ValueError(f"row_id_field {field!r}: the curated records already have a field of that name (row {row_ids[clash]}); pick another name")
    return [{**rec, field: rid} for rec, rid in zip(records, row_ids, strict=True)]


def write_outputs(records: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """curated.jsonl and curated.parquet, in the input's own schema, written atomically."""
    jsonl, parquet = out_dir / "curated.jsonl", out_dir / "curated.parquet"
    with atomic_path(jsonl) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with atomic_path(parquet) as tmp:
        pl.DataFrame(records, infer_schema_length=None).write_parquet(tmp)
    return jsonl, parquet


@dg.asset(
    group_name="selection",
    code_version=CODE_VERSION,
    kinds={"python", "parquet"},
    pool="duckdb",
    automation_condition=upstream_data_changed(),
    check_specs=[dg.AssetCheckSpec(SUBSET_CHECK, asset="curated_subset", blocking=True, description="Selected rows are distinct pool rows and their number is the target")],
)
def curated_subset(context: dg.AssetExecutionContext, config: CuratedSubsetConfig, raw_dataset: pl.DataFrame, clusters: pl.DataFrame, proxy_shapley_scores: pl.DataFrame, paths: PathsResource, lineage: LineageResource, s3: S3Resource):
    """The selected rows in draw order, each with its cluster, the cluster's proxy score and the rule
    that chose it. Also written as curated.jsonl and curated.parquet in the output folder."""
    t0 = time.perf_counter()
    scored = clusters.join(proxy_shapley_scores.select("cluster_id", "score"), on="cluster_id", how="left", maintain_order="left")
    if scored["score"].null_count():
        raise ValueError("some clusters have no score: re-materialize proxy_shapley_scores")
    pool_size = int(scored["size"].sum())
    prefix = ""
    if config.auto_size:
        if "dropped_by_removal_rule" not in proxy_shapley_scores.columns or proxy_shapley_scores["dropped_by_removal_rule"].null_count():
            raise ValueError("auto_size needs the removal-index rule's result: re-materialize proxy_shapley_scores with removal_points > 0")
        dropped = proxy_shapley_scores.filter(pl.col("dropped_by_removal_rule"))["cluster_id"]
        scored = scored.filter(~pl.col("cluster_id").is_in(dropped.implode()))
        prefix = f"auto size: the removal-index rule dropped the {dropped.len()} lowest-valued of {dropped.len() + scored.height} clusters; "
        n = int(scored["size"].sum())
    else:
        n = target_size(pool_size, config.fraction, config.size)
    scores = scored["score"].to_list()
    temperature = config.temperature if config.temperature is not None else (auto_temperature(scores) if config.method == "qwcs" else None)
    chosen = select(config.method, scored["cluster_id"].to_list(), scores, scored["members"].to_list(), n, config.seed, temperature)
    score_of = dict(zip(scored["cluster_id"].to_list(), scores, strict=False))
    sel = pl.DataFrame(
        {
            "row_id": [s.row_id for s in chosen],
            "cluster_id": [s.cluster_id for s in chosen],
            "draw_order": [s.draw_order for s in chosen],
            "score": [score_of.get(s.cluster_id) for s in chosen],
            "reason": [prefix + s.reason for s in chosen],
        },
        schema={"row_id": pl.Utf8, "cluster_id": pl.Int64, "draw_order": pl.Int64, "score": pl.Float64, "reason": pl.Utf8},
    ).with_columns(pl.lit(config.method).alias("method"))
    subset = sel.join(raw_dataset.select("row_id", "split", "task", "record"), on="row_id", how="left", maintain_order="left")
    row_ids = subset["row_id"].to_list()
    jsonl, parquet = write_outputs(with_row_ids([json.loads(r) for r in subset["record"].to_list()], row_ids, config.row_id_field), paths.out())
    # The ids in the files' order: line i of curated.jsonl is row_ids[i] (`shed-pipeline lineage why ID`).
    manifest = write_manifest(paths.out() / "curated.manifest.json", [jsonl, parquet], run_id=context.run.run_id, rows=subset.height, row_id_field=config.row_id_field, row_ids=row_ids)
    links = publish_outputs(paths, s3, [jsonl, parquet, manifest], context.log.warning)  # the manifest last
    store = lineage.store()
    store.write_table("selections", context.run.run_id, sel.select("row_id", "cluster_id", "method", "draw_order", "score", "reason"))
    per_cluster = sel.group_by("cluster_id").len().sort("len", descending=True)
    meta = {
        "method": config.method,
        "target_size": n,
        "auto_size": config.auto_size,
        "selected": sel.height,
        "pool_rows": pool_size,
        "clusters_used": per_cluster.height,
        "temperature": temperature,
        "curated_jsonl": links[jsonl.name],
        "curated_parquet": links[parquet.name],
        "curated_manifest": links[manifest.name],
        "seconds": round(time.perf_counter() - t0, 3),
    }
    store.record_asset(context.run.run_id, "curated_subset", CODE_VERSION, config.model_dump(), {k: v for k, v in meta.items() if not isinstance(v, dg.MetadataValue)}, inputs=input_runs(context, ["raw_dataset", "clusters", "proxy_shapley_scores"]))
    meta["selections_per_cluster"] = png_md(plots.bars([str(c) for c in per_cluster["cluster_id"].head(30)], per_cluster["len"].head(30).to_list(), "selected rows per cluster (top 30)", "rows"), "selections per cluster")
    yield dg.Output(subset, data_version=frame_version(subset), metadata=meta)
    pool_ids = set(raw_dataset.filter(pl.col("split") == "pool")["row_id"].to_list())
    ids = sel["row_id"].to_list()
    problems = []
    if len(set(ids)) != len(ids):
        problems.append("duplicate rows")
    if not set(ids) <= pool_ids:
        problems.append(f"{len(set(ids) - pool_ids)} rows not in the pool")
    if len(ids) != n:
        problems.append(f"{len(ids)} rows selected, target {n}")
    yield dg.AssetCheckResult(check_name=SUBSET_CHECK, passed=not problems, metadata={"selected": len(ids), "target": n}, description="; ".join(problems) or "ok")

