import polars as pl
import pytest

from shed_pipeline.core.lineage import LineageError, LineageStore, RemovedRow, RowExplanation
from shed_pipeline_tests.core.lineage.runs import fill


def test_runs_why_and_diff(tmp_path):
    store = LineageStore(tmp_path / "l.duckdb")
    fill(store, "run-a", ["a", "b"])
    fill(store, "run-b", ["a", "c"])
    runs = store.runs()
    assert [r.run_id for r in runs] == ["run-a", "run-b"]
    assert runs[0].rows_ok == 5 and runs[0].rows_quarantined == 1 and runs[0].selected == 2
    w = store.why("a", "run-a")
    assert (
        w["selected"] and w["cluster_id"] == 0 and w["proxy_row_id"] == "a" and w["is_proxy"] and w["draw_order"] == 0
    )
    assert w["reason"] == "qocs rule for a" and w["cluster_rank"] == 1 and w["clusters_total"] == 2
    w = store.why("d")  # latest run by default
    assert w["run_id"] == "run-b" and not w["selected"] and w["cluster_rank"] == 2 and "ranked 2 of 2" in w["reason"]
    assert store.why("v")["status"] == "held out (validation split)"
    q = store.why("q")
    assert q["status"] == "quarantined" and q["reason"] == "duplicate"
    d = store.diff("run-a", "run-b")
    assert d.kept == 1 and [x.row_id for x in d.added] == ["c"]
    assert d.removed == (RemovedRow(row_id="b", status_in_b="not selected", reason=d.removed[0].reason),)
    assert d.as_dict()["removed"] == [{"row_id": "b", "status_in_b": "not selected", "reason": d.removed[0].reason}]


def test_ids_with_sql_characters_are_safe(tmp_path):
    store = LineageStore(tmp_path / "l.duckdb")
    fill(store, "run'; DROP TABLE runs; --", ["a"], pool=("a", "b'x", "c", "d"))
    assert store.why("b'x")["status"] == "not selected"
    assert len(store.runs()) == 1


def test_clear_errors(tmp_path):
    with pytest.raises(LineageError, match="no lineage database"):
        LineageStore(tmp_path / "missing.duckdb").runs()
    store = LineageStore(tmp_path / "l.duckdb")
    fill(store, "run-a", ["a"])
    fill(store, "run-b", ["a"])
    with pytest.raises(LineageError, match="no run 'zzz'"):
        store.why("a", "zzz")
    with pytest.raises(LineageError, match="ambiguous"):
        store.why("a", "run-")
    with pytest.raises(LineageError, match="appears in no run"):
        store.why("nope")
    with pytest.raises(ValueError):
        store.write_table("runs; drop", "r", pl.DataFrame({"x": [1]}))


def test_prefixes_match_literally_not_as_like_patterns(tmp_path):
    """`%` and `_` in a prefix are characters, not wildcards: `why %` is no row, `run_` is not `runX`."""
    store = LineageStore(tmp_path / "l.duckdb")
    fill(store, "runXa", ["a"], pool=("a", "b", "c_1", "cX2"))
    fill(store, "run_b", ["a"], pool=("a", "b", "c_1", "cX2"))
    with pytest.raises(LineageError, match="appears in no run"):
        store.why("%")
    assert store.why("c_")["row_id"] == "c_1"  # as a LIKE pattern, c_ matched cX2 too: ambiguous
    assert store.why("a", "run_")["run_id"] == "run_b"
    with pytest.raises(LineageError, match="no run '%'"):
        store.why("a", "%")
    assert store.diff("run_", "runX").run_a == "run_b"


def test_why_explains_near_duplicates_and_shows_row_values_under_any_method(tmp_path):
    store = LineageStore(tmp_path / "l.duckdb")
    fill(store, "run-a", ["a", "c"])
    store.write_table(
        "near_duplicates",
        "run-a",
        pl.DataFrame({"row_id": ["d"], "kept_row_id": ["c"], "cluster_id": [1], "similarity": [0.987654]}),
    )
    store.write_table(
        "row_values",
        "run-a",
        pl.DataFrame({"row_id": ["b", "b", "a"], "kind": ["knn_shapley", "ifd", "ifd"], "value": [0.25, 0.5, 0.75]}),
    )
    w = store.why("d", "run-a")
    assert (
        w["status"] == "near duplicate"
        and not w["selected"]
        and w["kept_row_id"] == "c"
        and w["similarity"] == 0.987654
    )
    assert (
        w["reason"] == "removed before selection as a near-duplicate of row c (cosine similarity 0.9877 in cluster 1)"
    )
    w = store.why("b", "run-a")
    assert w["status"] == "not selected" and w["row_values"] == {"ifd": 0.5, "knn_shapley": 0.25}
    assert w["reason"].endswith("; its row values: ifd 0.5, knn_shapley 0.25")
    w = store.why("a", "run-a")
    assert w["selected"] and w["reason"] == "qocs rule for a" and w["row_values"] == {"ifd": 0.75}
    d = store.diff("run-a", "run-a")
    assert d.method_a == d.method_b == "qocs"


def test_explain_is_typed_and_why_is_its_dict_with_the_keys_in_the_cli_order(tmp_path):
    store = LineageStore(tmp_path / "l.duckdb")
    fill(store, "run-a", ["a", "b"])
    e = store.explain("a", "run-a")
    assert isinstance(e, RowExplanation) and e.selected and e.is_proxy and e.cluster.rank == 1 and e.draw_order == 0
    assert store.why("a", "run-a") == e.as_dict()
    assert list(e.as_dict()) == [
        "row_id", "run_id", "split", "task", "source_file", "source_locator", "cluster_id", "proxy_row_id",
        "is_proxy", "cluster_size", "cluster_score", "cluster_rank", "clusters_total", "selected", "status",
        "method", "draw_order", "reason",
    ]  # fmt: skip
    assert list(store.why("q")) == [
        "row_id", "run_id", "selected", "status", "reason", "detail", "source_file", "source_locator"
    ]  # fmt: skip
    held = store.explain("v")
    assert held.status == "held out (validation split)" and held.place.split == "validation" and held.cluster is None
    assert list(held.as_dict()) == [
        "row_id", "run_id", "split", "task", "source_file", "source_locator", "selected", "status", "reason"
    ]  # fmt: skip
