"""The shed-pipeline command as a user runs it: one real run, lineage queries, and clear errors."""

import json
import os
import re
from pathlib import Path

import pytest

from shed_pipeline.cli import main


def ours(environ) -> dict[str, str]:
    """The variables this project or its libraries' progress bars read (torch and others set their own
    on import)."""
    return {k: v for k, v in environ.items() if k.startswith(("SHED_", "AWS_", "DAGSTER_", "HF_"))}


@pytest.fixture
def cli_run(shed_env, source_file, capsys):
    out = shed_env["tmp"] / "cli_out"
    environment = ours(os.environ)
    code = main(
        [
            "run",
            "--source",
            str(source_file),
            "--clusters",
            "8",
            "--method",
            "qwcs",
            "--size",
            "20",
            "--seed",
            "3",
            "--out",
            str(out),
            "--embedding-shards",
            "1",
            "--device",
            "cpu",
            "--no-lm-eval",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert ours(os.environ) == environment  # flags reach the run through Settings, not the environment
    return json.loads(captured.out), out


def test_run_writes_outputs_and_a_machine_readable_summary(cli_run, shed_env):
    summary, out = cli_run
    assert summary["counts"]["rows_in"] == 248 and summary["counts"]["rows_quarantined"] == 8
    assert summary["counts"]["clusters"] == 8 and summary["counts"]["selected"] == 20
    assert set(summary["seconds"]) == {
        "raw_dataset",
        "embeddings",
        "clusters",
        "row_values",
        "proxy_shapley_scores",
        "curated_subset",
        "evaluation_metrics",
    }
    for key in ("curated_jsonl", "curated_parquet", "curated_manifest"):
        assert summary["outputs"][key].startswith(str(out))
    assert summary["outputs"]["lineage_db"] == os.environ["SHED_PIPELINE_LINEAGE"]  # the project's, not --out's
    assert len((out / "curated.jsonl").read_text().splitlines()) == 20
    assert json.loads((out / "curated.manifest.json").read_text())["rows"] == 20
    # The run is recorded in DAGSTER_HOME, so the UI shows it.
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(summary["run_id"]).is_success


def test_lineage_runs_why_and_diff(cli_run, shed_env, source_file, capsys):
    summary, out = cli_run
    db = summary["outputs"]["lineage_db"]
    assert main(["lineage", "--db", db, "runs"]) == 0
    assert summary["run_id"] in capsys.readouterr().out
    selected = json.loads((out / "curated.jsonl").read_text().splitlines()[0])
    from shed_pipeline.core.sources import row_id_for

    rid = row_id_for(selected["instruction"], selected["input"], selected["output"])
    assert main(["lineage", "--db", db, "--json", "why", rid[:12]]) == 0
    why = json.loads(capsys.readouterr().out)
    assert (
        why["selected"]
        and why["row_id"] == rid
        and why["method"] == "qwcs"
        and why["draw_order"] == 0
        and "qwcs: draw 1" in why["reason"]
    )
    # A second run with another method; diff explains the changes.
    assert (
        main(
            [
                "run",
                "--source",
                str(source_file),
                "--clusters",
                "8",
                "--method",
                "qocs",
                "--size",
                "20",
                "--seed",
                "3",
                "--out",
                str(out),
                "--no-lm-eval",
                "--json",
            ]
        )
        == 0
    )
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
        (["run", "--embedding-shards", "0"], 2, "must be at least 1"),
        (
            ["run", "--embedding-shards", "2000"],
            1,
            "--embedding-shards='2000': give a whole number of embedding shards from 1 to 1024 (1 = not sharded)",
        ),
        (
            ["run", "--set", "proxy_shapley_scores.seeed=4"],
            1,
            'invalid config: Received unexpected config entry "seeed" at path root:ops:proxy_shapley_scores:config',
        ),
        (
            ["run", "--set", "proxy_shapley_scores.lm_steps=4"],
            1,
            "proxy_shapley_scores.lm_steps is now proxy_shapley_scores.utility.lm.steps",
        ),
        (
            ["run", "--set", "curated_subset.method.best=1"],
            1,
            "unknown method 'best'; choose one of qocs, qwcs, coverage, random",
        ),
        (["run", "--method", "qocs", "--temperature", "0.5"], 1, "--temperature is a setting of the method qwcs"),
        (["run", "--method", "qwcs", "--cap", "3"], 1, "--cap is a setting of the method coverage"),
        (
            ["run", "--permutations", "5"],
            1,
            "--permutations is a setting of the estimator shed_grouped / tmc / ts_chains, not of knn_exact",
        ),
        (["run", "--utility", "probe", "--estimator", "knn_exact"], 1, "estimator knn_exact needs utility knn"),
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
    argv = [
        "run",
        "--source",
        str(src),
        "--clusters",
        "10",
        "--estimator",
        "tmc",
        "--permutations",
        "3",
        "--no-lm-eval",
        "--json",
    ]
    first = run_json(capsys, argv)["work"]
    assert first["raw_dataset"]["rows_new"] == 297 and first["embeddings"]["rows_embedded"] == 297
    assert first["clusters"]["full_refit"] and first["clusters"]["refit_reason"] == "no previous clustering"
    write_jsonl(src / "b.jsonl", rows[297:])  # a new file dropped into the source folder
    second = run_json(capsys, argv)["work"]
    assert (
        second["raw_dataset"]["rows_new"],
        second["raw_dataset"]["rows_removed"],
        second["raw_dataset"]["rows_unchanged"],
    ) == (3, 0, 297)
    assert second["embeddings"]["rows_embedded"] == 3 and second["embeddings"]["rows_reused"] == 297
    c = second["clusters"]
    assert not c["full_refit"] and c["clusters_total"] == 10 and c["clusters_affected"] <= 3
    s = second["proxy_shapley_scores"]
    assert s["utility_evaluations"] <= s["coalitions_with_new_players"] and s["utility_cache_hits"] > 0
    third = run_json(capsys, argv)["work"]
    assert (
        third["embeddings"]["rows_embedded"] == 0
        and third["clusters"]["clusters_affected"] == 0
        and third["proxy_shapley_scores"]["utility_evaluations"] == 0
    )
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
    argv = [
        "run",
        "--source",
        str(src),
        "--clusters",
        "10",
        "--embed-chunk",
        "8",
        "--set",
        "embeddings.save_seconds=0",
        "--no-lm-eval",
        "--json",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shed_pipeline.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    done = 0
    try:
        for line in proc.stderr:
            if "encoded: " in line and " texts (" in line:
                done = int(line.split("encoded: ")[1].split("/")[0])
                if done >= 120:
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and 120 <= done < 404
    resumed = run_json(capsys, argv)
    emb = resumed["work"]["embeddings"]
    assert emb["texts_reused"] >= done and emb["texts_encoded"] == 404 - emb["texts_reused"]
    # Texts are encoded longest first and the four shared instructions are among the 104 longest, so
    # after 120 saves they are all in the cache; each input belongs to one row: the rows that needed
    # the model are those whose input was not saved.
    assert emb["rows_embedded"] == emb["texts_encoded"] and emb["rows_reused"] == 400 - emb["rows_embedded"]
    killed_then_resumed = open(resumed["outputs"]["curated_jsonl"], "rb").read()
    monkeypatch.setenv("SHED_PIPELINE_HOME", str(tmp_path / "home2"))
    run_json(capsys, [*argv, "--out", str(tmp_path / "out2")])
    assert (tmp_path / "out2" / "curated.jsonl").read_bytes() == killed_then_resumed


# -- issue: what a new user trips on -------------------------------------------------------------


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert "Traceback" not in err and "shed_pipeline." not in last and "dagster._core" not in last, err[-1500:]
    return last


def test_lineage_is_the_projects_whatever_out_is(shed_env, source_file, tmp_path, capsys, monkeypatch):
    """Two runs to two --out folders: both in one lineage database in the project, found without --db."""
    monkeypatch.delenv("SHED_PIPELINE_LINEAGE")
    argv = ["run", "--source", str(source_file), "--clusters", "8", "--size", "20", "--no-lm-eval", "--json"]
    a = run_json(capsys, [*argv, "--out", str(tmp_path / "out_a")])
    b = run_json(capsys, [*argv, "--out", str(tmp_path / "out_b"), "--method", "qwcs"])
    db = str(shed_env["home"] / "lineage.duckdb")
    assert a["outputs"]["lineage_db"] == b["outputs"]["lineage_db"] == db
    assert not (tmp_path / "out_a" / "lineage.duckdb").exists() and not (tmp_path / "out_b" / "lineage.duckdb").exists()
    assert b["work"]["raw_dataset"]["previous_run"] == a["run_id"]  # the second run knows the first
    assert main(["lineage", "--json", "runs"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [a["run_id"], b["run_id"]]
    assert main(["lineage", "--json", "diff", a["run_id"][:8], b["run_id"][:8]]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["kept"] + len(diff["added"]) == 20


def test_an_older_projects_lineage_is_moved_into_the_project_once(tmp_path, monkeypatch):
    from shed_pipeline.resources import adopt_legacy_lineage
    from shed_pipeline.settings import Settings

    monkeypatch.delenv("SHED_PIPELINE_LINEAGE", raising=False)
    settings = Settings.from_env().replace(home=tmp_path)
    legacy = tmp_path / "out" / "lineage.duckdb"
    legacy.parent.mkdir()
    legacy.write_bytes(b"old lineage")
    (tmp_path / "out" / "lineage.duckdb.wal").write_bytes(b"its write-ahead log")
    assert settings.lineage_path == tmp_path / "lineage.duckdb" and legacy.exists()  # looking moves nothing
    assert adopt_legacy_lineage(settings) == (
        f"moved this project's lineage from {legacy} to {tmp_path / 'lineage.duckdb'} (one lineage database per "
        "project)"
    )
    assert (tmp_path / "lineage.duckdb").read_bytes() == b"old lineage" and (
        tmp_path / "lineage.duckdb.wal"
    ).read_bytes() == b"its write-ahead log"
    assert not legacy.exists() and not (tmp_path / "out" / "lineage.duckdb.wal").exists()
    legacy.write_bytes(b"newer copy, left alone")  # the project's own database wins from then on
    assert adopt_legacy_lineage(settings) is None
    assert (tmp_path / "lineage.duckdb").read_bytes() == b"old lineage" and legacy.exists()


def test_curated_rows_lead_back_to_their_lineage(cli_run, shed_env, capsys, tmp_path, source_file):
    """The manifest lists each curated line's row id; --row-id-field also writes it into the rows."""
    from shed_pipeline.core.sources import row_id_for

    summary, out = cli_run
    manifest = json.loads((out / "curated.manifest.json").read_text())
    lines = [json.loads(line) for line in (out / "curated.jsonl").read_text().splitlines()]
    assert (
        manifest["row_ids"] == [row_id_for(r["instruction"], r["input"], r["output"]) for r in lines]
        and manifest["row_id_field"] is None
    )
    assert "row_id" not in lines[0]  # the input's own schema by default
    assert main(["lineage", "--json", "why", manifest["row_ids"][3]]) == 0
    assert json.loads(capsys.readouterr().out)["draw_order"] == 3
    with_ids = run_json(
        capsys,
        [
            "run",
            "--source",
            str(source_file),
            "--clusters",
            "8",
            "--method",
            "qwcs",
            "--size",
            "20",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "ids"),
            "--no-lm-eval",
            "--json",
            "--row-id-field",
            "shed_row_id",
        ],
    )
    rows = [json.loads(line) for line in (tmp_path / "ids" / "curated.jsonl").read_text().splitlines()]
    assert (
        [r["shed_row_id"] for r in rows]
        == manifest["row_ids"]
        == json.loads((tmp_path / "ids" / "curated.manifest.json").read_text())["row_ids"]
    )
    assert with_ids["counts"]["selected"] == 20
    assert (
        main(
            [
                "run",
                "--source",
                str(source_file),
                "--clusters",
                "8",
                "--size",
                "20",
                "--out",
                str(tmp_path / "clash"),
                "--no-lm-eval",
                "--row-id-field",
                "task",
            ]
        )
        == 1
    )
    assert "row_id_field 'task': the curated records already have a field of that name" in one_error_line(capsys)


def test_json_summary_counts_quarantine_reasons(cli_run):
    summary, _ = cli_run
    assert summary["counts"]["quarantine_reasons"] == {
        "duplicate": 2,
        "empty_field": 1,
        "invalid_utf8": 1,
        "malformed_json": 1,
        "missing_field": 1,
        "not_an_object": 1,
        "wrong_type": 1,
    }


def test_a_failed_quarantine_bound_prints_the_counts_and_the_bound(shed_env, tmp_path, capsys):
    from shed_pipeline_tests.synthetic import BAD_LINES, make_rows, write_jsonl

    src = write_jsonl(tmp_path / "d.jsonl", make_rows(20), BAD_LINES)  # 6 of 26 quarantined: 23.1%
    assert main(["run", "--source", str(src), "--clusters", "3", "--no-lm-eval"]) == 1
    assert one_error_line(capsys) == (
        "shed-pipeline: error: raw_dataset: check quarantine_within_bound failed: 6 of 26 rows quarantined (23.1%) > "
        "max_quarantine_fraction 0.2; "
        "reasons: empty_field 1, invalid_utf8 1, malformed_json 1, missing_field 1, not_an_object 1, wrong_type 1"
    )


def test_when_every_row_is_quarantined_the_reasons_are_kept_and_said(shed_env, tmp_path, capsys):
    import polars as pl

    src = tmp_path / "typed.parquet"
    pl.DataFrame({"instruction": list(range(40)), "output": ["x"] * 40}).write_parquet(src)  # numbers, not text
    assert main(["run", "--source", str(src), "--no-lm-eval"]) == 1
    assert one_error_line(capsys) == (
        f"shed-pipeline: error: raw_dataset: all 40 rows of {src} quarantined: wrong_type 40 (field 'instruction' "
        "is int, expected a string)"
    )
    assert main(["lineage", "--json", "runs"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["rows_quarantined"] == 40 and run["rows_ok"] == 0  # recorded before the run failed


def test_error_lines_carry_no_class_paths_and_no_terminal_escapes(shed_env, tmp_path, capsys):
    folder = tmp_path / "src"
    folder.mkdir()
    evil = folder / "part\x1b[31m\x1b]0;owned\x07.jsonl"
    evil.write_text('{"input": "no instruction", "output": "x"}\n' * 3)
    assert main(["run", "--source", str(folder), "--no-lm-eval"]) == 1
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]
    assert "\x1b" not in captured.err and "\x07" not in captured.err  # neither in the error nor in the progress lines
    assert (
        last.startswith("shed-pipeline: error: raw_dataset: all 3 rows of ")
        and "part\\x1b[31m\\x1b]0;owned\\x07.jsonl quarantined: missing_field 3" in last
    )
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"garbage")
    assert main(["run", "--source", str(bad)]) == 1
    last = one_error_line(capsys)
    assert (
        last.startswith(f"shed-pipeline: error: raw_dataset: {bad}: not a readable Parquet file")
        and "SourceError" not in last
    )


def test_a_relative_file_name_is_not_mistaken_for_a_class_path(shed_env, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.json").write_text('[{"instruction": "a", "output": "b"},')
    assert main(["run", "--source", "broken.json", "--no-lm-eval"]) == 1
    assert one_error_line(capsys).startswith("shed-pipeline: error: raw_dataset: broken.json: not valid JSON (")


def test_benchmark_names_are_checked_before_any_work_and_parents_are_accepted(shed_env, tmp_path, capsys, monkeypatch):
    import dagster as dg

    from shed_pipeline_tests.core.evaluation.test_benchmarks import quiz, write_archive

    monkeypatch.setenv(
        "SHED_BIGBENCH_ARCHIVE",
        str(
            write_archive(
                tmp_path / "bb.tar.gz",
                {"hhh_alignment/harmless": quiz(4), "hhh_alignment/honest": quiz(5), "social_iqa": quiz(6)},
            )
        ),
    )
    assert main(["run", "--benchmarks", "hhh_alignment,goal_step_wikihow"]) == 1
    assert one_error_line(capsys).startswith(
        "shed-pipeline: error: unknown benchmark 'goal_step_wikihow': bigbench has no multiple-choice task of that name"
    )
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []  # failed before any work
    assert (
        main(
            [
                "run",
                "--utility",
                "lm",
                "--estimator",
                "tmc",
                "--set",
                'proxy_shapley_scores.utility.lm.benchmarks=["social_iqx"]',
            ]
        )
        == 1
    )
    assert "did you mean social_iqa" in one_error_line(capsys)
    assert (
        main(["run", "--set", "evaluation_metrics.benchmarks=social_iqa"]) == 1
    )  # text, not a list: Dagster's config check says so
    assert "invalid config" in one_error_line(capsys)
    assert main(["benchmarks", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["tasks"] == {"hhh_alignment/harmless": 4, "hhh_alignment/honest": 5, "social_iqa": 6}
    assert listing["parents"] == {"hhh_alignment": ["hhh_alignment/harmless", "hhh_alignment/honest"]}
    assert main(["benchmarks"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"^hhh_alignment +9 +all 2 subtasks", table, re.M) and re.search(r"^social_iqa +6", table, re.M)


def test_the_instance_the_cli_creates_queues_a_projects_second_run(shed_env, tmp_path, monkeypatch):
    """Behind the lock: Dagster's run queue starts one run per project tag, so a second run of a
    project waits in the queue, not in a run worker."""
    import dagster as dg

    from shed_pipeline.cli import DAGSTER_YAML
    from shed_pipeline.core.project_lock import project_key

    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHED_PIPELINE_HOME")
    from shed_pipeline.cli import ensure_dagster_home
    from shed_pipeline.settings import Settings

    settings = Settings.from_env()
    home = ensure_dagster_home(settings)
    assert (home / "dagster.yaml").read_text() == DAGSTER_YAML
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert limits == [{"key": "shed/project", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    from shed_pipeline.jobs import curation_job

    shed_curation_job = curation_job(settings)
    assert (
        set(shed_curation_job.tags) == {"shed/project"}
        and len(shed_curation_job.tags["shed/project"]) == len(project_key(tmp_path)) == 12
    )


def test_the_cli_the_readme_and_the_registries_list_the_same_strategies(capsys):
    """Every registered strategy is a CLI choice, and the README's tables are the registries' own."""
    from shed_pipeline.cli import all_registries, run_flags, strategies_markdown
    from shed_pipeline.core.estimators import ESTIMATORS
    from shed_pipeline.core.selection import METHODS
    from shed_pipeline.core.utilities import UTILITIES

    run = run_flags()["method"]
    assert tuple(run.choices) == METHODS.names
    for flag, registry in (("utility", UTILITIES), ("estimator", ESTIMATORS)):
        action = run_flags()[flag]
        assert tuple(action.choices) == registry.names
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert strategies_markdown() in readme, (
        "README's strategy tables are stale: paste `shed-pipeline strategies --markdown`"
    )
    assert main(["strategies", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {kind: list(v) for kind, v in listed.items()} == {r.kind: list(r.names) for r in all_registries()}


def test_strategy_flags_and_nested_settings_build_the_run_config():
    from shed_pipeline.cli import CliError, build_parser, run_config_from_args

    def ops(*argv):
        return {
            k: v["config"] for k, v in run_config_from_args(build_parser().parse_args(["run", *argv]))["ops"].items()
        }

    o = ops(
        "--utility",
        "probe",
        "--permutations",
        "4",
        "--lm-model",
        "/m",
        "--set",
        "proxy_shapley_scores.utility.probe.dims=8",
    )
    assert o["proxy_shapley_scores"]["utility"] == {"probe": {"model": "/m", "dims": 8}}
    assert o["proxy_shapley_scores"]["estimator"] == {
        "ts_chains": {"permutations": 4}
    }  # the probe utility's default estimator
    o = ops("--method", "qwcs", "--temperature", "0.5", "--member-order", "ifd", "--dedup", "0.9")
    assert o["curated_subset"]["method"] == {"qwcs": {"temperature": 0.5, "member_order": "ifd"}}
    assert o["curated_subset"]["dedup_threshold"] == 0.9 and o["row_values"]["kinds"] == [
        "knn_shapley",
        "ifd",
    ]  # what the order reads is computed
    o = ops("--method", "qwcs", "--temperature", "0.5", "--set", "curated_subset.method=kcenter")
    assert o["curated_subset"]["method"] == {"kcenter": {}}  # naming another strategy replaces the choice
    o = ops("--method", "ifd", "--row-values", "")
    assert o["row_values"]["kinds"] == ["ifd"]
    o = ops("--method", "qwcs", "--member-order", "source", "--dedup", "0.9", "--dedup-keep", "source")
    assert (
        o["curated_subset"]["method"] == {"qwcs": {"member_order": "source"}} and "row_values" not in o
    )  # SHED's orders read no values
    with pytest.raises(
        CliError, match="unknown member order 'knn_shapely'; choose source, random or a per-row value: knn_shapley, ifd"
    ):
        ops("--member-order", "knn_shapely")


def test_the_default_selection_is_the_same_in_the_cli_and_the_asset_and_a_named_method_is_sheds_own():
    from shed_pipeline.assets.curate import CuratedSubsetConfig
    from shed_pipeline.cli import build_parser, run_config_from_args
    from shed_pipeline.core.selection import DEFAULT_METHOD, DEFAULT_METHOD_SETTINGS, METHODS

    def method(*argv):
        return run_config_from_args(build_parser().parse_args(["run", *argv]))["ops"]["curated_subset"]["config"][
            "method"
        ]

    asset_default = CuratedSubsetConfig().method.model_dump()
    assert (
        method()
        == {asset_default.pop("kind"): {k: asset_default[k] for k in DEFAULT_METHOD_SETTINGS}}
        == {DEFAULT_METHOD: DEFAULT_METHOD_SETTINGS}
    )
    assert {k: v for k, v in asset_default.items() if k not in DEFAULT_METHOD_SETTINGS} == {
        k: v for k, v in METHODS[DEFAULT_METHOD].defaults().items() if k not in DEFAULT_METHOD_SETTINGS
    }
    assert method("--method", DEFAULT_METHOD) == {DEFAULT_METHOD: {}}  # SHED's rule, its own defaults
    assert method("--member-order", "source") == {DEFAULT_METHOD: {**DEFAULT_METHOD_SETTINGS, "member_order": "source"}}
