"""Executors: Dagster's own (picked by `Settings.executor`, SHED_EXECUTOR), each wrapped so that runs on one project
folder take turns.

Whatever starts a run (the UI, a schedule, a sensor, `dagster job launch`), its orchestration goes
through the job's executor in one process (the run worker): the wrapper holds the project lock
(`core/project_lock.py`) from before the first step to after the last, and a second run on the same
project logs which run it waits for. The CLI executes in process (Dagster then ignores the job's
executor) and takes the same lock itself.
"""

from __future__ import annotations

import dagster as dg

from shed_pipeline.core.project_lock import Holder, project_lock
from shed_pipeline.gpu_steps import gpu_op_names, gpu_step_k8s_config, with_gpu_step_pods
from shed_pipeline.resources import adopt_legacy_lineage
from shed_pipeline.settings import EXECUTORS, Settings


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """The executor `settings.executor` names (SHED_EXECUTOR): `multiprocess` (default: Dagster's own,
    steps as subprocesses; `in_process` through run config), `in_process`, or `k8s` (dagster-k8s's
    k8s_job_executor: one pod per step, the GPU steps' pods with `settings.k8s_gpu_step` or the
    default GPU pod, see gpu_steps; install with `pip install 'shed-pipeline[k8s]'`)."""
    kind = settings.executor.strip().lower()
    if kind == "multiprocess":
        return dg.multi_or_in_process_executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise ValueError("SHED_EXECUTOR=k8s needs dagster-k8s: pip install 'shed-pipeline[k8s]'") from exc
        from shed_pipeline.assets import ALL_ASSETS

        return with_gpu_step_pods(
            k8s_job_executor, op_names=gpu_op_names(ALL_ASSETS), pod=gpu_step_k8s_config(settings.k8s_gpu_step)
        )
    raise ValueError(f"SHED_EXECUTOR={kind!r} is not an executor: use one of {', '.join(EXECUTORS)}")


def started_by(tags: dict[str, str]) -> str:
    """How a run was started, from its Dagster tags, for the waiting run's message."""
    for tag, what in (
        ("dagster/sensor_name", "sensor"),
        ("dagster/schedule_name", "schedule"),
        ("dagster/backfill", "backfill"),
    ):
        if tags.get(tag):
            return f"{what} {tags[tag]}"
    if tags.get("shed/launched_by"):
        return tags["shed/launched_by"]
    return "the Dagster UI or API"


def raise_if_interrupted() -> None:
    """Dagster runs an executor with interrupts captured as a flag (a terminate from the UI, a pod
    being deleted): a run that is waiting for its turn stops waiting when the flag is set."""
    from dagster._utils.interrupts import check_captured_interrupt  # no public API for the flag

    if check_captured_interrupt():
        raise dg.DagsterExecutionInterruptedError("interrupted while waiting for the project folder")


# Runs of only these assets' partitions write only their own partitions' files: they share the folder.
SHARED_LOCK_ASSETS = frozenset({dg.AssetKey("embeddings")})
PARTITION_TAGS = ("dagster/partition", "dagster/asset_partition_range_start")


def shares_project(run: dg.DagsterRun) -> bool:
    """Whether a run may hold the project lock alongside others of its kind: it materializes only
    partitions (shards) of SHARED_LOCK_ASSETS, as a backfill's shard runs do."""
    selection = run.asset_selection
    return bool(selection) and set(selection) <= SHARED_LOCK_ASSETS and any(run.tags.get(t) for t in PARTITION_TAGS)


class ProjectLockedExecutor(dg.Executor):
    """Runs `inner`'s orchestration while holding the project folder's lock."""

    def __init__(self, inner: dg.Executor, settings: Settings):
        self.inner = inner
        self.settings = settings
        self.home = settings.home_dir

    def execute(self, plan_context, execution_plan):
        run = plan_context.dagster_run
        holder = Holder(run_id=run.run_id, via=started_by(dict(run.tags)))
        shared = shares_project(run)
        with project_lock(
            self.home, holder, log=plan_context.log.info, check_interrupt=raise_if_interrupted, shared=shared
        ):
            moved = None if shared else adopt_legacy_lineage(self.settings)
            if moved:
                plan_context.log.info(moved)
            yield from self.inner.execute(plan_context, execution_plan)

    @property
    def retries(self):
        return self.inner.retries

    @property
    def step_dependency_config(self):
        return self.inner.step_dependency_config


def project_locked(inner: dg.ExecutorDefinition, settings: Settings) -> dg.ExecutorDefinition:
    """`inner` with the same name, config and requirements, whose executor holds the lock of
    `settings.home`, the project folder."""
    create = inner.executor_creation_fn
    if create is None:
        raise ValueError(f"executor {inner.name} has no creation function to wrap")
    return dg.ExecutorDefinition(
        name=inner.name,
        config_schema=inner.config_schema,
        requirements=inner.get_requirements,
        executor_creation_fn=lambda init_context: ProjectLockedExecutor(create(init_context), settings),
        description=f"{inner.description or inner.name} (one run at a time per project folder)",
    )
