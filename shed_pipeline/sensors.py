"""Sensors: re-run the curation job when the watched source's content changes, and the automation
sensor that evaluates the assets' `upstream_data_changed` conditions."""

import json

import dagster as dg
from dagster_aws.s3 import S3Resource

from shed_pipeline.core.lineage import LineageError
from shed_pipeline.core.objectstore import is_s3
from shed_pipeline.core.sources import PACKAGED_SOURCES, SourceError, scan_s3_source, scan_source, source_label
from shed_pipeline.jobs import JOB_NAME
from shed_pipeline.resources import LineageResource, PathsResource, object_store


@dg.sensor(
    job_name=JOB_NAME,  # by name: the definitions hold the job, built for the shard count in use
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Requests one run of shed_curation_job when the project's source (SHED_PIPELINE_SOURCE: a file, folder or "
        "s3:// location) changes."
    ),
)
def source_change_sensor(
    context: dg.SensorEvaluationContext, paths: PathsResource, lineage: LineageResource, s3: S3Resource
):
    """Local files: the cursor holds the last fingerprint and each file's size, mtime and hash, so a
    poll reads only files that were touched, and a run is requested only when the content hash
    changes (touching a file, or rewriting it with the same bytes, requests nothing). s3:// sources:
    the cursor holds each object's key, size and ETag (a listing, no download), and a run is
    requested when an object is added, removed or rewritten. On the first poll, a run is requested
    only if the lineage has no run of this exact source version yet."""
    source = paths.source
    if not source or source in PACKAGED_SOURCES:
        return dg.SkipReason(
            "no source to watch: set SHED_PIPELINE_SOURCE to a file, folder or s3:// location (the packaged sources "
            "never change)"
        )
    previous = json.loads(context.cursor) if context.cursor else None
    try:
        # One attempt: the next tick is the sensor's retry, and backoff would outlast the tick's timeout.
        scan = scan_s3_source(object_store(s3, attempts=1), source) if is_s3(source) else scan_source(source, previous)
    except SourceError as exc:
        return dg.SkipReason(f"cannot read the source: {exc}")
    changes = int((previous or {}).get("changes", 0))
    if previous is not None and previous.get("fingerprint") == scan.fingerprint:
        context.update_cursor(json.dumps({**scan.to_cursor(), "changes": changes}, sort_keys=True))
        return dg.SkipReason(f"source unchanged (fingerprint {scan.fingerprint})")
    # Counting changes keeps run keys unique when content returns to an earlier state (A -> B -> A).
    context.update_cursor(json.dumps({**scan.to_cursor(), "changes": changes + 1}, sort_keys=True))
    if previous is None:
        try:
            done = lineage.store().fingerprints_of(source_label(source))
        except LineageError:
            done = set()
        if scan.fingerprint in done:
            return dg.SkipReason(f"source already curated at this content (fingerprint {scan.fingerprint})")
    return dg.RunRequest(
        run_key=f"source-{changes + 1}-{scan.fingerprint}",
        run_config={"ops": {"raw_dataset": {"config": {"source": source}}}},
        tags={"shed/source_fingerprint": scan.fingerprint, "shed/trigger": "source_change_sensor"},
    )


# Evaluates every asset's automation condition (downstream assets re-run when upstream data versions
# change). Running by default: it requests nothing unless an upstream asset's data really changed.
refresh_automation_sensor = dg.AutomationConditionSensorDefinition(
    "refresh_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
