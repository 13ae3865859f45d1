"""The Definitions the UI (`dagster dev`) and the CLI (`shed-pipeline run`) both load."""

import os

import dagster as dg

from shed_pipeline.assets import assets_for
from shed_pipeline.core.shards import parse_shard_count
from shed_pipeline.executors import executor_for_env, project_locked
from shed_pipeline.jobs import curation_job
from shed_pipeline.loggers import concise_console_logger
from shed_pipeline.resources import default_home, resources_for_env
from shed_pipeline.schedules import daily_curation_schedule
from shed_pipeline.sensors import refresh_automation_sensor, source_change_sensor


def embedding_shards_from_env() -> int:
    """SHED_EMBEDDING_SHARDS: how many row-id hash shards (Dagster partitions) embeddings is split
    into; 1 (the default) keeps it one unpartitioned value."""
    return parse_shard_count(os.environ.get("SHED_EMBEDDING_SHARDS"))


def build_definitions(concise_logs: bool = False) -> dg.Definitions:
    """Assets, job, schedule, sensors, and resources picked from the environment at call time (the CLI sets
    the environment, then calls this; `dagster dev` loads `defs` below). `concise_logs` swaps the
    console logger for one line per message, for the terminal. Runs on one project folder take
    turns: the executor holds the folder's lock for the whole run (`executors.project_locked`).
    SHED_EMBEDDING_SHARDS splits embeddings into that many shards (`embedding_shards_from_env`)."""
    shards = embedding_shards_from_env()
    return dg.Definitions(
        assets=assets_for(shards),
        jobs=[curation_job(shards)],
        schedules=[daily_curation_schedule],
        sensors=[source_change_sensor, refresh_automation_sensor],
        resources=resources_for_env(),
        loggers={"console": concise_console_logger} if concise_logs else None,
        executor=project_locked(executor_for_env(), default_home()),
    )


defs = build_definitions()
