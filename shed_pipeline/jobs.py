"""Jobs: the whole curation graph (assets and their checks)."""

import dagster as dg

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.core.project_lock import PROJECT_TAG, project_key
from shed_pipeline.core.shards import shard_keys
from shed_pipeline.settings import Settings

JOB_NAME = "shed_curation_job"

# The tags that make a run cover a range of partitions (Dagster's own names).
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def all_shards_tags(embedding_shards: int) -> dict[str, str]:
    """Run tags that make a run compute every embedding shard ({} when embeddings is not sharded)."""
    if embedding_shards == 1:
        return {}
    keys = shard_keys(embedding_shards)
    return {RANGE_START: keys[0], RANGE_END: keys[-1]}


def curation_job(settings: Settings):
    """The whole graph in one run, tagged with the project (`settings.home`). With sharded
    embeddings every run of it (the UI's launchpad, the schedule, the sensors, the CLI) computes all
    shards in one step; running shards as separate runs (in parallel, one GPU pod each) is a
    backfill of the embeddings asset."""
    project = {PROJECT_TAG: project_key(settings.home)}
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.all(),
        description="The curation pipeline, every asset: " + ", ".join(ASSET_NAMES),
        # With a run queue limit on this tag (the dagster.yaml `shed-pipeline run` writes has one), a
        # second run of the project waits in the queue instead of holding a run worker on the lock.
        tags=project,
        run_tags={**project, **all_shards_tags(settings.embedding_shards)},  # run_tags replace tags on runs: both here
    )
