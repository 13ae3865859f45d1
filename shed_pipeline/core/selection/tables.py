"""Frames in and out of selection: the pipeline's tables -> SelectionInputs, a curation -> the
selections and near_duplicates tables, and the curated records files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.progress import silent
from shed_pipeline.core.selection.base import ClusterInfo, SelectionInputs

SELECTIONS_SCHEMA = {
    "row_id": pl.Utf8,
    "cluster_id": pl.Int64,
    "draw_order": pl.Int64,
    "score": pl.Float64,
    "reason": pl.Utf8,
}
NEAR_DUPLICATES_SCHEMA = {"row_id": pl.Utf8, "kept_row_id": pl.Utf8, "cluster_id": pl.Int64, "similarity": pl.Float64}


def selection_inputs(
    pool: pl.DataFrame,
    clusters: pl.DataFrame,
    row_values: pl.DataFrame | None = None,
    *,
    seed: int = 0,
    log: Callable[[str], None] = silent,
    vectors: np.ndarray | None = None,
) -> SelectionInputs:
    """pool: row_id, output, embedding, in source order (or no embedding column and `vectors`, the
    pool's vectors in its order: no second copy of a million vectors); clusters: cluster_id, members
    and (when valued) score; row_values: row_id, kind, value. Only rows of the given clusters are in the pool."""
    ids = [int(c) for c in clusters["cluster_id"].to_list()]
    members = clusters["members"].to_list()
    scores = clusters["score"].to_list() if "score" in clusters.columns else [None] * len(ids)
    cluster_of = {r: c for c, m in zip(ids, members, strict=True) for r in m}
    clustered = pool["row_id"].is_in(pl.Series(list(cluster_of), dtype=pl.Utf8).implode())
    every_row = bool(clustered.all())
    if not every_row:  # filtering copies every column: only when some rows are not clustered
        pool = pool.filter(clustered)
    if pool.height != len(cluster_of):
        raise ValueError(f"{len(cluster_of) - pool.height} clustered rows are not in the pool: re-materialize clusters")
    if vectors is None:
        if pool["embedding"].null_count():
            raise ValueError(f"{pool['embedding'].null_count()} pool rows have no embedding; re-materialize embeddings")
        vectors = np.array(pool["embedding"].to_numpy(), dtype=np.float32).reshape(
            pool.height, -1
        )  # our own copy: normalised in place
    else:
        vectors = np.array(vectors if every_row else vectors[clustered.to_numpy()], dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms > 0, norms, 1.0)
    values: dict[str, dict[str, float]] = {}
    if row_values is not None and row_values.height:
        for (kind,), part in row_values.group_by("kind", maintain_order=True):
            values[str(kind)] = {
                r: v for r, v in zip(part["row_id"].to_list(), part["value"].to_list(), strict=True) if v is not None
            }
    infos = [
        ClusterInfo(c, None if s is None else float(s), tuple(m)) for c, s, m in zip(ids, scores, members, strict=True)
    ]
    return SelectionInputs(
        pool["row_id"].to_list(),
        cluster_of,
        infos,
        pool["output"].to_list(),
        vectors,
        seed=seed,
        row_values=values,
        log=log,
    )


def selections_frame(selections, score_of: dict, method: str, prefix: str = "") -> pl.DataFrame:
    """The lineage table `selections`: one row per selected row, in draw order."""
    return pl.DataFrame(
        {
            "row_id": [s.row_id for s in selections],
            "cluster_id": [s.cluster_id for s in selections],
            "draw_order": [s.draw_order for s in selections],
            "score": [score_of.get(s.cluster_id) for s in selections],
            "reason": [prefix + s.reason for s in selections],
        },
        schema=SELECTIONS_SCHEMA,
    ).with_columns(pl.lit(method).alias("method"))


def near_duplicates_frame(removed) -> pl.DataFrame:
    """The lineage table `near_duplicates`: each removed row, its kept twin, cluster and cosine."""
    return pl.DataFrame(
        [(d.row_id, d.kept_row_id, d.cluster_id, d.similarity) for d in removed],
        schema=NEAR_DUPLICATES_SCHEMA,
        orient="row",
    )


def with_row_ids(records: list[dict], row_ids: list[str], field: str | None) -> list[dict]:
    """The records, each with its row id under `field` (unchanged when `field` is None)."""
    if not field:
        return records
    clash = next((i for i, rec in enumerate(records) if field in rec), None)
    if clash is not None:
        raise ValueError(
            f"row_id_field {field!r}: the curated records already have a field of that name (row {row_ids[clash]}); "
            "pick another name"
        )
    return [{**rec, field: rid} for rec, rid in zip(records, row_ids, strict=True)]


def write_outputs(records: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """curated.jsonl and curated.parquet, in the input's own schema, written atomically."""
    jsonl, parquet = out_dir / "curated.jsonl", out_dir / "curated.parquet"
    with atomic_path(jsonl) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with atomic_path(parquet) as tmp:
        pl.DataFrame(records, infer_schema_length=None).write_parquet(tmp)
    return jsonl, parquet


def subset_problems(ids: list[str], pool_ids: set[str], target: int) -> list[str]:
    """What is wrong with a selection (the subset_is_valid check): duplicates, non-pool rows, size."""
    problems = []
    if len(set(ids)) != len(ids):
        problems.append("duplicate rows")
    if not set(ids) <= pool_ids:
        problems.append(f"{len(set(ids) - pool_ids)} rows not in the pool")
    if len(ids) != target:
        problems.append(f"{len(ids)} rows selected, target {target}")
    return problems
