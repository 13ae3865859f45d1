"""row_values: per-row values of every pool row (knn_shapley, ifd, ...), which selection methods
order or weight a cluster's members by."""

import time

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field, create_model

from shed_pipeline.assets._common import CODE_VERSION, frame_version, gpu_step, input_runs, png_md, upstream_data_changed
from shed_pipeline.assets.embed import with_embeddings
from shed_pipeline.assets.strategy_config import config_class
from shed_pipeline.core import plots
from shed_pipeline.core.row_values import ROW_VALUES, RowValueInputs, compute_row_values, text_columns
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource

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
    kinds=(list[str], Field(default_factory=lambda: list(DEFAULT_KINDS), description=f"kinds to compute, among {', '.join(ROW_VALUES.names)}; [] = none")),
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
    pool, validation = (with_embeddings(raw_dataset.filter(pl.col("split") == split), embeddings, how="inner") for split in ("pool", "validation"))
    return pool, validation


@dg.asset(
    group_name="valuation",
    code_version=CODE_VERSION,
    kinds={"python", "duckdb"},
    **gpu_step(),
    automation_condition=upstream_data_changed(),
    # At most these columns (never the original records); the asset reads only its kinds' texts of them.
    ins={"raw_dataset": dg.AssetIn(metadata={"columns": ["row_id", "split", "instruction", "input", "output", "messages"]})},
)
def row_values(context: dg.AssetExecutionContext, config: RowValuesConfig, raw_dataset: pl.LazyFrame, embeddings: pl.LazyFrame, compute: ComputeResource, paths: PathsResource, lineage: LineageResource) -> dg.Output[pl.DataFrame]:  # type: ignore[valid-type]
    """One value per pool row and kind (long frame: row_id, kind, value). Valued against the current
    validation split (not the snapshot pinned at the last cluster fit: knn_shapley is exact and
    needs no cache kept stable, and the values then depend on this asset's inputs only). IFD is
    cached per row and model in the embedding cache: a refresh scores new rows only."""
    t0 = time.perf_counter()
    unknown = [k for k in config.kinds if k not in ROW_VALUES]
    wanted = ["row_id", "split", *text_columns([k for k in config.kinds if k not in unknown])]
    # Only the texts the kinds read are read at all (a million prompts are gigabytes; unknown kinds
    # fail in compute_row_values, naming the kinds).
    rows = raw_dataset.select([c for c in raw_dataset.collect_schema().names() if c in wanted]).collect()
    pool, validation = split_rows(rows, embeddings)
    del rows
    inputs = RowValueInputs(pool, validation, compute.torch_device(), paths.cache(), paths.embedding_cache_db(), context.log.info)
    df, stats = compute_row_values(list(config.kinds), kind_settings(config), inputs)
    meta: dict = {"kinds": ", ".join(config.kinds) or "none", "pool_rows": pool.height, "validation_rows_in_split": validation.height}
    for kind, s in stats.items():
        meta.update({f"{kind}_{k}": v for k, v in s.items()})
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    store = lineage.store()
    store.write_table("row_values", context.run.run_id, df)
    store.record_asset(context.run.run_id, "row_values", CODE_VERSION, config.model_dump(), meta, inputs=input_runs(context, ["raw_dataset", "embeddings"]))
    for kind in config.kinds:
        values = df.filter(pl.col("kind") == kind)["value"].to_numpy()
        meta[f"{kind}_distribution"] = png_md(plots.histogram(values[np.isfinite(values)], f"{kind} of {len(values)} pool rows", kind), kind)
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
