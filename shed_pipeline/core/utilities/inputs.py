"""What a utility's builder gets (`UtilityInputs`) and gives back (`BuiltUtility`).

Every utility strategy's `run` is a builder: `build(settings, inputs) -> BuiltUtility`. The built
utility comes with everything the evaluation cache needs: a key naming all that U(S) depends on
besides S (the utility, its settings, the validation data), a description stored next to that key,
and each player's identity (coalitions are keyed by their players' identities).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shed_pipeline.core.progress import Log, silent
from shed_pipeline.core.utilities.base import Utility
from shed_pipeline.core.utilities.cache import fingerprint_arrays

# The columns a utility may read, of the proxies and of the validation rows: texts for a language
# model, vectors for knn. `messages` (a chat row's prompt turns, JSON) only where the rows have it:
# frames and snapshots written before it have none, and their rows are read as Alpaca rows.
ROW_COLUMNS = ["row_id", "instruction", "input", "output", "messages", "embedding"]


@dataclass(frozen=True)
class UtilityInputs:
    proxies: pl.DataFrame  # the players, in player order: ROW_COLUMNS
    validation: pl.DataFrame  # the rows U is measured on: ROW_COLUMNS
    _: KW_ONLY  # the rest by name
    device: str = "cpu"
    cache_dir: Path | None = None  # downloaded models and benchmark items
    log: Log = silent
    feature_cache: Path | None = None  # the DuckDB file of cached LM features (the probe's)
    seed: int = 0
    bigbench_archive: Path | None = None  # a local copy of the benchmark archive (else downloaded)


@dataclass(frozen=True)
class BuiltUtility:
    utility: Utility
    key: str  # the evaluation cache's utility key (cache.utility_key)
    description: dict[str, Any]  # stored with the key: name, settings, validation rows and fingerprint
    identities: list[str] = field(repr=False)  # each player's cache identity, in player order


def first_by_id(df: pl.DataFrame, n: int) -> pl.DataFrame:
    """The first `n` rows by row id (all when n is 0): row ids are content hashes, so this is a
    fixed random sample that changes only where the rows change."""
    return df.sort("row_id").head(n) if n else df


def vectors(frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(frame["embedding"].to_numpy(), dtype=np.float32)


def vector_identities(proxies: pl.DataFrame) -> list[str]:
    """Row id and a digest of its vector: a value cached under other vectors (another embedding
    model) is never reused."""
    return [
        f"{rid}:{fingerprint_arrays(v)[:16]}"
        for rid, v in zip(proxies["row_id"].to_list(), vectors(proxies), strict=True)
    ]


def prompt_identities(proxies: pl.DataFrame) -> list[str]:
    """For a language model's utility: the prompt key (row id, and a chat row's turns: a value also
    depends on how the turns are prompted) and a digest of the vector."""
    from shed_pipeline.core.lm import messages_column, prompt_keys

    keys = prompt_keys(proxies["row_id"].to_list(), messages_column(proxies))
    return [f"{key}:{fingerprint_arrays(v)[:16]}" for key, v in zip(keys, vectors(proxies), strict=True)]


def prompt_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's prompt key (lm.prompt_keys) and the texts its prompt and target are built from;
    `messages` null where the frame has none (a snapshot written before it)."""
    from shed_pipeline.core import lm

    messages = (
        pl.col("messages").cast(pl.Utf8) if "messages" in frame.columns else pl.lit(None, pl.Utf8).alias("messages")
    )
    rows = frame.select("row_id", "instruction", "input", "output", messages)
    return rows.with_columns(pl.Series("key", lm.prompt_keys(rows["row_id"], rows["messages"]), dtype=pl.Utf8))
