"""proxy_shapley_scores: Shapley values of the cluster proxies under a pluggable utility and estimator."""

import time

import dagster as dg
import numpy as np
import polars as pl

from shed_pipeline.assets._common import CODE_VERSION, frame_version, input_runs, png_md
from shed_pipeline.core import plots
from shed_pipeline.core.estimators import ESTIMATORS, estimate
from shed_pipeline.core.utilities import UTILITIES, CountingUtility, KNNUtility
from shed_pipeline.resources import LineageResource


class ProxyShapleyConfig(dg.Config):
    estimator: str = "knn_exact"  # knn_exact | shed_grouped | tmc | exact (K <= 16)
    utility: str = "knn"
    k: int = 5  # neighbours of the knn utility
    permutations: int = 20  # shed_grouped / tmc (SHED's run.sh uses 20)
    group_size: int | None = None  # shed_grouped; default ceil(K / 50) (SHED: 60 for K = 3000)
    truncation_tolerance: float = 0.0  # tmc; 0 = never truncate
    seed: int = 0


def build_utility(config: ProxyShapleyConfig, raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, proxy_ids: list[str]):
    if config.utility not in UTILITIES:
        raise ValueError(f"unknown utility {config.utility!r}; choose one of {', '.join(UTILITIES)}")
    rows = raw_dataset.join(embeddings, on="row_id", how="inner")
    proxies = pl.DataFrame({"row_id": proxy_ids}).join(rows, on="row_id", how="left", maintain_order="left")
    val = rows.filter(pl.col("split") == "validation").sort("source_order")
    if val.height == 0:
        raise ValueError("the validation split is empty: raise validation_fraction or add rows")
    return KNNUtility(proxies["embedding"].to_numpy(), proxies["output"].to_list(), val["embedding"].to_numpy(), val["output"].to_list(), k=config.k)


@dg.asset(group_name="valuation", code_version=CODE_VERSION, kinds={"python"}, pool="duckdb")
def proxy_shapley_scores(context: dg.AssetExecutionContext, config: ProxyShapleyConfig, raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, clusters: pl.DataFrame, lineage: LineageResource) -> dg.Output[pl.DataFrame]:
    """One Shapley value per cluster proxy (players = proxies, utility measured on the validation
    split), with its rank (1 = most valuable) and, for sampling estimators, a standard error."""
    if config.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {config.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    t0 = time.perf_counter()
    proxy_ids = clusters["proxy_row_id"].to_list()
    utility = CountingUtility(build_utility(config, raw_dataset, embeddings, proxy_ids))
    res = estimate(config.estimator, utility if config.estimator != "knn_exact" else utility.inner, permutations=config.permutations, group_size=config.group_size, truncation_tolerance=config.truncation_tolerance, seed=config.seed)
    values = np.asarray(res.values, dtype=np.float64)
    order = sorted(range(len(values)), key=lambda i: (-values[i], int(clusters["cluster_id"][i])))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(1, len(values) + 1)
    df = pl.DataFrame(
        {
            "cluster_id": clusters["cluster_id"],
            "proxy_row_id": proxy_ids,
            "score": values,
            "stderr": res.stderr if res.stderr is not None else [None] * len(values),
            "rank": rank,
            "estimator": [config.estimator] * len(values),
            "utility": [config.utility] * len(values),
        },
        schema={"cluster_id": pl.Int64, "proxy_row_id": pl.Utf8, "score": pl.Float64, "stderr": pl.Float64, "rank": pl.Int64, "estimator": pl.Utf8, "utility": pl.Utf8},
    )
    full = utility.inner.value(np.ones(len(values), dtype=bool))
    meta: dict = {
        "estimator": config.estimator,
        "utility": config.utility,
        "players": len(values),
        "utility_evaluations": utility.evaluations,
        "utility_cache_hits": utility.cache_hits,
        "utility_all_proxies": full,
        "sum_of_values": float(values.sum()),
        "score_min": float(values.min()),
        "score_max": float(values.max()),
        **{f"estimator_{k}": v for k, v in res.info.items()},
    }
    store = lineage.store()
    store.write_table("scores", context.run.run_id, df)
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    store.record_asset(context.run.run_id, "proxy_shapley_scores", CODE_VERSION, config.model_dump(), meta, inputs=input_runs(context, ["raw_dataset", "embeddings", "clusters"]))
    top = df.sort("rank").head(10).join(clusters.select("cluster_id", "size"), on="cluster_id", maintain_order="left")
    meta["top_clusters"] = dg.MetadataValue.md("| rank | cluster | size | score | proxy |\n|---|---|---|---|---|\n" + "\n".join(f"| {r['rank']} | {r['cluster_id']} | {r['size']} | {r['score']:.6g} | {r['proxy_row_id'][:12]} |" for r in top.iter_rows(named=True)))
    meta["score_distribution"] = png_md(plots.histogram(values, f"{config.estimator} values of {len(values)} proxies", "Shapley value"), "scores")
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
