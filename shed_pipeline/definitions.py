"""The Definitions the UI (`dagster dev`) and the CLI (`shed-pipeline run`) both load."""

import dagster as dg

from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.executors import executor_for_env, project_locked
from shed_pipeline.jobs import shed_curation_job
from shed_pipeline.loggers import concise_console_logger
from shed_pipeline.resources import default_home, resources_for_env
from shed_pipeline.schedules import daily_curation_schedule
from shed_pipeline.sensors import refresh_automation_sensor, source_change_sensor


def build_definitions(concise_logs: bool = False) -> dg.Definitions:
    """Assets, job, schedule, sensors, and resources picked from the environment at call time (the CLI sets
    the environment, then calls this; `dagster dev` loads `defs` below). `concise_logs` swaps the
    console logger for one line per message, for the terminal. Runs on one project folder take
    turns: the executor holds the folder's lock for the whole run (`executors.project_locked`)."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[shed_curation_job],
        schedules=[daily_curation_schedule],
        sensors=[source_change_sensor, refresh_automation_sensor],
        resources=resources_for_env(),
        loggers={"console": concise_console_logger} if concise_logs else None,
        executor=project_locked(executor_for_env(), default_home()),
    )


defs = build_definitions()
