"""Per-row values, cheap at pool scale, by kind: a selection method orders or weights a cluster's
members by them. Adding a kind = its module (declaring STRATEGY) + one line below."""

from __future__ import annotations

import time
from dataclasses import replace
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


def compute_row_values(
    kinds: list[str], settings: Mapping[str, object], inputs: RowValueInputs
) -> tuple[pl.DataFrame, dict[str, dict]]:
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
        frames.append(
            pl.DataFrame(
                {"row_id": inputs.pool["row_id"], "kind": [kind] * len(values), "value": values}, schema=SCHEMA
            )
        )
        finite = values[np.isfinite(values)]
        stats[kind] = {
            "rows": int(len(values)),
            **(
                {"min": float(finite.min()), "median": float(np.median(finite)), "max": float(finite.max())}
                if len(finite)
                else {}
            ),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    return (pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMA)), stats


def kinds_apart(kinds: list[str]) -> list[str]:
    """The kinds among `kinds` that value each row apart (each row's value depends on that row alone
    and is kept in the feature cache): their rows can be split into shards computed on several workers."""
    return [k for k in kinds if k in ROW_VALUES and ROW_VALUES[k].rows_apart]


def compute_shard(
    kinds: list[str], settings: Mapping[str, object], inputs: RowValueInputs, shard: int, shards: int
) -> dict[str, int]:
    """Compute, into the feature cache, the values of the pool rows in row-id shard `shard` (0 ..
    shards-1) under each kind that values rows apart; the final pass (`compute_row_values`) then finds
    them cached. The shards' union is the whole pool: each row belongs to one shard."""
    from shed_pipeline.core.shards import shard_of

    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards} does not exist")
    apart = kinds_apart(kinds)
    if not apart:
        raise ValueError(
            f"none of the row value kinds {', '.join(kinds) or '(none)'} values rows apart: nothing to split into "
            "shards"
        )
    rows = inputs.pool.filter(shard_of(inputs.pool["row_id"], shards) == shard)
    for kind in apart:
        strategy = ROW_VALUES[kind]
        strategy.run(settings.get(kind) or strategy.settings(), replace(inputs, pool=rows))
    return {"shard": shard, "shards": shards, "rows": rows.height}


__all__ = ["ROW_VALUES", "RowValueInputs", "compute_row_values", "compute_shard", "kinds_apart", "text_columns"]
