"""clusters: seeded k-means on the pool's embeddings, and one proxy row per cluster."""

import time

import dagster as dg
import numpy as np
import polars as pl

from shed_pipeline.assets._common import CODE_VERSION, frame_version, input_runs, png_md
from shed_pipeline.core import plots
from shed_pipeline.core.clustering import cluster_rows, default_n_clusters, normalized_mutual_info
from shed_pipeline.resources import ComputeResource, LineageResource


class ClustersConfig(dg.Config):
    n_clusters: int | None = None  # default: about 20 pool rows a cluster (SHED's ratio)
    seed: int = 0
    max_iter: int = 100
    tol: float = 1e-4


def pool_vectors(raw_dataset: pl.DataFrame, embeddings: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """Pool rows (source order) with their embedding matrix."""
    pool = raw_dataset.filter(pl.col("split") == "pool").join(embeddings, on="row_id", how="left", maintain_order="left")
    if pool["embedding"].null_count():
        raise ValueError(f"{pool['embedding'].null_count()} pool rows have no embedding; re-materialize embeddings")
    return pool.drop("embedding"), pool["embedding"].to_numpy()


@dg.asset(group_name="representation", code_version=CODE_VERSION, kinds={"pytorch"}, pool="duckdb")
def clusters(context: dg.AssetExecutionContext, config: ClustersConfig, raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, compute: ComputeResource, lineage: LineageResource) -> dg.Output[pl.DataFrame]:
    """K-means (k-means++ init, seeded) over pool rows. One row per cluster: stable id, size, the proxy
    (member nearest the centroid), the centroid and the members in source order."""
    t0 = time.perf_counter()
    pool, x = pool_vectors(raw_dataset, embeddings)
    k = config.n_clusters or default_n_clusters(pool.height)
    if k > pool.height:
        raise ValueError(f"n_clusters={k} exceeds the {pool.height} pool rows")
    device = compute.torch_device()
    result = cluster_rows(pool["row_id"].to_list(), x, k, seed=config.seed, device=device, max_iter=config.max_iter, tol=config.tol)
    sizes = result.sizes
    df = pl.DataFrame(
        {
            "cluster_id": result.cluster_ids,
            "size": sizes,
            "proxy_row_id": result.proxy_row_ids,
            "inertia": [float(np.sum(d)) for d in result.member_sq_dist],
            "centroid": result.centroids,
            "members": result.member_row_ids,
            "member_sq_dist": result.member_sq_dist,
        },
        schema={"cluster_id": pl.Int64, "size": pl.Int64, "proxy_row_id": pl.Utf8, "inertia": pl.Float64, "centroid": pl.Array(pl.Float32, x.shape[1]), "members": pl.List(pl.Utf8), "member_sq_dist": pl.List(pl.Float64)},
    )
    meta: dict = {
        "n_clusters": k,
        "pool_rows": pool.height,
        "inertia": result.inertia,
        "iterations": result.n_iter,
        "converged": result.converged,
        "device": device,
        "size_min": int(sizes.min()),
        "size_median": float(np.median(sizes)),
        "size_max": int(sizes.max()),
    }
    tasks = pool["task"]
    if tasks.null_count() < pool.height:
        meta["nmi_vs_task"] = normalized_mutual_info(tasks.fill_null("").to_list(), result.labels)
    store = lineage.store()
    store.write_table("clusters", context.run.run_id, df.select("cluster_id", "size", "proxy_row_id", "inertia"))
    store.write_table("memberships", context.run.run_id, df.select("cluster_id", pl.col("members").alias("row_id"), pl.col("member_sq_dist").alias("sq_distance")).explode("row_id", "sq_distance"))
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    store.record_asset(context.run.run_id, "clusters", CODE_VERSION, config.model_dump(), meta, inputs=input_runs(context, ["raw_dataset", "embeddings"]))
    meta["cluster_sizes"] = png_md(plots.histogram(sizes, f"{k} clusters", "rows per cluster"), "cluster sizes")
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
