"""Jobs: the whole curation graph (assets and their checks)."""

import dagster as dg

shed_curation_job = dg.define_asset_job(
    "shed_curation_job",
    selection=dg.AssetSelection.all(),
    description="raw_dataset -> embeddings -> clusters -> proxy_shapley_scores -> curated_subset -> evaluation_metrics",
)
