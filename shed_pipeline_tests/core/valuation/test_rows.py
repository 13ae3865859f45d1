"""core/valuation/rows.py: the proxies' and the validation rows keep the columns a utility reads."""

import polars as pl

from shed_pipeline.core.valuation import proxy_rows, validation_rows
from shed_pipeline_tests.core.valuation.helpers import pool


def test_frames_keep_the_columns_a_utility_reads(tmp_path):
    raw, emb, clusters = pool()
    proxies = proxy_rows(raw, emb, clusters["proxy_row_id"].to_list()[::-1])
    assert (
        proxies.columns == ["row_id", "instruction", "input", "output", "embedding"]
        and proxies["row_id"].to_list() == clusters["proxy_row_id"].to_list()[::-1]
    )
    chat = raw.with_columns(pl.lit(None, pl.Utf8).alias("messages"))
    assert validation_rows(chat, emb).columns == ["row_id", "instruction", "input", "output", "messages", "embedding"]
    assert validation_rows(chat, emb)["row_id"].to_list() == [f"row{i:02d}" for i in range(8, 13)]
