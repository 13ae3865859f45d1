"""proxy_shapley_scores: values of the cluster proxies under a utility and an estimator chosen by name
(core/utilities, core/estimators); the valuation itself is core/valuation/.

The asset is a graph of three ops, so that the utility evaluations of one estimation can fan out over
workers (Dagster dynamic outputs: under the multiprocess executor each share is a process, under the
k8s executor a pod of its own): `plan_valuation_shares` takes the validation snapshot and opens
`workers` shares when the estimator's coalitions do not depend on the values; each
`evaluate_share_of_coalitions` evaluates its share of the coalitions into the evaluation cache;
`value_cluster_proxies` runs the estimation, which finds every coalition in the cache, and records the
result. With one worker (the default) no share is opened and the last op evaluates as it goes.
"""

import dataclasses
import time

import dagster as dg
import numpy as np
import polars as pl

from shed_pipeline.assets.embed import embeddings_of
from shed_pipeline.assets.graph_steps import graph_ins, one_config, worker_part, worker_parts
from shed_pipeline.assets.outputs import png_md
from shed_pipeline.assets.recording import record_step
from shed_pipeline.assets.strategy_config import choice_field, chosen
from shed_pipeline.assets.versions import CODE_VERSION, frame_version, upstream_data_changed
from shed_pipeline.core import plots
from shed_pipeline.core.estimators import ESTIMATORS
from shed_pipeline.core.shards import MAX_SHARDS
from shed_pipeline.core.utilities import UTILITIES
from shed_pipeline.core.valuation import (
    DEFAULT_UTILITY,
    can_fan_out,
    check_choice,
    default_estimator,
    estimate,
    evaluate_share,
    pinned_validation,
    prepare_valuation,
    validation_rows,
)
from shed_pipeline.gpu_steps import gpu_op
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource
from shed_pipeline.summaries import ProxyShapleyScoresSummary

VALIDATION_PIN = "validation_snapshot.parquet"

_utility, _utility_field = choice_field(
    UTILITIES,
    DEFAULT_UTILITY,
    f"U(S) of a coalition of proxies, measured on the validation rows: {', '.join(UTILITIES)} (settings nest under "
    "the name)",
)
_estimator, _estimator_field = choice_field(
    ESTIMATORS,
    default_estimator(DEFAULT_UTILITY),
    f"how the values are estimated from U: {', '.join(ESTIMATORS)} (settings nest under the name; knn_exact needs "
    "utility knn)",
)


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
    # Workers that evaluate the utility side by side (each a step: a process, or a pod under the k8s
    # executor), meeting at the evaluation cache. Pays with a costly utility (lm, probe) and an
    # estimator whose coalitions do not depend on the values (banzhaf_msr, ts_chains, shed_grouped,
    # tmc without truncation); with any other, or 1, one step evaluates as it goes.
    workers: int = 1


READS = ["row_id", "split", "instruction", "input", "output", "messages"]


def _inputs(
    context,
    config: ProxyShapleyConfig,
    *,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    clusters: pl.DataFrame,
    paths: PathsResource,
):
    """The validation rows and the proxies with their vectors, and the validation snapshot (taken by
    the first step of a run that needs a new one; the later steps read it back)."""
    check_choice(chosen(UTILITIES, config.utility)[0].name, chosen(ESTIMATORS, config.estimator)[0].name)
    # Texts are read for the validation rows and the proxies only, not for a million pool rows.
    others = raw_dataset.filter(pl.col("split") != "validation").select("row_id").collect()["row_id"].to_list()
    texts = [c for c in ("instruction", "input", "output", "messages") if c in raw_dataset.collect_schema().names()]
    players_and_validation = (
        raw_dataset.filter(
            (pl.col("split") == "validation") | pl.col("row_id").is_in(clusters["proxy_row_id"].to_list())
        )
        .select("row_id", "split", *texts)
        .collect()
    )
    vectors = embeddings_of(embeddings, players_and_validation["row_id"])  # the validation rows' and the proxies' only
    current_val = validation_rows(players_and_validation, vectors)
    fit_id = clusters["fit_id"][0] if clusters.height else ""
    pin = pinned_validation(
        paths.state(VALIDATION_PIN),
        fit_id,
        current_val,
        other_split_ids=others,
        freeze=config.freeze_validation,
        run_id=context.run.run_id,
    )
    return players_and_validation, vectors, current_val, pin


