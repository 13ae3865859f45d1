"""What a run did, read from its Dagster events: assets done, the failed step and why, interrupts."""

from pathlib import Path
from typing import Any

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.cli.errors import INTERRUPTS, Interrupted, error_line, no_space_message
from shed_pipeline.summaries import ArmProgress


def run_events(instance, run_id: str) -> list:
    """The Dagster events of a run, from the instance's event log."""
    return [rec.dagster_event for rec in instance.all_logs(run_id) if rec.dagster_event is not None]


def asset_of(step_key: str | None) -> str | None:
    """The asset a step belongs to: a graph-backed asset's steps are `<asset>.<op>[<share>]`."""
    return step_key.split(".", 1)[0] if step_key else step_key


def run_report(events) -> dict:
    """What a finished, failed or interrupted run did, from its Dagster events: the assets
    materialized, the step that failed and why, failed checks, and the evaluation arms done so far."""
    from dagster import DagsterEventType

    report: dict[str, Any] = {
        "done": [],
        "failed_step": None,
        "error": None,
        "error_classes": set(),
        "interrupted": False,
        "failed_checks": [],
        "arms": None,
    }
    for ev in events:
        if ev.event_type == DagsterEventType.ASSET_MATERIALIZATION and asset_of(ev.step_key) not in report["done"]:
            report["done"].append(asset_of(ev.step_key))
        elif ev.event_type == DagsterEventType.ASSET_OBSERVATION:
            meta = ev.event_specific_data.asset_observation.metadata
            progress = ArmProgress.from_metadata({k: getattr(v, "value", v) for k, v in meta.items()})
            if progress is not None:
                report["arms"] = (progress.arms_done, progress.arms_total)
        elif ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            check = ev.event_specific_data
            if not check.passed:
                report["failed_checks"].append(
                    (
                        f"{check.asset_key.to_user_string()}: check {check.check_name} failed: "
                        f"{check.description or ''}"
                    ).rstrip(": ")
                )
        elif ev.event_type == DagsterEventType.STEP_FAILURE and report["failed_step"] is None:
            report["failed_step"] = asset_of(ev.step_key)
            err = ev.step_failure_data.error if ev.step_failure_data else None
            chain = err
            while chain is not None:  # the error and its causes, by class name (what the event keeps)
                report["error_classes"].add(chain.cls_name)
                chain = chain.cause
            report["interrupted"] = bool(report["error_classes"] & INTERRUPTS)
            report["error"] = error_line(err) if err is not None else None
    return report


def failure_message(events) -> str:
    """The one line a failed run's events come down to."""
    return report_failure_message(run_report(events))


def report_failure_message(report: dict, storage: Path | str = "DAGSTER_HOME") -> str:
    if report["failed_checks"] and (
        report["error"] is None or "DagsterAssetCheckFailedError" in report["error_classes"]
    ):
        return report["failed_checks"][0]  # a blocking check stopped the run: its description says why
    if report["failed_step"]:
        step, error = report["failed_step"], report["error"] or "failed"
        return no_space_message(error, step, storage) or f"{step}: {error}"
    if report["failed_checks"]:
        return report["failed_checks"][0]
    return "the run failed (see the Dagster UI for the event log)"


def interrupted(instance, run_id: str) -> Interrupted:
    """The interrupt, saying what the run finished; if its event log cannot be read (a full disk),
    still the interrupt."""
    try:
        report = run_report(run_events(instance, run_id))
    except Exception:
        report = {"done": [], "failed_step": None, "arms": None}
    return Interrupted(interrupted_message(report, run_id))


def interrupted_message(report: dict, run_id: str) -> str:
    running = report["failed_step"] or next((a for a in ASSET_NAMES if a not in report["done"]), None)
    done = ", ".join(report["done"]) or "nothing"
    text = (
        f"interrupted during {running} (run {run_id}); finished: {done}" if running else f"interrupted (run {run_id})"
    )
    if report["arms"] is not None:
        arms_done, arms_total = report["arms"]
        text += f"; evaluation arms: {arms_done} of {arms_total} done, kept in the cache (the next run reuses them)"
    return text + "; cached embeddings and utility values are kept: run the same command again to resume"


def asset_metadata(result, node: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mat in result.asset_materializations_for_node(node):
        for k, v in mat.metadata.items():
            val = getattr(v, "value", v)
            if (
                isinstance(val, (int, float, str, bool, dict, list)) or val is None
            ):  # dict/list: JSON metadata (quarantine reasons, ...)
                out[k] = val
    return out
