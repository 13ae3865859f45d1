"""core/valuation/validation_snapshot.py: the validation rows frozen between cluster fits, and renewed
when keeping them would be wrong."""

import polars as pl

from shed_pipeline.core.valuation import pinned_validation


def frame(ids, suffix=""):
    return pl.DataFrame(
        {"row_id": ids, "output": [f"out-{i}{suffix}" for i in ids], "embedding": [[float(len(i)), 1.0] for i in ids]},
        schema={"row_id": pl.Utf8, "output": pl.Utf8, "embedding": pl.Array(pl.Float32, 2)},
    )


def test_validation_rows_stay_frozen_until_the_next_fit(tmp_path):
    pin = tmp_path / "pin.parquet"
    first = pinned_validation(pin, "fit1", frame(["b", "a", "c"]))
    assert first.renewed and first.rows["row_id"].to_list() == ["b", "a", "c"]
    # Same fit: a new row waits, a deleted row stays in the yardstick, all counted.
    same = pinned_validation(pin, "fit1", frame(["b", "d"]))
    assert (
        not same.renewed and same.rows.equals(frame(["b", "a", "c"])) and (same.rows_waiting, same.rows_gone) == (1, 2)
    )
    nxt = pinned_validation(pin, "fit2", frame(["b", "d"]))
    assert nxt.renewed and nxt.rows.equals(frame(["b", "d"]))
    # Another column layout (another utility's needs) or a damaged file: a new snapshot.
    assert pinned_validation(pin, "fit2", frame(["b", "d"]).drop("embedding")).renewed
    pin.write_bytes(b"damaged")
    again = pinned_validation(pin, "fit2", frame(["x"]))
    assert again.renewed and again.rows["row_id"].to_list() == ["x"]


def test_snapshot_is_renewed_when_keeping_it_would_be_wrong(tmp_path):
    pin = tmp_path / "pin.parquet"
    pinned_validation(pin, "fit1", frame(["a", "b", "c"]))
    # A snapshot row now in the pool could be valued against itself: renew.
    moved = pinned_validation(pin, "fit1", frame(["a", "b"]), other_split_ids=["c", "zz"])
    assert (
        moved.renewed
        and moved.reason == "1 snapshot rows moved to another split"
        and moved.rows["row_id"].to_list() == ["a", "b"]
    )
    # Same ids, other vectors (another embedding model): renew.
    changed = frame(["a", "b"]).with_columns(
        pl.col("embedding").arr.eval(pl.element() * 2).cast(pl.Array(pl.Float32, 2))
    )
    again = pinned_validation(pin, "fit1", changed)
    assert again.renewed and "changed in place" in again.reason and again.rows.equals(changed)
    kept = pinned_validation(pin, "fit1", changed.head(1))
    assert not kept.renewed and kept.rows.equals(changed)
    live = pinned_validation(pin, "fit1", changed.head(1), freeze=False)
    assert live.renewed and "not frozen" in live.reason and live.rows.equals(changed.head(1))


def test_a_later_step_of_the_run_that_took_the_snapshot_reads_it_as_taken_by_that_run(tmp_path):
    pin = tmp_path / "pin.parquet"
    taken = pinned_validation(pin, "fit1", frame(["a", "b"]), run_id="run-1")
    assert taken.renewed and taken.taken_in("run-1") and taken.reason == "first snapshot"
    # The value step after the shares: the same snapshot, reported as taken by its run, with the reason.
    later = pinned_validation(pin, "fit1", frame(["a", "b"]), run_id="run-1")
    assert (
        not later.renewed
        and later.taken_in("run-1")
        and later.reason == "first snapshot"
        and later.rows.equals(taken.rows)
    )
    # The next run keeps it.
    nxt = pinned_validation(pin, "fit1", frame(["a", "b"]), run_id="run-2")
    assert not nxt.taken_in("run-2") and nxt.reason == "kept since the last cluster fit" and nxt.taken_by_run == "run-1"
