"""Per-row values, cheap at pool scale, by kind: a selection method orders or weights a cluster's
members by them. Adding a kind = its module (declaring STRATEGY) + one line below."""

from __future__ import annotations

import time
from typing import Mapping

import numpy as np
import polars as pl

from shed_pipeline.core.row_values import ifd, knn_shapley
from shed_pipeline.core.row_values.base import RowValueInputs
from shed_pipeline.core.strategies import Registry

ROW_VALUES = Registry("row value", [knn_shapley.STRATEGY, ifd.STRATEGY])

SCHEMA = {"row_id": pl.Utf8, "kind": pl.Utf8, "value": pl.Float64}


def text_columns(kinds: list[str]) -> list[str]:
    """The text columns the given kinds read (their `requires["columns"]`), in a fixed order."""
    wanted = {c for kind in kinds for c in ROW_VALUES[kind].requires.get("columns", ())}
    return [c for c in ("instruction", "input", "output", "messages") if c in wanted]


def compute_row_values(kinds: list[str], settings: Mapping[str, object], inputs: RowValueInputs) -> tuple[pl.DataFrame, dict[str, dict]]:
    """The long frame (row_id, kind, value) of every pool row under each kind, kinds in the given
    order and rows in pool order; and per kind its rows, min / median / max and seconds.
    `settings`: each kind's settings object (missing: its defaults)."""
    unknown = [k for k in kinds if k not in ROW_VALUES]
    if unknown:
        ROW_VALUES[unknown[0]]  # raises, listing the kinds that exist
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"row value kinds listed twice: {', '.join(kinds)}")
    frames, stats = [], {}
    for kind in kinds:
        strategy = ROW_VALUES[kind]
        t0 = time.perf_counter()
        values = np.asarray(strategy.run(settings.get(kind) or strategy.settings(), inputs), dtype=np.float64)
        if len(values) != inputs.pool.height:
            raise RuntimeError(f"row value {kind} returned {len(values)} values for {inputs.pool.height} rows")
        frames.append(pl.DataFrame({"row_id": inputs.pool["row_id"], "kind": [kind] * len(values), "value": values}, schema=SCHEMA))
        finite = values[np.isfinite(values)]
        stats[kind] = {
            "rows": int(len(values)),
            **({"min": float(finite.min()), "median": float(np.median(finite)), "max": float(finite.max())} if len(finite) else {}),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    return (pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMA)), stats


__all__ = ["ROW_VALUES", "RowValueInputs", "compute_row_values", "text_columns"]
