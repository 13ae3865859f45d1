"""The Definitions the UI (`dagster dev`) and the CLI (`shed-pipeline run`) both load."""

import os

import dagster as dg

from shed_pipeline.assets import ALL_ASSETS
from shed_pipeline.jobs import shed_curation_job
from shed_pipeline.loggers import concise_console_logger
from shed_pipeline.resources import resources_for_env
from shed_pipeline.schedules import daily_curation_schedule
from shed_pipeline.sensors import refresh_automation_sensor, source_change_sensor

EXECUTORS = ("multiprocess", "in_process", "k8s")


def executor_for_env(kind: str | None = None) -> dg.ExecutorDefinition | None:
    """SHED_EXECUTOR: `multiprocess` (default: Dagster's own, steps as subprocesses), `in_process`,
    or `k8s` (dagster-k8s's k8s_job_executor: one pod per step, so the GPU steps' `dagster-k8s/config`
    tags give just those pods a GPU; install with `pip install 'shed-pipeline[k8s]'`)."""
    kind = (kind or os.environ.get("SHED_EXECUTOR") or "multiprocess").strip().lower()
    if kind == "multiprocess":
        return None
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise ValueError("SHED_EXECUTOR=k8s needs dagster-k8s: pip install 'shed-pipeline[k8s]'") from exc
        return k8s_job_executor
    raise ValueError(f"SHED_EXECUTOR={kind!r} is not an executor: use one of {', '.join(EXECUTORS)}")


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
        executor=executor_for_env(),
    )


defs = build_definitions()
