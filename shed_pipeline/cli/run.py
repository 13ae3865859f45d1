"""`shed-pipeline run`: the curation job executed in this process, on the project's Dagster instance."""

import argparse
import json
import os
import signal
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.cli.errors import CliError, Interrupted
from shed_pipeline.cli.events import (
    asset_metadata,
    interrupted,
    interrupted_message,
    report_failure_message,
    run_events,
    run_report,
)
from shed_pipeline.cli.instance import dagster_instance, ensure_dagster_home, quiet_storage_errors
from shed_pipeline.cli.render import comparison_summary, lm_summary, run_summary_text, say, work_done
from shed_pipeline.cli.run_config import benchmarks_to_check, check_strategy_requirements, run_config_from_args
from shed_pipeline.settings import LINEAGE_FILE, Settings
from shed_pipeline.summaries import SUMMARIES


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a `kill`, a container stopping) ends the run like Ctrl-C: reported, not cut off."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def quiet_progress_bars() -> None:
    """transformers' and huggingface_hub's own bars ("Loading weights") redraw a line many times;
    our progress lines suffice."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    disable_progress_bars()
    transformers_logging.disable_progress_bar()


def older_lineage_beside(out: Path, lineage: Path) -> str | None:
    """A hint when --out holds a lineage database that an older version wrote next to the results."""
    old = out / LINEAGE_FILE
    if old.is_file() and old.resolve() != lineage.resolve():
        return (
            f"{old} is an older lineage database (earlier versions kept lineage next to the results); this project's "
            f"is {lineage}: query the old one with `shed-pipeline lineage --db {old} runs`"
        )
    return None


def settings_from_flags(args: argparse.Namespace) -> Settings:
    """The environment's Settings with the run's flags over them: --out, --device, --precision and
    --embedding-shards stand for the variables they override (an environment they fix, such as
    SHED_ENV=prod without SHED_PIPELINE_OUT under --out s3://..., is fine)."""
    from shed_pipeline.core.shards import parse_shard_count

    if args.embedding_shards:  # checked as the flag, so that an error names the flag
        parse_shard_count(str(args.embedding_shards), where="--embedding-shards")
    flags = {
        "SHED_PIPELINE_OUT": args.out,
        "SHED_DEVICE": args.device,
        "SHED_PRECISION": args.precision,
        "SHED_EMBEDDING_SHARDS": str(args.embedding_shards) if args.embedding_shards else None,
    }
    return Settings.from_env(overrides={name: value for name, value in flags.items() if value})


def cmd_run(args: argparse.Namespace) -> int:
    from shed_pipeline.core.evaluation import check_benchmarks
    from shed_pipeline.core.objectstore import S3Uri, is_s3
    from shed_pipeline.core.project_lock import Holder, project_lock
    from shed_pipeline.core.sources import PACKAGED_SOURCES
    from shed_pipeline.loggers import StepTracker
    from shed_pipeline.resources import adopt_legacy_lineage

    StepTracker.last_step = None  # a step named in an error is this run's
    settings = settings_from_flags(args)
    if (
        args.source
        and args.source not in PACKAGED_SOURCES
        and not is_s3(args.source)
        and not os.path.lexists(Path(args.source).expanduser())
    ):
        raise CliError(f"{args.source}: no such file or folder")
    run_config = run_config_from_args(args)
    check_strategy_requirements(run_config)  # e.g. knn_exact with the probe utility fails now, not after embedding
    for asset in ("proxy_shapley_scores", "row_values"):  # the assets whose work fans out over workers
        workers = run_config.get("ops", {}).get(asset, {}).get("config", {}).get("workers", 1)
        if isinstance(workers, int) and workers > 1:
            say(
                f"{asset}.workers={workers}: this command runs every step in one process, so the {workers} shares run "
                "one after another; launch shed_curation_job from the Dagster UI or `dagster job launch` to run them "
                "side by side"
            )
    wanted = benchmarks_to_check(run_config)
    if wanted:  # a misspelt benchmark fails now, not after the whole pipeline ran
        check_benchmarks(wanted, settings.downloads, log=say, archive=settings.bigbench_archive)
    # Results go to --out, else $SHED_PIPELINE_OUT, else .shed_pipeline/out; an s3:// location gets
    # them uploaded there, from a local copy under .shed_pipeline/out. Lineage is the project's one
    # database whatever --out is, so every run of the project is found in one place.
    out = settings.local_out
    out.mkdir(parents=True, exist_ok=True)
    target = settings.out if is_s3(settings.out) else str(out.resolve())
    published = (lambda name: str(S3Uri.parse(target).child(name))) if is_s3(target) else (lambda name: str(out / name))
    settings = settings.replace(out=target)
    quiet_progress_bars()
    dagster_home = ensure_dagster_home(settings)
    import warnings

    import dagster as dg

    # Content-based data versions (Output(data_version=...)) are what make refreshes incremental;
    # Dagster flags the parameter as beta on every materialization, which is noise to a CLI user.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)

    from shed_pipeline.definitions import build_definitions

    job = build_definitions(settings, concise_logs=True).resolve_job_def("shed_curation_job")
    try:  # against the assets' Config classes, before waiting for the project or doing any work
        dg.validate_run_config(job, run_config)
    except dg.DagsterInvalidConfigError as exc:  # e.g. a misspelt --set key: name it, not the whole schema
        raise CliError("invalid config: " + "; ".join(e.message.split(" Expected")[0] for e in exc.errors)) from None
    run_id = str(uuid.uuid4())
    t0 = time.perf_counter()
    # execute_in_process runs without the job's executor, so the CLI takes the project lock itself.
    with (
        sigterm_as_interrupt(),
        project_lock(settings.home, Holder(run_id=run_id, via="shed-pipeline run"), log=say, wait=not args.no_wait),
        dagster_instance(dagster_home) as instance,
    ):
        for line in filter(None, [adopt_legacy_lineage(settings), older_lineage_beside(out, settings.lineage_path)]):
            say(line)
        with quiet_storage_errors():
            try:
                result = job.execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    raise_on_error=False,
                    run_id=run_id,
                    tags={"shed/launched_by": "shed-pipeline run"},
                )
            except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):  # Ctrl-C / SIGTERM
                raise interrupted(instance, run_id) from None
        if not result.success:
            report = run_report(run_events(instance, run_id))
            if report["interrupted"]:
                raise Interrupted(interrupted_message(report, run_id))
            raise CliError(report_failure_message(report, dagster_home))
        lm_rows = lm_summary(out / "evaluation.json")  # read while the project is still this run's
        comparison = comparison_summary(out / "evaluation.json")
    wall = time.perf_counter() - t0
    meta = {node: asset_metadata(result, node) for node in ASSET_NAMES}
    summaries = {node: SUMMARIES[node].from_metadata(meta[node]) for node in ASSET_NAMES}
    raw = summaries["raw_dataset"]
    summary = {
        "run_id": result.run_id,
        "success": True,
        "wall_seconds": round(wall, 3),
        "seconds": {n: summaries[n].seconds for n in ASSET_NAMES},
        "counts": {
            "rows_in": raw.rows_in,
            "rows_ok": raw.rows_ok,
            "rows_quarantined": raw.rows_quarantined,
            "quarantine_reasons": raw.quarantine_reasons,
            "rows_pool": raw.rows_pool,
            "rows_validation": raw.rows_validation,
            "rows_test": raw.rows_test,
            "rows_embedded": summaries["embeddings"].rows_embedded,
            "rows_embedding_reused": summaries["embeddings"].rows_reused,
            "clusters": summaries["clusters"].n_clusters,
            "utility_evaluations": summaries["proxy_shapley_scores"].utility_evaluations,
            "selected": summaries["curated_subset"].selected,
        },
        "work": work_done(summaries),
        "assets": meta,
        "outputs": {
            "curated_jsonl": published("curated.jsonl"),
            "curated_parquet": published("curated.parquet"),
            "curated_manifest": published("curated.manifest.json"),
            "lineage_db": str(settings.lineage_path),
            "evaluation_json": published("evaluation.json"),
        },
        "dagster_home": str(dagster_home),
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(run_summary_text(summary, summaries["evaluation_metrics"], wall=wall, lm_rows=lm_rows, comparison=comparison))
    return 0
