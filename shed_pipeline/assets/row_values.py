"""row_values: per-row values of every pool row (knn_shapley, ifd, ...), which selection methods
order or weight a cluster's members by.

A graph of three ops, so that a kind that values rows apart (ifd: the target LM over every pool row)
can run on several workers (Dagster dynamic outputs: processes under the multiprocess executor, pods
under the k8s executor): `plan_row_shards` opens `workers` row-id hash shards, each `score_row_shard`
computes its rows into the feature cache, and `value_rows` assembles every kind's values, finding the
sharded kinds' rows cached. With one worker (the default) no shard is opened.
"""

import time

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field, create_model

from shed_pipeline.assets.embed import with_embeddings
from shed_pipeline.assets.graph_steps import graph_ins, one_config, worker_part, worker_parts
from shed_pipeline.assets.outputs import png_md
from shed_pipeline.assets.recording import record_step
from shed_pipeline.assets.strategy_config import config_class
from shed_pipeline.assets.versions import CODE_VERSION, frame_version, upstream_data_changed
from shed_pipeline.core import plots
from shed_pipeline.core.row_values import (
    ROW_VALUES,
    RowValueInputs,
    compute_row_values,
    compute_shard,
    kinds_apart,
    text_columns,
)
from shed_pipeline.core.shards import MAX_SHARDS, in_shard
from shed_pipeline.gpu_steps import gpu_op
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource
from shed_pipeline.summaries import RowValuesSummary

# knn_shapley is on by default: exact and cheap (about 1 s for 10,000 rows on a 2-core CPU). ifd
# runs the target LM twice over every pool row: asked for by name.
DEFAULT_KINDS = ["knn_shapley"]


def _settings_field(name: str):
    cls = config_class(ROW_VALUES, ROW_VALUES[name], discriminated=False)
    return (cls, Field(default_factory=cls, description=f"settings of {name}: {ROW_VALUES[name].summary}"))


# One nested settings block per registered kind (its fields, types, defaults and help come from
# the kind's settings dataclass): {"kinds": ["knn_shapley", "ifd"], "ifd": {"max_tokens": 128}}.
RowValuesConfig = create_model(
    "RowValuesConfig",
    __base__=dg.Config,
    __doc__="Which per-row values to compute, and each kind's settings.",
    kinds=(
        list[str],
        Field(
            default_factory=lambda: list(DEFAULT_KINDS),
            description=f"kinds to compute, among {', '.join(ROW_VALUES.names)}; [] = none",
        ),
    ),
    workers=(
        int,
        Field(
            default=1,
            description=(
                "row-id shards computed side by side (each a step: a process, or a pod under the k8s executor) for "
                f"the kinds that value rows apart ({', '.join(n for n, s in ROW_VALUES.items() if s.rows_apart)}); 1 "
                "= one step"
            ),
        ),
    ),
    **{name: _settings_field(name) for name in ROW_VALUES.names},
)


def kind_settings(config) -> dict:
    """Each kind's settings object from the nested config blocks."""
    out = {}
    for name in ROW_VALUES.names:
        values = getattr(config, name).model_dump()
        out[name] = ROW_VALUES.configure(name, values)[1]
    return out


