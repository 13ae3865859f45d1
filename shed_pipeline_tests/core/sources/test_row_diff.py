import polars as pl

from shed_pipeline.core.sources import diff_rows


def frame(rows):
    return pl.DataFrame(rows, schema=["row_id", "source_file", "source_locator"], orient="row")


def test_diff_counts_balance_and_edits_name_their_replacement():
    prev = frame([("a", "f", 1), ("b", "f", 2), ("c", "f", 3), ("d", "g", 1)])
    cur = frame([("a", "f", 1), ("B", "f", 2), ("d", "g", 1), ("e", "h", 1)])
    d = diff_rows(prev, cur)
    assert d.counts() == {"rows_previous": 4, "rows_added": 2, "rows_removed": 2, "rows_unchanged": 2, "rows_edited": 1}
    assert d.rows_previous == d.rows_unchanged + d.rows_removed and cur.height == d.rows_unchanged + d.rows_added
    ch = {r["row_id"]: (r["change"], r["counterpart"]) for r in d.changes.iter_rows(named=True)}
    assert ch == {"B": ("added", "b"), "e": ("added", None), "b": ("removed", "B"), "c": ("removed", None)}


def test_first_snapshot_is_all_added():
    cur = frame([("a", "f", 1), ("b", "f", 2)])
    d = diff_rows(None, cur)
    assert (d.rows_previous, d.rows_added, d.rows_removed, d.rows_edited) == (0, 2, 0, 0)
