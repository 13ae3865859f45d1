import hashlib

import numpy as np
import polars as pl

from shed_pipeline.assets import versions


def _whole_frame_version(df: pl.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(str(df.schema).encode())
    h.update(df.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()[:24]


def _frame(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(n)],
            "note": [None if i % 5 == 0 else "x" * (i % 3) for i in range(n)],
            "embedding": rng.standard_normal((n, 4)).astype(np.float32),
        },
        schema={"row_id": pl.Utf8, "note": pl.Utf8, "embedding": pl.Array(pl.Float32, 4)},
    )


def test_frame_version_in_blocks_equals_the_whole_frame_hash(monkeypatch):
    monkeypatch.setattr(versions, "FRAME_HASH_ROWS", 7)  # 50 rows: seven full blocks and a partial one
    df = _frame(50)
    assert versions.frame_version(df).value == _whole_frame_version(df)
    changed = df.with_columns(
        pl.when(pl.col("row_id") == "r49").then(pl.lit("y")).otherwise(pl.col("note")).alias("note")
    )
    assert versions.frame_version(changed).value != versions.frame_version(df).value
    empty = df.head(0)
    assert versions.frame_version(empty).value == hashlib.sha256(str(empty.schema).encode()).hexdigest()[:24]
