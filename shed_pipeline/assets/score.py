"""proxy_shapley_scores: values of the cluster proxies under a utility and an estimator chosen by name
(core/utilities, core/estimators); the valuation itself is core/valuation.py."""

import time

import dagster as dg
import numpy as np
import polars as pl

from shed_pipeline.assets._common import CODE_VERSION, frame_version, gpu_step, input_runs, png_md, upstream_data_changed
from shed_pipeline.assets.embed import embeddings_of
from shed_pipeline.assets.strategy_config import choice_field, chosen
from shed_pipeline.core import plots
from shed_pipeline.core.estimators import ESTIMATORS
from shed_pipeline.core.pins import pinned_validation
from shed_pipeline.core.utilities import UTILITIES
from shed_pipeline.core.valuation import check_choice, validation_rows, value_proxies
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource

VALIDATION_PIN = "validation_snapshot.parquet"

_utility, _utility_field = choice_field(UTILITIES, "knn", f"U(S) of a coalition of proxies, measured on the validation rows: {', '.join(UTILITIES)} (settings nest under the name)")
_estimator, _estimator_field = choice_field(ESTIMATORS, "knn_exact", f"how the values are estimated from U: {', '.join(ESTIMATORS)} (settings nest under the name; knn_exact needs utility knn)")


class ProxyShapleyConfig(dg.Config):
    utility: _utility = _utility_field  # type: ignore[valid-type]
    estimator: _estimator = _estimator_field  # type: ignore[valid-type]
    seed: int = 0
    # Score against the validation rows as of the last cluster fit (changes wait for the next fit), so
    # that a refresh can reuse cached utility values; false re-scores against the current rows.
    freeze_validation: bool = True
    # TS-DShapley's removal-index rule (needed by curated_subset's auto_size): U after dropping the r
    # lowest-valued proxies, for r on a grid of this many points up to removal_max_fraction of K; the
    # best r is kept. 0 = off (each point is one utility evaluation: a fine-tune with the lm utility).
    removal_points: int = 0
    removal_max_fraction: float = 0.5


@dg.asset(group_name="valuation", code_version=CODE_VERSION, kinds={"python", "duckdb"}, **gpu_step(), automation_condition=upstream_data_changed(), ins={"raw_dataset": dg.AssetIn(metadata={"columns": ["row_id", "split", "instruction", "input", "output", "messages"]})})
def proxy_shapley_scores(context: dg.AssetExecutionContext, config: ProxyShapleyConfig, raw_dataset: pl.LazyFrame, embeddings: pl.LazyFrame, clusters: pl.DataFrame, compute: ComputeResource, paths: PathsResource, lineage: LineageResource) -> dg.Output[pl.DataFrame]:
    """One Shapley value per cluster proxy (players = proxies, utility measured on the validation
    split), with its rank (1 = most valuable) and, for sampling estimators, a standard error.
    Every utility evaluation is cached in DuckDB by (utility, validation data, coalition's proxy
    identities: row id and vector digest): a refresh evaluates only coalitions it has never seen, and
    permutations are drawn by cluster id so that unchanged coalitions recur."""
    t0 = time.perf_counter()
    (utility, u_settings), (estimator, e_settings) = chosen(UTILITIES, config.utility), chosen(ESTIMATORS, config.estimator)
    check_choice(utility.name, estimator.name)
    # Texts are read for the validation rows and the proxies only, not for a million pool rows.
    others = raw_dataset.filter(pl.col("split") != "validation").select("row_id").collect()["row_id"].to_list()
    texts = [c for c in ("instruction", "input", "output", "messages") if c in raw_dataset.collect_schema().names()]
    players_and_validation = raw_dataset.filter((pl.col("split") == "validation") | pl.col("row_id").is_in(clusters["proxy_row_id"].to_list())).select("row_id", "split", *texts).collect()
    vectors = embeddings_of(embeddings, players_and_validation["row_id"])  # the validation rows' and the proxies' only
    current_val = validation_rows(players_and_validation, vectors)
    fit_id = clusters["fit_id"][0] if clusters.height else ""
    pin = pinned_validation(paths.state(VALIDATION_PIN), fit_id, current_val, others, freeze=config.freeze_validation)
    store = lineage.store()
    valued = value_proxies(
        utility.name, u_settings, estimator.name, e_settings, clusters, players_and_validation, vectors, pin.rows, paths.utility_cache_db(),
        seed=config.seed, previous_proxies=store.previous_proxies(context.run.run_id), removal_points=config.removal_points, removal_max_fraction=config.removal_max_fraction,
        device=compute.torch_device(), cache_dir=paths.cache(), feature_cache=paths.embedding_cache_db(), log=context.log.info,
    )
    df, values, curve = valued.scores, valued.values, valued.curve
    meta: dict = {
        **valued.metadata(),
        "validation_rows_in_split": current_val.height,
        "validation_snapshot_renewed": pin.renewed,  # taken at this run, else kept from the last fit
        "validation_snapshot_reason": pin.reason,
        "validation_rows_waiting": pin.rows_waiting,  # joined the split since the fit: used from the next fit
        "validation_rows_gone": pin.rows_gone,  # left the split since the fit: still in the snapshot until then
    }
    store.write_table("scores", context.run.run_id, df)
    if curve is not None:
        store.write_table("removal_curve", context.run.run_id, valued.removal_frame())
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    store.record_asset(context.run.run_id, "proxy_shapley_scores", CODE_VERSION, config.model_dump(), meta, inputs=input_runs(context, ["raw_dataset", "embeddings", "clusters"]))
    top = df.sort("rank").head(10).join(clusters.select("cluster_id", "size"), on="cluster_id", maintain_order="left")
    meta["top_clusters"] = dg.MetadataValue.md("| rank | cluster | size | score | proxy |\n|---|---|---|---|---|\n" + "\n".join(f"| {r['rank']} | {r['cluster_id']} | {r['size']} | {r['score']:.6g} | {r['proxy_row_id'][:12]} |" for r in top.iter_rows(named=True)))
    if curve is not None:
        meta["removal_curve"] = png_md(plots.line(curve.removed, curve.utility, f"removal-index rule: best = drop {curve.best}", "lowest-valued proxies removed", "utility of the rest", mark=curve.best), "removal curve")
    meta["score_distribution"] = png_md(plots.histogram(np.asarray(values), f"{estimator.name} values of {len(values)} proxies", "Shapley value"), "scores")
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