def _prepare(
    context,
    config: ProxyShapleyConfig,
    *,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    clusters: pl.DataFrame,
    compute: ComputeResource,
    paths: PathsResource,
):
    """The valuation prepared for this step's estimation, the current validation rows and the
    snapshot (pin) it scores against: what the share steps and the value step both start from."""
    players_and_validation, vectors, current_val, pin = _inputs(
        context, config, raw_dataset=raw_dataset, embeddings=embeddings, clusters=clusters, paths=paths
    )
    (utility, u_settings), (estimator, e_settings) = (
        chosen(UTILITIES, config.utility),
        chosen(ESTIMATORS, config.estimator),
    )
    prepared = prepare_valuation(
        utility.name, u_settings, estimator.name, e_settings,
        clusters=clusters, raw_dataset=players_and_validation, embeddings=vectors, validation=pin.rows,
        seed=config.seed, device=compute.torch_device(), cache_dir=paths.cache(),
        feature_cache=paths.embedding_cache_db(), log=context.log.info, bigbench_archive=paths.archive(),
    )  # fmt: skip
    return prepared, current_val, pin


@dg.op(
    ins=graph_ins(READS), out={"shares": dg.DynamicOut(dg.Nothing, description="one per worker; none with one worker")}
)
def plan_valuation_shares(
    context: dg.OpExecutionContext,
    config: ProxyShapleyConfig,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    clusters: pl.LazyFrame,
    paths: PathsResource,
):
    """Open one share per worker when the estimation can be split (its coalitions do not depend on
    the values), after taking the validation snapshot that every share and the final pass score against."""
    if not 1 <= config.workers <= MAX_SHARDS:
        raise dg.Failure(
            f"proxy_shapley_scores.workers must be a whole number from 1 to {MAX_SHARDS}, got {config.workers}"
        )
    estimator, e_settings = chosen(ESTIMATORS, config.estimator)
    if config.workers == 1:
        return
    if not can_fan_out(estimator, e_settings):
        context.log.info(
            f"workers={config.workers}: estimator {estimator.name} with these settings chooses its coalitions from "
            "the values (or makes none), so one step values the proxies"
        )
        return
    _inputs(
        context,
        config,
        raw_dataset=raw_dataset,
        embeddings=embeddings,
        clusters=clusters.select("proxy_row_id", "fit_id").collect(),
        paths=paths,
    )  # read only when fanning out
    context.log.info(f"{estimator.name}: utility evaluations in {config.workers} shares, side by side")
    yield from worker_parts("share", config.workers, "shares")


@dg.op(ins=graph_ins(READS, "share"), **gpu_op())
def evaluate_share_of_coalitions(
    context: dg.OpExecutionContext,
    config: ProxyShapleyConfig,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    clusters: pl.DataFrame,
    compute: ComputeResource,
    paths: PathsResource,
) -> dg.Output[None]:
    """One worker's share of the estimation's utility evaluations, written to the evaluation cache."""
    t0 = time.perf_counter()
    share, shares = worker_part(context)
    prepared, _, pin = _prepare(
        context, config, raw_dataset=raw_dataset, embeddings=embeddings, clusters=clusters, compute=compute, paths=paths
    )
    counts = evaluate_share(prepared, paths.utility_cache_db(), share, shares, seed=config.seed, log=context.log.info)
    context.log.info(
        f"share {share + 1} of {shares}: {counts['utility_evaluations']} coalitions evaluated, "
        f"{counts['utility_cache_hits']} found in the cache, {counts['coalitions_of_other_shares']} left to the other "
        "shares"
    )
    return dg.Output(None, metadata={**counts, "seconds": round(time.perf_counter() - t0, 3)})


