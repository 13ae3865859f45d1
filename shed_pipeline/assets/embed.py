"""embeddings: one vector per row (prompt text), from text segments cached by (model id, text hash); optionally split
into row-id hash shards (Dagster partitions) so that shards run as separate runs, on separate GPUs."""

import time

import dagster as dg
import numpy as np
import polars as pl

from shed_pipeline.assets.recording import record_step
from shed_pipeline.assets.versions import CODE_VERSION, frame_version, upstream_data_changed
from shed_pipeline.core.embedding import (
    CHUNK_ROWS,
    DEFAULT_MODEL,
    FLUSH_SECONDS,
    EmbeddingCache,
    SentenceTransformerEncoder,
    compose_rows,
    encode_missing,
)
from shed_pipeline.core.shards import rows_in_shards, shard_keys, split_by_shard
from shed_pipeline.gpu_steps import gpu_step
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource
from shed_pipeline.summaries import EmbeddingsSummary


class EmbeddingsConfig(dg.Config):
    model: str = DEFAULT_MODEL  # a packaged model name or a local sentence-transformers folder
    max_seq_length: int = 256  # word pieces, as SHED
    chunk_texts: int = CHUNK_ROWS  # texts per encode call
    # Encoded texts are saved at least this often (and every 65,536): a killed run loses at most this much encoding.
    save_seconds: float = FLUSH_SECONDS


def shard_partitions(shards: int) -> dg.StaticPartitionsDefinition | None:
    """The embeddings' partitions: one per row-id hash shard; None (not partitioned) for one shard."""
    return dg.StaticPartitionsDefinition(shard_keys(shards)) if shards > 1 else None


def step_shards(context: dg.AssetExecutionContext, shards: int) -> list[str] | None:
    """The shards this step computes, in shard order (Dagster hands a range's keys unordered);
    None when the asset is not sharded."""
    if shards == 1:
        return None
    if not context.has_partition_key and not context.has_partition_key_range:
        raise dg.Failure(
            f"embeddings is split into {shards} shards: run it for shards (a partition or a range, e.g. all of "
            f"{shard_keys(shards)[0]}...{shard_keys(shards)[-1]}), not unpartitioned"
        )
    wanted = set(context.partition_keys)
    return [k for k in shard_keys(shards) if k in wanted]


def embeddings_asset(shards: int = 1) -> dg.AssetsDefinition:
    """The embeddings asset, split into `shards` row-id hash shards (1: one unpartitioned value).
    A backfill of several shards runs one run per shard (each its own pod under the k8s executor);
    a run over a range of shards (the CLI, the schedule, the sensors) computes them in one step."""

    @dg.asset(
        name="embeddings",
        group_name="representation",
        code_version=CODE_VERSION,
        kinds={"pytorch", "duckdb"},
        **gpu_step(),
        automation_condition=upstream_data_changed(),
        partitions_def=shard_partitions(shards),
        backfill_policy=dg.BackfillPolicy.multi_run(1) if shards > 1 else None,
        # Only what is embedded: a million rows' responses and original records are gigabytes.
        ins={"raw_dataset": dg.AssetIn(metadata={"columns": ["row_id", "instruction", "input"]})},
    )
    def embeddings(
        context: dg.AssetExecutionContext,
        config: EmbeddingsConfig,
        raw_dataset: pl.DataFrame,
        compute: ComputeResource,
        paths: PathsResource,
        lineage: LineageResource,
    ) -> dg.Output:
        """Normalised sentence embeddings (all-MiniLM-L6-v2 by default) of each row's prompt, for every
        split: the normalised mean of its instruction's and input's vectors, each distinct text encoded
        once. Rows already embedded by the same model are read from the cache, never re-encoded, so a
        refresh embeds exactly the rows whose id is new; finished chunks survive an interrupted run.
        Sharded: each shard holds the rows whose id hashes to it, and downstream assets read the union."""
        t0 = time.perf_counter()
        keys = step_shards(context, shards)
        rows = raw_dataset if keys is None else rows_in_shards(raw_dataset, keys, shards)
        del raw_dataset
        device, precision = compute.torch_device(), compute.torch_precision()
        encoder = SentenceTransformerEncoder(
            config.model,
            device=device,
            batch_size=compute.batch_size,
            precision=precision,
            max_seq_length=config.max_seq_length,
        )
        cache = EmbeddingCache(paths.embedding_cache_db())
        where = (
            "" if keys is None else f" for shard{'s' if len(keys) > 1 else ''} {', '.join(keys)} ({rows.height} rows)"
        )
        context.log.info(
            f"embedding{where} with {encoder.model_id} on {device} (batch {compute.batch_size}, {precision})"
        )
        segments, stats = encode_missing(
            rows, encoder, cache, log=context.log.info, chunk_rows=config.chunk_texts, save_seconds=config.save_seconds
        )
        row_ids = rows["row_id"].to_list()
        del rows  # the texts: gigabytes at a million rows, not needed to compose the vectors
        vectors = compose_rows(segments, cache, encoder.model_id)
        del segments
        df = pl.DataFrame(
            {"row_id": row_ids, "embedding": vectors},
            schema={"row_id": pl.Utf8, "embedding": pl.Array(pl.Float32, vectors.shape[1])},
        )
        summary = EmbeddingsSummary(
            model_id=encoder.model_id,
            device=device,
            precision=precision,
            dim=int(vectors.shape[1]),
            rows=len(row_ids),
            rows_embedded=stats["rows_embedded"],
            rows_reused=stats["rows_reused"],
            texts_encoded=stats["texts_encoded"],
            texts_reused=stats["texts_reused"],
            model_loaded=encoder.loaded,
            rows_per_second=round(stats["rows_per_second"], 1) if stats["rows_per_second"] else None,
            mean_norm=float(np.linalg.norm(vectors, axis=1).mean()) if len(vectors) else 0.0,
            shards=None if keys is None else ", ".join(keys),
            shard_count=None if keys is None else shards,
        )
        meta = record_step(context, lineage.store(), config, summary, started=t0)
        if keys is None:
            return dg.Output(df, data_version=frame_version(df), metadata=meta)
        parts = split_by_shard(df, keys, shards)
        if len(keys) == 1:
            return dg.Output(parts[keys[0]], data_version=frame_version(parts[keys[0]]), metadata=meta)
        meta["rows_by_shard"] = dg.MetadataValue.json({k: v.height for k, v in parts.items()})
        # One step, several partitions: the IO manager writes each shard's frame to its own place.
        return dg.Output(parts, metadata=meta)

    return embeddings


embeddings = embeddings_asset(1)


def embeddings_of(embeddings: pl.LazyFrame | pl.DataFrame, row_ids: pl.Series) -> pl.DataFrame:
    """The stored vectors (row_id, embedding) of `row_ids` only, in storage order. A lazy input is a
    scan of the stored file: a stage that needs part of a million rows' vectors never holds them all."""
    return embeddings.lazy().filter(pl.col("row_id").is_in(row_ids.implode())).collect()


def with_embeddings(rows: pl.DataFrame, embeddings: pl.LazyFrame | pl.DataFrame, how: str = "left") -> pl.DataFrame:
    """`rows` with their vectors in an `embedding` column, in the rows' order (`how`: "left" keeps a
    row without one, with a null; "inner" drops it). Vectors stored in the rows' own order (unsharded
    embeddings are stored in row order) are attached as they are: no join, no copy."""
    found = embeddings_of(embeddings, rows["row_id"])
    if found.height == rows.height and found["row_id"].equals(rows["row_id"]):
        return rows.with_columns(found["embedding"])
    return rows.join(found, on="row_id", how=how, maintain_order="left")
