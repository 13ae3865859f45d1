"""The validation rows a valuation scores against, frozen between full cluster fits.

Every utility value U(S) is measured on the validation rows, so any change to them (a row added,
deleted, or edited) changes every cached value and forces a re-evaluation of every coalition. Between
full fits the yardstick therefore stays fixed: a snapshot of the validation rows (ids, texts,
vectors) is taken at each fit and used until the next one. Rows that joined, left or changed since
are counted, and take effect at the next fit (the drift rule brings one on once enough rows
changed; the clusters' fit id changes whenever the validation rows did, see assets/cluster.py).
The snapshot is Parquet (no pickle), written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

PIN_META_KEY = "shed_pipeline.validation_pin_fit_id"


@dataclass
class ValidationPin:
    rows: pl.DataFrame  # the snapshot: row_id first, then whatever columns the snapshot was given
    renewed: bool  # taken now (a new fit, or no usable snapshot) rather than read back
    rows_waiting: int  # current validation rows not in the snapshot (used from the next fit)
    rows_gone: int  # snapshot rows no longer in the current validation split


def pinned_validation(path: str | Path, fit_id: str, current: pl.DataFrame) -> ValidationPin:
    """The snapshot for `fit_id`, or a new one of `current` (a frame with a `row_id` column)."""
    import pyarrow.parquet as pq

    path = Path(path)
    pinned = None
    if path.exists():
        try:
            table = pq.read_table(path)
            if (table.schema.metadata or {}).get(PIN_META_KEY.encode(), b"").decode() == fit_id:
                pinned = pl.from_arrow(table)
        except Exception:  # noqa: BLE001 (a damaged snapshot only costs cache hits: take a new one)
            pinned = None
    if pinned is not None and pinned.columns == current.columns:
        now = set(current["row_id"].to_list())
        then = set(pinned["row_id"].to_list())
        return ValidationPin(pinned, False, len(now - then), len(then - now))
    table = current.to_arrow()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), PIN_META_KEY: fit_id})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return ValidationPin(current, True, 0, 0)
