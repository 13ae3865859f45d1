"""The Definitions the UI (`dagster dev`) and the CLI (`shed-pipeline run`) both load."""

import dagster as dg

from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.jobs import shed_curation_job
from shed_pipeline.loggers import concise_console_logger
from shed_pipeline.resources import resources_for_env
from shed_pipeline.schedules import daily_curation_schedule
from shed_pipeline.sensors import refresh_automation_sensor, source_change_sensor


def build_definitions(concise_logs: bool = False) -> dg.Definitions:
    """Assets, job, schedule, sensors, and resources picked from the environment at call time (the CLI sets
    the environment, then calls this; `dagster dev` loads `defs` below). `concise_logs` swaps the
    console logger for one line per message, for the terminal."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[shed_curation_job],
        schedules=[daily_curation_schedule],
        sensors=[source_change_sensor, refresh_automation_sensor],
        resources=resources_for_env(),
        loggers={"console": concise_console_logger} if concise_logs else None,
    )


defs = build_definitions()
