"""The rows a valuation reads: the players (the clusters' proxies) and the validation rows the
utility is measured on, each with its vector and the columns any utility needs (texts for a language
model, vectors for knn)."""

from __future__ import annotations

import polars as pl

from shed_pipeline.core.utilities.inputs import ROW_COLUMNS


def _columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in ROW_COLUMNS if c != "messages" or c in frame.columns]


def validation_rows(raw_dataset: pl.DataFrame, embeddings: pl.DataFrame) -> pl.DataFrame:
    """The current validation split with its vectors, in row order: what a validation snapshot keeps
    (enough for any utility: texts for a language model, vectors for knn)."""
    val = raw_dataset.filter(pl.col("split") == "validation").join(
        embeddings, on="row_id", how="inner", maintain_order="left"
    )
    return val.select(_columns(val))


def proxy_rows(raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, proxy_ids: list[str]) -> pl.DataFrame:
    """The proxies' rows with their vectors, in the order of `proxy_ids`."""
    wanted = pl.DataFrame({"row_id": proxy_ids}, schema={"row_id": pl.Utf8})
    rows = raw_dataset.join(wanted, on="row_id", how="semi").join(embeddings, on="row_id", how="inner")
    missing = wanted.join(rows, on="row_id", how="anti")
    if missing.height:
        raise ValueError(
            f"{missing.height} cluster proxies (e.g. {missing['row_id'][0]}) have no row or no vector: "
            "re-materialize clusters"
        )
    proxies = wanted.join(rows, on="row_id", how="left", maintain_order="left")
    return proxies.select(_columns(proxies))
