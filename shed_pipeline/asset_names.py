"""The pipeline's assets by name, in the order a run computes and reports them: the one list of
them. `shed_pipeline.assets.ALL_ASSETS` is built in this order; this module imports nothing, so the
CLI can check `--set ASSET.KEY=VALUE` without loading Dagster."""

ASSET_NAMES: tuple[str, ...] = (
    "raw_dataset",
    "embeddings",
    "clusters",
    "row_values",
    "proxy_shapley_scores",
    "curated_subset",
    "evaluation_metrics",
)
