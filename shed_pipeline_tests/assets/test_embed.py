import numpy as np
import polars as pl
import pytest

from shed_pipeline.assets.embed import embeddings_of, with_embeddings


def _stored(ids: list[str], path) -> pl.LazyFrame:
    vectors = np.arange(len(ids) * 3, dtype=np.float32).reshape(len(ids), 3)
    pl.DataFrame(
        {"row_id": ids, "embedding": vectors}, schema={"row_id": pl.Utf8, "embedding": pl.Array(pl.Float32, 3)}
    ).write_parquet(path)
    return pl.scan_parquet(path)


def _oracle(rows: pl.DataFrame, stored: pl.LazyFrame, how: str) -> pl.DataFrame:
    return rows.join(stored.collect(), on="row_id", how=how, maintain_order="left")


@pytest.mark.parametrize("how", ["left", "inner"])
def test_with_embeddings_equals_a_join_on_the_whole_frame(tmp_path, how):
    stored = _stored([f"r{i}" for i in range(10)], tmp_path / "e.parquet")
    in_order = pl.DataFrame({"row_id": ["r1", "r4", "r5", "r9"], "split": ["pool"] * 4})
    shuffled = pl.DataFrame({"row_id": ["r9", "r1", "r5"], "split": ["pool"] * 3})
    with_missing = pl.DataFrame({"row_id": ["r2", "missing", "r3"], "split": ["pool"] * 3})
    for rows in (in_order, shuffled, with_missing, in_order.head(0)):
        got = with_embeddings(rows, stored, how=how)
        assert got.equals(_oracle(rows, stored, how)), rows
        assert with_embeddings(rows, stored.collect(), how=how).equals(got)  # an in-memory frame works the same
    assert with_embeddings(with_missing, stored)["embedding"].null_count() == 1
    assert with_embeddings(with_missing, stored, how="inner")["row_id"].to_list() == ["r2", "r3"]


def test_embeddings_of_reads_only_the_rows_asked_for(tmp_path):
    stored = _stored([f"r{i}" for i in range(10)], tmp_path / "e.parquet")
    got = embeddings_of(stored, pl.Series(["r7", "r2", "nope"]))
    assert got["row_id"].to_list() == ["r2", "r7"]  # storage order
    assert got["embedding"].to_list() == [[6.0, 7.0, 8.0], [21.0, 22.0, 23.0]]