@dg.op(ins=graph_ins(READS, "shares_done"), **gpu_op())
def value_cluster_proxies(
    context: dg.OpExecutionContext,
    config: ProxyShapleyConfig,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    clusters: pl.DataFrame,
    compute: ComputeResource,
    paths: PathsResource,
    lineage: LineageResource,
) -> dg.Output[pl.DataFrame]:
    """One Shapley value per cluster proxy (players = proxies, utility measured on the validation
    split), with its rank (1 = most valuable) and, for sampling estimators, a standard error.
    Every utility evaluation is cached in DuckDB by (utility, validation data, coalition's proxy
    identities: row id and vector digest): a refresh evaluates only coalitions it has never seen, and
    permutations are drawn by cluster id so that unchanged coalitions recur."""
    t0 = time.perf_counter()
    run_id = context.run.run_id
    prepared, current_val, pin = _prepare(
        context, config, raw_dataset=raw_dataset, embeddings=embeddings, clusters=clusters, compute=compute, paths=paths
    )
    store = lineage.store()
    valued = estimate(
        prepared, clusters, paths.utility_cache_db(), seed=config.seed, previous_proxies=store.previous_proxies(run_id),
        removal_points=config.removal_points, removal_max_fraction=config.removal_max_fraction, log=context.log.info,
    )  # fmt: skip
    df, values, curve = valued.scores, valued.values, valued.curve
    # The estimation's own counts (each estimator's extras among them), then this step's.
    summary = ProxyShapleyScoresSummary.from_metadata(valued.metadata())
    summary = dataclasses.replace(
        summary,
        workers=config.workers if prepared.fans_out else 1,  # shares whose evaluations this pass found in the cache
        validation_rows_in_split=current_val.height,
        validation_snapshot_renewed=pin.taken_in(run_id),  # taken at this run, else kept from the last fit
        validation_snapshot_reason=pin.reason,
        validation_rows_waiting=pin.rows_waiting,
        validation_rows_gone=pin.rows_gone,
    )
    store.write_table("scores", run_id, df)
    if curve is not None:
        store.write_table("removal_curve", run_id, valued.removal_frame())
    meta = record_step(context, store, config, summary, started=t0)
    top = df.sort("rank").head(10).join(clusters.select("cluster_id", "size"), on="cluster_id", maintain_order="left")
    meta["top_clusters"] = dg.MetadataValue.md(
        "| rank | cluster | size | score | proxy |\n|---|---|---|---|---|\n"
        + "\n".join(
            f"| {r['rank']} | {r['cluster_id']} | {r['size']} | {r['score']:.6g} | {r['proxy_row_id'][:12]} |"
            for r in top.iter_rows(named=True)
        )
    )
    if curve is not None:
        meta["removal_curve"] = png_md(
            plots.line(
                curve.removed,
                curve.utility,
                f"removal-index rule: best = drop {curve.best}",
                xlabel="lowest-valued proxies removed",
                ylabel="utility of the rest",
                mark=curve.best,
            ),
            "removal curve",
        )
    meta["score_distribution"] = png_md(
        plots.histogram(
            np.asarray(values), f"{prepared.estimator.name} values of {len(values)} proxies", "Shapley value"
        ),
        "scores",
    )
    return dg.Output(df, data_version=frame_version(df), metadata=meta)


@dg.graph_asset(
    group_name="valuation",
    code_version=CODE_VERSION,
    kinds={"python", "duckdb"},
    tags={"shed/gpu": "true"},
    automation_condition=upstream_data_changed(),
    config=one_config(
        ProxyShapleyConfig, ["plan_valuation_shares", "evaluate_share_of_coalitions", "value_cluster_proxies"]
    ),
)
def proxy_shapley_scores(raw_dataset, embeddings, clusters):
    """One Shapley value per cluster proxy, with its rank and, for sampling estimators, a standard
    error; the utility evaluations fan out over `workers` steps when the estimator allows."""
    shares = plan_valuation_shares(raw_dataset=raw_dataset, embeddings=embeddings, clusters=clusters)
    done = shares.map(
        lambda share: evaluate_share_of_coalitions(
            share=share, raw_dataset=raw_dataset, embeddings=embeddings, clusters=clusters
        )
    )
    return value_cluster_proxies(
        shares_done=done.collect(), raw_dataset=raw_dataset, embeddings=embeddings, clusters=clusters
    )
