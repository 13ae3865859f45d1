"""The command under faults a user meets: an interrupt in the middle of the evaluation, a full disk.
Each runs `shed-pipeline` in its own process, as a user does."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from shed_pipeline_tests.core.evaluation.test_benchmarks import quiz, write_archive
from shed_pipeline_tests.synthetic import make_rows, write_jsonl
from shed_pipeline_tests.tiny_lm import build_tiny_lm

CLI = [sys.executable, "-m", "shed_pipeline.cli", "run"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupt_during_the_evaluation_says_what_was_done_and_kept(shed_env, source_file, tmp_path, sig):
    archive = write_archive(tmp_path / "bigbench.tar.gz", {"quiz": quiz(10)})
    model = build_tiny_lm(tmp_path / "tiny_llama")
    argv = [
        *CLI,
        "--source",
        str(source_file),
        "--clusters",
        "4",
        "--lm-model",
        str(model),
        "--eval-steps",
        "400",
        "--benchmarks",
        "quiz",
        "--set",
        "evaluation_metrics.test_rows=6",
        "--set",
        "evaluation_metrics.benchmark_items=4",
        "--set",
        "evaluation_metrics.lm_batch_size=4",
        "--set",
        "evaluation_metrics.lm_max_tokens=48",
    ]
    env = {**os.environ, "SHED_BIGBENCH_ARCHIVE": str(archive)}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "evaluation arm 3/5 " in line:  # arms 1 and 2 are done (and cached); arm 3 is fine-tuning
                proc.send_signal(sig)
                break
        rest = proc.communicate(timeout=300)[1]
    finally:
        proc.kill()
    err = "".join(seen) + rest
    assert proc.returncode == 130, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"shed-pipeline: interrupted during evaluation_metrics \(run [0-9a-f-]{36}\); finished: raw_dataset, "
        r"embeddings, clusters, row_values, proxy_shapley_scores, curated_subset; "
        r"evaluation arms: 2 of 5 done, kept in the cache \(the next run reuses them\); cached embeddings and utility "
        r"values are kept: run the same command again to resume",
        last,
    ), last
    assert "Traceback" not in err and "DagsterExecutionInterruptedError" not in err
    again = subprocess.run([*argv, "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(re.findall(r"evaluation arm [12]/5 [^:]*: from the cache", again.stderr)) == 2


def _can_mount_tmpfs() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(
    not _can_mount_tmpfs(), reason="needs `unshare -rm` (user and mount namespaces) to give the run a small tmpfs"
)
def test_a_full_disk_is_one_line_naming_the_file_and_the_step_and_leaves_nothing_partial(shed_env, tmp_path):
    """The results folder on a 1 MB tmpfs (in a private mount namespace, gone with the process); what
    the folder holds after the failure is listed from inside the namespace."""
    src = write_jsonl(
        tmp_path / "src" / "data.jsonl", [{**r, "output": r["output"] + " " + "x" * 3000} for r in make_rows(600)]
    )
    out = tmp_path / "small_disk"
    out.mkdir()
    script = f'mount -t tmpfs -o size=1m tmpfs {out} || exit 99; "$@"; rc=$?; ls -A {out}; exit $rc'
    proc = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            script,
            "sh",
            *CLI,
            "--source",
            str(src),
            "--clusters",
            "4",
            "--fraction",
            "1.0",
            "--no-lm-eval",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SHED_PIPELINE_OUT": str(out)},
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert (
        last == f"shed-pipeline: error: no space left on device while writing {out}/curated.jsonl (step curated_subset)"
    ), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "sqlalchemy" not in proc.stderr.lower()
    assert proc.stdout.split() == []  # nothing under a final name, and no partial temporary left behind


@pytest.mark.skipif(
    not _can_mount_tmpfs(), reason="needs `unshare -rm` (user and mount namespaces) to give the run a small tmpfs"
)
def test_a_full_disk_under_dagsters_own_storage_is_one_line(shed_env, tmp_path, source_file):
    """DAGSTER_HOME (the run's event log, SQLite) fills up in the middle of the run (its databases
    take ~530 KB before the first step): the failure is Dagster's own write, and its SQLAlchemy
    error with the SQL and an event dump is one line."""
    home = shed_env["dagster_home"]
    script = (
        f"cp {home}/dagster.yaml /tmp/dagster.yaml.$$ && mount -t tmpfs -o size=700k tmpfs {home} && mv "
        f'/tmp/dagster.yaml.$$ {home}/dagster.yaml && exec "$@"'
    )
    proc = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            script,
            "sh",
            *CLI,
            "--source",
            str(source_file),
            "--clusters",
            "4",
            "--no-lm-eval",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"shed-pipeline: error: no space left on device while writing Dagster's run storage in "
        rf"{re.escape(str(home))} \(step \w+\)",
        last,
    ), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "[SQL:" not in proc.stderr and "[parameters:" not in proc.stderr
    assert proc.stderr.count("run: Dagster could not write its event log (") == 1
    assert not json.loads(proc.stdout or "null")
