"""What every kind of per-row value gets, and what it returns.

A kind values each pool row on its own (cheap at pool scale, unlike the cluster proxies' Shapley
values): it sees the pool rows and the validation rows (row_id, embedding, and the text columns it
declares in its strategy's `requires["columns"]`, among instruction, input, output and `messages`
where the rows have it) and returns one float per pool row, in pool order. Selection methods order
or weight a cluster's members by these values.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Callable

import polars as pl

from shed_pipeline.core.progress import silent


@dataclass
class RowValueInputs:
    pool: pl.DataFrame  # the rows to value, in the order the values are returned
    validation: pl.DataFrame  # the rows they are valued against (kinds that need them)
    _: KW_ONLY  # the rest by name
    device: str = "cpu"  # for kinds that run a model
    cache_dir: Path | None = None  # where packaged models are unpacked
    feature_cache: Path | None = None  # the embedding-cache DuckDB: per-row model outputs are kept there
    log: Callable[[str], None] = silent
