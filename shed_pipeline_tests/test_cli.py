"""The shed-pipeline command as a user runs it: one real run, lineage queries, and clear errors."""

import json

import pytest

from shed_pipeline.cli import main


@pytest.fixture
def cli_run(shed_env, source_file, capsys):
    out = shed_env["tmp"] / "cli_out"
    code = main(["run", "--source", str(source_file), "--clusters", "8", "--method", "qwcs", "--size", "20", "--seed", "3", "--out", str(out), "--no-lm-eval", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), out


def test_run_writes_outputs_and_a_machine_readable_summary(cli_run, shed_env):
    summary, out = cli_run
    assert summary["counts"]["rows_in"] == 248 and summary["counts"]["rows_quarantined"] == 8
    assert summary["counts"]["clusters"] == 8 and summary["counts"]["selected"] == 20
    assert set(summary["seconds"]) == {"raw_dataset", "embeddings", "clusters", "proxy_shapley_scores", "curated_subset", "evaluation_metrics"}
    for key in ("curated_jsonl", "curated_parquet", "curated_manifest", "lineage_db"):
        assert summary["outputs"][key].startswith(str(out))
    assert len((out / "curated.jsonl").read_text().splitlines()) == 20
    assert json.loads((out / "curated.manifest.json").read_text())["rows"] == 20
    # The run is recorded in DAGSTER_HOME, so the UI shows it.
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(summary["run_id"]).is_success


def test_lineage_runs_why_and_diff(cli_run, shed_env, source_file, capsys):
    summary, out = cli_run
    db = str(out / "lineage.duckdb")
    assert main(["lineage", "--db", db, "runs"]) == 0
    assert summary["run_id"] in capsys.readouterr().out
    selected = json.loads((out / "curated.jsonl").read_text().splitlines()[0])
    from shed_pipeline.core.records import row_id_for

    rid = row_id_for(selected["instruction"], selected["input"], selected["output"])
    assert main(["lineage", "--db", db, "--json", "why", rid[:12]]) == 0
    why = json.loads(capsys.readouterr().out)
    assert why["selected"] and why["row_id"] == rid and why["method"] == "qwcs" and why["draw_order"] == 0 and "qwcs: draw 1" in why["reason"]
    # A second run with another method; diff explains the changes.
    assert main(["run", "--source", str(source_file), "--clusters", "8", "--method", "qocs", "--size", "20", "--seed", "3", "--out", str(out), "--no-lm-eval", "--json"]) == 0
    run_b = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["lineage", "--db", db, "--json", "diff", summary["run_id"], run_b]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["kept"] + len(diff["removed"]) == 20 and diff["kept"] + len(diff["added"]) == 20
    assert [r for r in diff["removed"] if r["status_in_b"] != "not selected"] == []


@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["run", "--source", "/no/such/file.jsonl"], 1, "/no/such/file.jsonl: no such file or folder"),
        (["run", "--fraction", "2"], 2, "must be in (0, 1]"),
        (["run", "--method", "best"], 2, "invalid choice"),
        (["run", "--fraction", "0.1", "--size", "5"], 2, "not allowed with"),
        (["run", "--set", "nonsense"], 2, "expected ASSET.KEY=VALUE"),
        (["run", "--set", "scores.k=3"], 2, "unknown asset 'scores'"),
        (["run", "--size", "many"], 2, "expected a whole number"),
        (["run", "--set", "proxy_shapley_scores.lm_stepz=4"], 1, 'invalid config: Received unexpected config entry "lm_stepz" at path root:ops:proxy_shapley_scores:config'),
        (["lineage", "--db", "/no/db.duckdb", "runs"], 1, "no lineage database"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_gets_one_line_and_a_nonzero_exit(shed_env, capsys, argv, code, message):
    with pytest.raises(SystemExit) if code == 2 else _nothing() as exc:
        rc = main(argv)
    rc = exc.value.code if code == 2 else rc
    err = capsys.readouterr().err.strip()
    assert rc == code and message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_empty_source_and_unreadable_file_fail_in_one_line(shed_env, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["run", "--source", str(empty)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("shed-pipeline: error: raw_dataset: ") and "holds no records" in err
    assert "Traceback" not in err and sum("error" in line.lower() for line in err.splitlines()) == 1
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"garbage")
    assert main(["run", "--source", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"{bad}: not a readable Parquet file" in err.splitlines()[-1] and "Traceback" not in err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_json_reports_the_work_done_and_reused_per_asset(shed_env, tmp_path, capsys):
    from shed_pipeline_tests.synthetic import make_rows, write_jsonl

    rows = make_rows(300)
    src = tmp_path / "src"
    write_jsonl(src / "a.jsonl", rows[:297])
    argv = ["run", "--source", str(src), "--clusters", "10", "--estimator", "tmc", "--permutations", "3", "--no-lm-eval", "--json"]
    first = run_json(capsys, argv)["work"]
    assert first["raw_dataset"]["rows_new"] == 297 and first["embeddings"]["rows_embedded"] == 297
    assert first["clusters"]["full_refit"] and first["clusters"]["refit_reason"] == "no previous clustering"
    write_jsonl(src / "b.jsonl", rows[297:])  # a new file dropped into the source folder
    second = run_json(capsys, argv)["work"]
    assert (second["raw_dataset"]["rows_new"], second["raw_dataset"]["rows_removed"], second["raw_dataset"]["rows_unchanged"]) == (3, 0, 297)
    assert second["embeddings"]["rows_embedded"] == 3 and second["embeddings"]["rows_reused"] == 297
    c = second["clusters"]
    assert not c["full_refit"] and c["clusters_total"] == 10 and c["clusters_affected"] <= 3
    s = second["proxy_shapley_scores"]
    assert s["utility_evaluations"] <= s["coalitions_with_new_players"] and s["utility_cache_hits"] > 0
    third = run_json(capsys, argv)["work"]
    assert third["embeddings"]["rows_embedded"] == 0 and third["clusters"]["clusters_affected"] == 0 and third["proxy_shapley_scores"]["utility_evaluations"] == 0
    forced = run_json(capsys, [*argv, "--full-refit"])["work"]["clusters"]
    assert forced["full_refit"] and forced["refit_reason"] == "a full re-fit was asked for"


def test_a_run_killed_mid_embedding_resumes_without_redoing_finished_chunks(shed_env, tmp_path, capsys, monkeypatch):
    """SIGKILL, not an exception: nothing in the process gets to clean up."""
    import os
    import signal
    import subprocess
    import sys

    from shed_pipeline_tests.synthetic import make_rows, write_jsonl

    src = write_jsonl(tmp_path / "src" / "data.jsonl", make_rows(400))  # 404 distinct texts
    argv = ["run", "--source", str(src), "--clusters", "10", "--embed-chunk", "8", "--no-lm-eval", "--json"]
    proc = subprocess.Popen([sys.executable, "-m", "shed_pipeline.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    done = 0
    try:
        for line in proc.stderr:
            if "encoded " in line and " texts (" in line:
                done = int(line.split("encoded ")[1].split("/")[0])
                if done >= 80:
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and 80 <= done < 404
    resumed = run_json(capsys, argv)
    emb = resumed["work"]["embeddings"]
    assert emb["texts_reused"] >= done and emb["texts_encoded"] == 404 - emb["texts_reused"] and emb["rows_embedded"] == 400
    killed_then_resumed = open(resumed["outputs"]["curated_jsonl"], "rb").read()
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(tmp_path / "home2"))
    run_json(capsys, [*argv, "--out", str(tmp_path / "out2")])
    assert (tmp_path / "out2" / "curated.jsonl").read_bytes() == killed_then_resumed
