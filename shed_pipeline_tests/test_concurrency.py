"""Runs that start at the same time on one project folder take turns and never read each other's data.

The reproduction: three `shed-pipeline run` processes at once on one SHED_PIPELINE_HOME and one --out,
two on one source and one on another. Before runs took turns, all three exited 0 and the small
source's run selected rows of the other source. And a run that Dagster starts (the UI, a schedule, a
sensor) waits through the job's executor, naming the run it waits for.
"""

import json
import os
import subprocess
import sys
import threading
import time

import dagster as dg
import duckdb
import pytest

from shed_pipeline.core.project_lock import Holder, project_lock
from shed_pipeline_tests.synthetic import make_rows, write_jsonl


def test_three_concurrent_cli_runs_on_one_project_each_select_only_their_own_rows(shed_env, tmp_path):
    big = write_jsonl(tmp_path / "big" / "data.jsonl", make_rows(600, seed=1))
    small = write_jsonl(
        tmp_path / "small" / "data.jsonl", [{**r, "output": r["output"] + " (small)"} for r in make_rows(300, seed=2)]
    )
    out = tmp_path / "shared_out"
    # Defaults as a user has them: results in --out, lineage in the project's one database.
    env = {k: v for k, v in os.environ.items() if k not in ("SHED_PIPELINE_OUT", "SHED_PIPELINE_LINEAGE")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shed_pipeline.cli",
                "run",
                "--source",
                str(src),
                "--no-lm-eval",
                "--clusters",
                "20",
                "--out",
                str(out),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for src in (big, big, small)
    ]
    results = [p.communicate(timeout=900) for p in procs]
    for p, (_, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr[-2000:]
    summaries = [json.loads(stdout) for stdout, _ in results]
    run_ids = [s["run_id"] for s in summaries]
    assert len(set(run_ids)) == 3
    waits = [stderr for _, stderr in results if "waiting for run " in stderr]
    assert len(waits) >= 2  # the first run holds the project, the two others take their turn, saying for whom they wait
    assert any(f"waiting for run {other} (shed-pipeline run, pid " in w for w in waits for other in run_ids)
    db = str(shed_env["home"] / "lineage.duckdb")  # the project's, not --out's
    assert [s["outputs"]["lineage_db"] for s in summaries] == [db] * 3 and not (out / "lineage.duckdb").exists()
    with duckdb.connect(db, read_only=True) as con:
        for run_id, src in zip(run_ids, (big, big, small), strict=True):
            assert con.execute("SELECT source FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] == str(src.resolve())
            own = {r for (r,) in con.execute("SELECT row_id FROM rows WHERE run_id = ?", [run_id]).fetchall()}
            picked = [r for (r,) in con.execute("SELECT row_id FROM selections WHERE run_id = ?", [run_id]).fetchall()]
            assert picked and set(picked) <= own, f"run {run_id} selected rows it never read"
            for asset, inputs in con.execute(
                "SELECT asset, inputs FROM asset_runs WHERE run_id = ?", [run_id]
            ).fetchall():
                assert set(json.loads(inputs or "{}").values()) <= {run_id}, (
                    f"{asset} of run {run_id} read another run's data: {inputs}"
                )
    # The published pair is the last run's, whole: its manifest names it and its rows are its source's.
    manifest = json.loads((out / "curated.manifest.json").read_text())
    last = manifest["run_id"]
    assert last in run_ids and len(manifest["row_ids"]) == manifest["rows"]
    small_rows = last == run_ids[2]
    lines = [json.loads(line) for line in (out / "curated.jsonl").read_text().splitlines()]
    assert lines and all(line["output"].endswith(" (small)") == small_rows for line in lines)


def curation_job():
    from shed_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def("shed_curation_job")


def test_a_run_started_through_dagster_waits_for_the_run_holding_the_project(shed_env, source_file):
    """The path of the UI, schedules and sensors: the job's executor takes the project lock."""
    held = threading.Event()

    def someone_waits(instance) -> bool:
        return any(
            rec.user_message.startswith("waiting for run cli-run-1234")
            for run in instance.get_runs()
            for rec in instance.all_logs(run.run_id)
        )

    def hold(instance):
        with project_lock(shed_env["home"], Holder(run_id="cli-run-1234", via="shed-pipeline run")):
            held.set()
            deadline = time.monotonic() + 120
            while not someone_waits(instance) and time.monotonic() < deadline:  # hold until the run says it waits
                time.sleep(0.2)

    with dg.DagsterInstance.get() as instance:
        holder = threading.Thread(target=hold, args=(instance,))
        holder.start()
        assert held.wait(30)
        result = dg.execute_job(
            dg.reconstructable(curation_job),
            instance=instance,
            run_config={
                "execution": {"config": {"in_process": {}}},
                "ops": {"raw_dataset": {"config": {"source": str(source_file)}}},
            },
            asset_selection=[dg.AssetKey("raw_dataset")],
        )
        holder.join(30)
        assert result.success
        messages = [rec.user_message for rec in instance.all_logs(result.run_id)]
    waiting = [m for m in messages if m.startswith("waiting for run cli-run-1234 (shed-pipeline run, pid ")]
    assert waiting and "runs on one project take turns" in waiting[0]
    started = messages.index(next(m for m in messages if m.startswith("project folder is free after ")))
    assert started < messages.index('Started execution of step "raw_dataset".')  # no step ran before the turn came


def test_a_run_waiting_for_its_turn_stops_when_dagster_captures_an_interrupt():
    """A terminate from the UI reaches a run worker as SIGINT, which Dagster turns into a flag while
    the executor runs: the wait looks at it on every poll instead of waiting for the other run."""
    import signal

    # No public equivalent: Dagster exports no way to capture interrupts as its executor does.
    from dagster._utils.interrupts import capture_interrupts, pop_captured_interrupt

    from shed_pipeline.executors import raise_if_interrupted

    raise_if_interrupted()  # no interrupt: nothing happens
    with capture_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        try:
            with pytest.raises(dg.DagsterExecutionInterruptedError, match="while waiting for the project folder"):
                raise_if_interrupted()
        finally:
            pop_captured_interrupt()
