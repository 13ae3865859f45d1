"""Jobs: the whole curation graph (assets and their checks)."""

import dagster as dg

from shed_pipeline.core.project_lock import PROJECT_TAG, project_key
from shed_pipeline.resources import default_home

shed_curation_job = dg.define_asset_job(
    "shed_curation_job",
    selection=dg.AssetSelection.all(),
    description="raw_dataset -> embeddings -> clusters -> proxy_shapley_scores -> curated_subset -> evaluation_metrics",
    # With a run queue limit on this tag (the dagster.yaml `shed-pipeline run` writes has one), a
    # second run of the project waits in the queue instead of holding a run worker on the lock.
    tags={PROJECT_TAG: project_key(default_home())},
)
