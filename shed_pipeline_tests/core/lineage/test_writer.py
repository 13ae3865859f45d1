from shed_pipeline.core.lineage import LineageStore
from shed_pipeline_tests.core.lineage.runs import fill


def test_append_only_a_later_run_leaves_earlier_records_alone(tmp_path):
    store = LineageStore(tmp_path / "l.duckdb")
    fill(store, "run-a", ["a", "b"])
    with store.connect(read_only=True) as con:
        before = con.execute("SELECT * FROM selections WHERE run_id = 'run-a' ORDER BY draw_order").fetchall()
    fill(store, "run-b", ["c"])
    fill(store, "run-b", ["d"])  # a retried step replaces only its own run's records
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT * FROM selections WHERE run_id = 'run-a' ORDER BY draw_order").fetchall() == before
        assert con.execute("SELECT row_id FROM selections WHERE run_id = 'run-b'").fetchall() == [("d",)]