def split_rows(raw_dataset: pl.DataFrame, embeddings: pl.LazyFrame | pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(pool rows, validation rows) with their vectors, in row order."""
    # Each split read on its own: the test rows' vectors are never read.
    pool, validation = (
        with_embeddings(raw_dataset.filter(pl.col("split") == split), embeddings, how="inner")
        for split in ("pool", "validation")
    )
    return pool, validation


READS = [
    "row_id",
    "split",
    "instruction",
    "input",
    "output",
    "messages",
]  # at most these columns (never the original records)


def _texts(raw_dataset: pl.LazyFrame, kinds: list[str]) -> list[str]:
    """The columns to read: ids, splits, and only the texts the kinds read (a million prompts are
    gigabytes; unknown kinds fail in compute_row_values, naming the kinds)."""
    wanted = ["row_id", "split", *text_columns([k for k in kinds if k in ROW_VALUES])]
    return [c for c in raw_dataset.collect_schema().names() if c in wanted]


@dg.op(out={"shards": dg.DynamicOut(dg.Nothing, description="one per worker; none with one worker")})
def plan_row_shards(context: dg.OpExecutionContext, config: RowValuesConfig):  # type: ignore[valid-type]
    """One row-id shard per worker, when a kind asked for values rows apart."""
    if not 1 <= config.workers <= MAX_SHARDS:
        raise dg.Failure(f"row_values.workers must be a whole number from 1 to {MAX_SHARDS}, got {config.workers}")
    if config.workers == 1:
        return
    apart = kinds_apart(list(config.kinds))
    if not apart:
        context.log.info(
            f"workers={config.workers}: no kind among {', '.join(config.kinds) or '(none)'} values rows apart, so one "
            "step computes them"
        )
        return
    context.log.info(f"{', '.join(apart)}: pool rows in {config.workers} row-id shards, side by side")
    yield from worker_parts("shard", config.workers, "shards")


@dg.op(ins=graph_ins(READS, "shard"), **gpu_op())
def score_row_shard(
    context: dg.OpExecutionContext,
    config: RowValuesConfig,
    raw_dataset: pl.LazyFrame,
    compute: ComputeResource,
    paths: PathsResource,
) -> dg.Output[None]:  # type: ignore[valid-type]
    """One shard's pool rows under the kinds that value rows apart, written to the feature cache."""
    t0 = time.perf_counter()
    shard, shards = worker_part(context)
    apart = kinds_apart(list(config.kinds))
    # Only this shard's pool rows, and only the texts these kinds read.
    pool = (
        raw_dataset.filter((pl.col("split") == "pool") & in_shard(shard, shards))
        .select(_texts(raw_dataset, apart))
        .collect()
    )
    inputs = RowValueInputs(
        pool,
        pool.clear(),
        device=compute.torch_device(),
        cache_dir=paths.cache(),
        feature_cache=paths.embedding_cache_db(),
        log=context.log.info,
    )
    counts = compute_shard(apart, kind_settings(config), inputs, shard, shards)
    context.log.info(f"shard {shard + 1} of {shards}: {counts['rows']} pool rows under {', '.join(apart)}")
    return dg.Output(
        None, metadata={**counts, "kinds": ", ".join(apart), "seconds": round(time.perf_counter() - t0, 3)}
    )


@dg.op(ins=graph_ins(READS, "shards_done"), **gpu_op())
def value_rows(
    context: dg.OpExecutionContext,
    config: RowValuesConfig,
    raw_dataset: pl.LazyFrame,
    embeddings: pl.LazyFrame,
    compute: ComputeResource,
    paths: PathsResource,
    lineage: LineageResource,
) -> dg.Output[pl.DataFrame]:  # type: ignore[valid-type]
    """One value per pool row and kind (long frame: row_id, kind, value). Valued against the current
    validation split (not the snapshot pinned at the last cluster fit: knn_shapley is exact and
    needs no cache kept stable, and the values then depend on this asset's inputs only). IFD is
    cached per row and model in the embedding cache: a refresh scores new rows only."""
    t0 = time.perf_counter()
    rows = raw_dataset.select(_texts(raw_dataset, list(config.kinds))).collect()
    pool, validation = split_rows(rows, embeddings)
    del rows
    inputs = RowValueInputs(
        pool,
        validation,
        device=compute.torch_device(),
        cache_dir=paths.cache(),
        feature_cache=paths.embedding_cache_db(),
        log=context.log.info,
    )
    df, stats = compute_row_values(list(config.kinds), kind_settings(config), inputs)
    sharded = config.workers > 1 and bool(kinds_apart(list(config.kinds)))
    summary = RowValuesSummary(
        kinds=", ".join(config.kinds) or "none",
        pool_rows=pool.height,
        validation_rows_in_split=validation.height,
        workers=config.workers if sharded else 1,
        extra={f"{kind}_{k}": v for kind, s in stats.items() for k, v in s.items()},  # each kind's own counts
    )
    store = lineage.store()
    store.write_table("row_values", context.run.run_id, df)
    meta = record_step(context, store, config, summary, started=t0)
    for kind in config.kinds:
        values = df.filter(pl.col("kind") == kind)["value"].to_numpy()
        meta[f"{kind}_distribution"] = png_md(
            plots.histogram(values[np.isfinite(values)], f"{kind} of {len(values)} pool rows", kind), kind
        )
    return dg.Output(df, data_version=frame_version(df), metadata=meta)


@dg.graph_asset(
    group_name="valuation",
    code_version=CODE_VERSION,
    kinds={"python", "duckdb"},
    tags={"shed/gpu": "true"},
    automation_condition=upstream_data_changed(),
    config=one_config(RowValuesConfig, ["plan_row_shards", "score_row_shard", "value_rows"]),
)
def row_values(raw_dataset, embeddings):
    """One value per pool row and kind; kinds that value rows apart (ifd) run in `workers` row-id
    shards side by side."""
    done = plan_row_shards().map(lambda shard: score_row_shard(shard=shard, raw_dataset=raw_dataset))
    return value_rows(shards_done=done.collect(), raw_dataset=raw_dataset, embeddings=embeddings)
