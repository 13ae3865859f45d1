"""embeddings: one vector per row (prompt text), cached by (model id, row id)."""

import time

import dagster as dg
import numpy as np
import polars as pl

from shed_pipeline.assets._common import CODE_VERSION, frame_version, gpu_step, upstream_data_changed
from shed_pipeline.core.embedding import CHUNK_ROWS, DEFAULT_MODEL, EmbeddingCache, SentenceTransformerEncoder, embed_missing
from shed_pipeline.resources import ComputeResource, PathsResource


class EmbeddingsConfig(dg.Config):
    model: str = DEFAULT_MODEL  # a packaged model name or a local sentence-transformers folder
    max_seq_length: int = 256  # word pieces, as SHED
    chunk_texts: int = CHUNK_ROWS  # texts per encode call and cache write: an interrupted run loses at most one chunk


@dg.asset(
    group_name="representation",
    code_version=CODE_VERSION,
    kinds={"pytorch", "duckdb"},
    **gpu_step(),
    automation_condition=upstream_data_changed(),
    # Only what is embedded: a million rows' responses and original records are gigabytes.
    ins={"raw_dataset": dg.AssetIn(metadata={"columns": ["row_id", "instruction", "input"]})},
)
def embeddings(context: dg.AssetExecutionContext, config: EmbeddingsConfig, raw_dataset: pl.DataFrame, compute: ComputeResource, paths: PathsResource) -> dg.Output[pl.DataFrame]:
    """Normalised sentence embeddings (all-MiniLM-L6-v2 by default) of each row's prompt, for every
    split: the normalised mean of its instruction's and input's vectors, each distinct text encoded
    once. Rows already embedded by the same model are read from the cache, never re-encoded, so a
    refresh embeds exactly the rows whose id is new; finished chunks survive an interrupted run."""
    t0 = time.perf_counter()
    device, precision = compute.torch_device(), compute.torch_precision()
    encoder = SentenceTransformerEncoder(config.model, device=device, batch_size=compute.batch_size, precision=precision, max_seq_length=config.max_seq_length)
    cache = EmbeddingCache(paths.embedding_cache_db())
    row_ids = raw_dataset["row_id"].to_list()
    context.log.info(f"embedding with {encoder.model_id} on {device} (batch {compute.batch_size}, {precision})")
    stats = embed_missing(row_ids, raw_dataset["instruction"].to_list(), raw_dataset["input"].to_list(), encoder, cache, log=context.log.info, chunk_rows=config.chunk_texts)
    vectors = cache.get(encoder.model_id, row_ids)
    df = pl.DataFrame({"row_id": row_ids, "embedding": vectors}, schema={"row_id": pl.Utf8, "embedding": pl.Array(pl.Float32, vectors.shape[1])})
    meta = {
        "model_id": encoder.model_id,
        "device": device,
        "precision": precision,
        "dim": int(vectors.shape[1]),
        "rows": len(row_ids),
        "rows_embedded": stats["rows_embedded"],
        "rows_reused": stats["rows_reused"],
        "texts_encoded": stats["texts_encoded"],
        "texts_reused": stats["texts_reused"],
        "model_loaded": encoder.loaded,  # False when every row came from the cache
        "rows_per_second": round(stats["rows_per_second"], 1) if stats["rows_per_second"] else None,
        "mean_norm": float(np.linalg.norm(vectors, axis=1).mean()) if len(vectors) else 0.0,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
