"""The seven assets, one module per stage."""

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.assets.cluster import clusters
from shed_pipeline.assets.curate import curated_subset
from shed_pipeline.assets.embed import embeddings, embeddings_asset
from shed_pipeline.assets.evaluate import evaluation_metrics
from shed_pipeline.assets.ingest import raw_dataset
from shed_pipeline.assets.row_values import row_values
from shed_pipeline.assets.score import proxy_shapley_scores

_BY_NAME = {
    a.key.to_user_string(): a
    for a in (raw_dataset, embeddings, clusters, row_values, proxy_shapley_scores, curated_subset, evaluation_metrics)
}
ALL_ASSETS = [_BY_NAME[name] for name in ASSET_NAMES]  # a name without its asset fails here, at import
if len(_BY_NAME) != len(ASSET_NAMES):
    raise RuntimeError(f"assets not in ASSET_NAMES: {sorted(set(_BY_NAME) - set(ASSET_NAMES))}")


def assets_for(embedding_shards: int = 1) -> list:
    """The seven assets with embeddings split into `embedding_shards` row-id hash shards (1: as ALL_ASSETS)."""
    if embedding_shards == 1:
        return list(ALL_ASSETS)
    return [embeddings_asset(embedding_shards) if a is embeddings else a for a in ALL_ASSETS]


__all__ = [
    "ALL_ASSETS",
    "ASSET_NAMES",
    "assets_for",
    "clusters",
    "curated_subset",
    "embeddings",
    "evaluation_metrics",
    "proxy_shapley_scores",
    "raw_dataset",
    "row_values",
]
