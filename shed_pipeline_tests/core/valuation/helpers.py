"""Test data shared by the valuation tests: a small pool with validation rows, one cluster per pool
row, and a valuation of it by name."""

import numpy as np
import polars as pl

from shed_pipeline.core.valuation import validation_rows, value_proxies

WORDS = ["red", "green", "blue", "cyan", "gold", "grey", "pink", "teal"]


def pool(n_pool=8, n_val=5, seed=0):
    """Pool rows (each answering with its colour word) and validation rows; 3-d vectors."""
    rng = np.random.default_rng(seed)
    n = n_pool + n_val
    ids = [f"row{i:02d}" for i in range(n)]
    raw = pl.DataFrame(
        {
            "row_id": ids,
            "instruction": [f"name colour {i % 4}" for i in range(n)],
            "input": [""] * n,
            "output": [f"{WORDS[i % 4]} {WORDS[(i + 1) % 8]}" for i in range(n)],
            "split": ["pool"] * n_pool + ["validation"] * n_val,
        }
    )
    vecs = rng.normal(size=(n, 3))
    emb = pl.DataFrame(
        {"row_id": ids, "embedding": list((vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32))}
    )
    # Every pool row is its own cluster; cluster ids out of order, to check that ranks tie-break by them.
    clusters = pl.DataFrame(
        {
            "cluster_id": [10 + 3 * i for i in range(n_pool)][::-1],
            "proxy_row_id": ids[:n_pool],
            "size": [1] * n_pool,
            "fit_id": ["fit"] * n_pool,
        }
    )
    return raw, emb, clusters


def run(tmp_path, utility="knn", u_settings=None, estimator="knn_exact", e_settings=None, **kw):
    raw, emb, clusters = kw.pop("frames", None) or pool()
    return value_proxies(
        utility,
        u_settings,
        estimator,
        e_settings,
        clusters=clusters,
        raw_dataset=raw,
        embeddings=emb,
        validation=validation_rows(raw, emb),
        evaluation_store=tmp_path / "evals.duckdb",
        **kw,
    )
