"""The Definitions the UI (`dagster dev`) and the CLI (`shed-pipeline run`) both load."""

import dagster as dg

from shed_pipeline.assets import assets_for
from shed_pipeline.executors import executor_for, project_locked
from shed_pipeline.jobs import curation_job
from shed_pipeline.loggers import concise_console_logger
from shed_pipeline.resources import resources_for
from shed_pipeline.schedules import daily_curation_schedule
from shed_pipeline.sensors import refresh_automation_sensor, source_change_sensor
from shed_pipeline.settings import Settings


def build_definitions(settings: Settings | None = None, *, concise_logs: bool = False) -> dg.Definitions:
    """Assets, job, schedule, sensors, resources and executor of one deployment's `settings` (default:
    `Settings.from_env()`; the CLI passes its own, `dagster dev` loads `defs` below). `concise_logs`
    swaps the console logger for one line per message, for the terminal. Runs on one project folder
    take turns: the executor holds the folder's lock for the whole run (`executors.project_locked`).
    `settings.embedding_shards` splits embeddings into that many shards."""
    settings = settings or Settings.from_env()
    return dg.Definitions(
        assets=assets_for(settings.embedding_shards),
        jobs=[curation_job(settings)],
        schedules=[daily_curation_schedule],
        sensors=[source_change_sensor, refresh_automation_sensor],
        resources=resources_for(settings),
        loggers={"console": concise_console_logger} if concise_logs else None,
        executor=project_locked(executor_for(settings), settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` / the code server load, from the environment's Settings. Built when Dagster
    loads it, not when this module is imported: the CLI imports `build_definitions` with its own
    Settings, and an environment its flags override must not fail the import."""
    return build_definitions()
