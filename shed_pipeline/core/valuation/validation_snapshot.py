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
from typing import Iterable

import polars as pl

from shed_pipeline.core.files import atomic_path

PIN_META_KEY = "shed_pipeline.validation_pin_fit_id"
PIN_RUN_KEY = "shed_pipeline.validation_pin_run_id"  # the run that took the snapshot, and why
PIN_REASON_KEY = "shed_pipeline.validation_pin_reason"


@dataclass(kw_only=True)
class ValidationPin:
    rows: pl.DataFrame  # the snapshot: row_id first, then whatever columns the snapshot was given
    renewed: bool  # taken now rather than read back
    reason: str  # why it was taken now, or why it was kept
    rows_waiting: int  # current validation rows not in the snapshot (used from the next fit)
    rows_gone: int  # snapshot rows no longer in the current validation split
    taken_by_run: str | None = None  # the run that took the snapshot (None: not recorded)

    def taken_in(self, run_id: str) -> bool:
        """Whether `run_id` took this snapshot (now, or in an earlier step of the same run)."""
        return self.renewed or (run_id is not None and self.taken_by_run == run_id)


def pinned_validation(
    path: str | Path,
    fit_id: str,
    current: pl.DataFrame,
    *,
    other_split_ids: Iterable[str] = (),
    freeze: bool = True,
    run_id: str | None = None,
) -> ValidationPin:
    """The snapshot for `fit_id`, or a new one of `current` (a frame with a `row_id` column).

    A new snapshot is taken when the fit changed, when `freeze` is off, or when keeping the old one
    would be wrong: one of its rows is now in another split (`other_split_ids`: it could be valued
    against itself), or a row in both differs (its vector changed: another embedding model). The
    snapshot records `run_id` and the reason, so a later step of the same run reads it back as taken
    by its run."""
    import pyarrow.parquet as pq

    path = Path(path)
    pinned, taken_by, taken_reason = None, None, ""
    reason = "first snapshot" if not path.exists() else "a new cluster fit"
    if not freeze:
        reason = "validation rows are not frozen (freeze_validation: false)"
    elif path.exists():
        try:
            table = pq.read_table(path)
            meta = {
                k.decode(): v.decode()
                for k, v in (table.schema.metadata or {}).items()
                if k.decode().startswith("shed_pipeline.")
            }
            if meta.get(PIN_META_KEY) == fit_id:
                pinned, taken_by, taken_reason = (
                    pl.from_arrow(table),
                    meta.get(PIN_RUN_KEY),
                    meta.get(PIN_REASON_KEY, ""),
                )
        except Exception:  # noqa: BLE001 (a damaged snapshot only costs cache hits: take a new one)
            reason = "the saved snapshot could not be read"
    if pinned is not None and pinned.columns != current.columns:
        pinned, reason = None, "the snapshot holds other columns"
    if pinned is not None:
        then = set(pinned["row_id"].to_list())
        moved = then & set(other_split_ids)
        common = current.filter(pl.col("row_id").is_in(list(then)))
        if moved:
            pinned, reason = None, f"{len(moved)} snapshot rows moved to another split"
        elif not common.sort("row_id").equals(
            pinned.filter(pl.col("row_id").is_in(common["row_id"].to_list())).sort("row_id")
        ):
            pinned, reason = None, "snapshot rows changed in place (another embedding model?)"
    if pinned is not None:
        now = set(current["row_id"].to_list())
        kept = taken_reason if run_id is not None and taken_by == run_id else "kept since the last cluster fit"
        return ValidationPin(
            rows=pinned,
            renewed=False,
            reason=kept,
            rows_waiting=len(now - then),
            rows_gone=len(then - now),
            taken_by_run=taken_by,
        )
    table = current.to_arrow()
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), PIN_META_KEY: fit_id, PIN_RUN_KEY: run_id or "", PIN_REASON_KEY: reason}
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return ValidationPin(rows=current, renewed=True, reason=reason, rows_waiting=0, rows_gone=0, taken_by_run=run_id)
