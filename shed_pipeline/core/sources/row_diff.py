"""What changed in a source's rows between two runs' snapshots, by row id (a content hash).

An edited row gets a new id, so an edit is a removal plus an addition; when the added row sits at
the same place (file and line/record number) as the removed one, the two are linked as an edit.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import polars as pl

CHANGE_SCHEMA = {
    "row_id": pl.Utf8,
    "change": pl.Utf8,
    "source_file": pl.Utf8,
    "source_locator": pl.Int64,
    "counterpart": pl.Utf8,
}


@dataclass
class RowDiff:
    changes: pl.DataFrame  # CHANGE_SCHEMA: one record per added or removed row
    _: KW_ONLY
    rows_previous: int
    rows_current: int
    rows_added: int
    rows_removed: int
    rows_unchanged: int
    rows_edited: int  # added rows that replaced a removed row at the same place

    def counts(self) -> dict[str, int]:
        return {
            k: getattr(self, k)
            for k in ("rows_previous", "rows_added", "rows_removed", "rows_unchanged", "rows_edited")
        }


def diff_rows(previous: pl.DataFrame | None, current: pl.DataFrame) -> RowDiff:
    """Both frames have row_id, source_file, source_locator. No previous snapshot: all rows added.
    Counts balance: previous = unchanged + removed, current = unchanged + added."""
    cols = ["row_id", "source_file", "source_locator"]
    cur = current.select(cols)
    prev = previous.select(cols) if previous is not None else cur.clear()
    added = cur.join(prev.select("row_id"), on="row_id", how="anti", maintain_order="left")
    removed = prev.join(cur.select("row_id"), on="row_id", how="anti", maintain_order="left")
    place = ["source_file", "source_locator"]
    pairs = added.join(removed, on=place, how="inner", suffix="_removed").select(
        pl.col("row_id").alias("added_id"), pl.col("row_id_removed").alias("removed_id")
    )
    # One pairing per place (a file may hold duplicate locators only if it was read twice): keep the first.
    pairs = pairs.unique(subset="added_id", keep="first", maintain_order=True).unique(
        subset="removed_id", keep="first", maintain_order=True
    )
    added = added.join(pairs, left_on="row_id", right_on="added_id", how="left", maintain_order="left").rename(
        {"removed_id": "counterpart"}
    )
    removed = removed.join(pairs, left_on="row_id", right_on="removed_id", how="left", maintain_order="left").rename(
        {"added_id": "counterpart"}
    )
    changes = pl.concat(
        [
            added.with_columns(pl.lit("added").alias("change")).select(list(CHANGE_SCHEMA)),
            removed.with_columns(pl.lit("removed").alias("change")).select(list(CHANGE_SCHEMA)),
        ]
    ).cast(CHANGE_SCHEMA)
    unchanged = cur.height - added.height
    return RowDiff(
        changes,
        rows_previous=prev.height,
        rows_current=cur.height,
        rows_added=added.height,
        rows_removed=removed.height,
        rows_unchanged=unchanged,
        rows_edited=pairs.height,
    )
