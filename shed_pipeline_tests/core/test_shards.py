import polars as pl
import pytest

from shed_pipeline.core.shards import (
    MAX_SHARDS,
    in_shard,
    parse_shard_count,
    rows_in_shards,
    shard_keys,
    shard_of,
    split_by_shard,
)
from shed_pipeline.core.sources import row_id_for


def ids(n: int) -> list[str]:
    return [row_id_for(f"instruction {i}", "", f"output {i}") for i in range(n)]


def test_shard_keys_are_zero_padded_and_counts_are_checked():
    assert shard_keys(1) == ["0"]
    assert shard_keys(3) == ["0", "1", "2"]
    assert (
        shard_keys(12)[:3] == ["00", "01", "02"]
        and shard_keys(12)[-1] == "11"
        and sorted(shard_keys(12)) == shard_keys(12)
    )
    for bad in (0, -1, MAX_SHARDS + 1, 2.5, True):
        with pytest.raises(ValueError, match="whole number from 1"):
            shard_keys(bad)


def test_the_shard_count_a_user_writes_is_read_or_refused_in_one_line():
    assert parse_shard_count(None) == 1 and parse_shard_count("  ") == 1 and parse_shard_count(" 8 ") == 8
    for bad in ("0", "two", "1.5", str(MAX_SHARDS + 1)):
        with pytest.raises(
            ValueError,
            match=(
                r"^SHED_EMBEDDING_SHARDS='[^']*': give a whole number of embedding shards from 1 to 1024 \(1 = not "
                r"sharded\)$"
            ),
        ):
            parse_shard_count(bad)


def test_a_row_s_shard_is_the_first_32_bits_of_its_id_modulo_n_and_the_shards_partition_the_rows():
    rows = ids(5000)
    for n in (1, 2, 7, 64):
        got = shard_of(rows, n).to_list()
        assert got == [int(r[:8], 16) % n for r in rows]  # the oracle, row by row
        frame = pl.DataFrame({"row_id": rows, "x": range(len(rows))})
        parts = split_by_shard(frame, shard_keys(n), n)
        assert sum(p.height for p in parts.values()) == frame.height  # every row in exactly one shard
        assert pl.concat(parts.values()).sort("x").equals(frame)
        for k, part in parts.items():
            assert part["x"].is_sorted()  # frame order within a shard
            assert rows_in_shards(frame, [k], n).equals(part)
    counts = shard_of(rows, 8).value_counts()["count"].to_list()
    assert (
        len(counts) == 8 and max(counts) < 1.15 * 5000 / 8 and min(counts) > 0.85 * 5000 / 8
    )  # uniform hashes balance


def test_adding_rows_moves_no_existing_row_to_another_shard():
    old, new = ids(300), ids(400)
    assert shard_of(new, 5).to_list()[:300] == shard_of(old, 5).to_list()


def test_rows_of_other_shards_and_ids_that_are_not_hashes_are_refused():
    frame = pl.DataFrame({"row_id": ids(50)})
    with pytest.raises(ValueError, match=r"rows of shards \['\d'\] given to shards \['0'\]"):
        split_by_shard(frame, ["0"], 2)
    with pytest.raises(ValueError, match="row id 'not-a-hash' is not a hex content hash"):
        shard_of(["abcdef0123", "not-a-hash"], 4)


def test_the_lazy_shard_filter_keeps_exactly_the_rows_of_shard_of():
    frame = pl.DataFrame({"row_id": ids(500)})
    for n in (1, 3, 7):
        parts = [frame.lazy().filter(in_shard(s, n)).collect()["row_id"].to_list() for s in range(n)]
        assert parts == [frame.filter(shard_of(frame["row_id"], n) == s)["row_id"].to_list() for s in range(n)]
        assert sum(len(p) for p in parts) == frame.height
