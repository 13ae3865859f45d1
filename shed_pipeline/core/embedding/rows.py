"""Row vectors from cached segments: the texts a row needs, encoding only those the cache lacks (saved as it goes), and
each row's vector as the normalised mean of its instruction's and input's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import polars as pl

from shed_pipeline.core.embedding.cache import FLUSH_SECONDS, EmbeddingCache, text_hash
from shed_pipeline.core.embedding.encoder import Encoder
from shed_pipeline.core.progress import Progress

# Texts encoded per call (and per cache write): big enough that sentence-transformers' own
# length-sorting keeps padding low, small enough that an interruption loses little work.
CHUNK_ROWS = 512


COMPOSE_ROWS = 65_536  # rows composed per block (float64 in between)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def compose(instruction_vec: np.ndarray, input_vec: np.ndarray | None) -> np.ndarray:
    """A row's vector: the normalised mean of its instruction's and its input's unit vectors."""
    if input_vec is None:
        return instruction_vec
    v = instruction_vec.astype(np.float64) + input_vec.astype(np.float64)
    n = np.linalg.norm(v)
    return (v / n if n > 0 else instruction_vec).astype(np.float32)


def compose_many(segment_vectors: np.ndarray, instruction_index: np.ndarray, input_index: np.ndarray) -> np.ndarray:
    """`compose` for many rows at once: row i is segment instruction_index[i], averaged with
    segment input_index[i] when that is >= 0 (a row without input), float64 in between."""
    out = np.empty((len(instruction_index), segment_vectors.shape[1]), dtype=np.float32)
    for s in range(0, len(out), COMPOSE_ROWS):
        ii, xi = instruction_index[s : s + COMPOSE_ROWS], input_index[s : s + COMPOSE_ROWS]
        v = segment_vectors[ii].astype(np.float64)
        has = xi >= 0
        v[has] += segment_vectors[xi[has]]
        norms = np.sqrt(np.einsum("ij,ij->i", v, v))
        mean = has & (norms > 0)
        v[mean] /= norms[mean, None]
        alone = ~mean  # no input, or vectors that cancel: the instruction's vector as it is
        v[alone] = segment_vectors[ii[alone]]
        out[s : s + len(ii)] = v
    return out


ROWS_SCHEMA = {"row_id": pl.Utf8, "instruction": pl.Utf8, "input": pl.Utf8}


@dataclass
class Segments:
    """Each row's text segments: the hashes of its instruction and of its input (null: none), in row
    order, and the distinct hashes in order of first appearance."""

    rows: pl.DataFrame  # row_id, instruction_hash, input_hash
    distinct: list[str]


def _segments(rows: pl.DataFrame) -> tuple[dict[str, str], Segments]:
    """({text hash: text} of the distinct texts, each row's segments). Texts become Python strings
    once per distinct text: instruction datasets repeat a few instructions over a million rows."""
    distinct = pl.concat([rows["instruction"], rows["input"].filter(rows["input"] != "")]).unique(maintain_order=True)
    texts = distinct.to_list()
    hashes = [text_hash(t) for t in texts]
    lookup = pl.DataFrame({"text": distinct, "hash": hashes}, schema={"text": pl.Utf8, "hash": pl.Utf8})
    del distinct
    per_row = (
        rows.select("row_id", "instruction", "input")
        .join(
            lookup.rename({"text": "instruction", "hash": "instruction_hash"}),
            on="instruction",
            how="left",
            maintain_order="left",
        )
        .join(lookup.rename({"text": "input", "hash": "input_hash"}), on="input", how="left", maintain_order="left")
        .select("row_id", "instruction_hash", "input_hash")
    )
    return dict(zip(hashes, texts, strict=True)), Segments(per_row, hashes)  # distinct texts, distinct hashes


def encode_missing(
    rows: pl.DataFrame,
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    log: Callable[[str], None] = lambda _msg: None,
    chunk_rows: int = CHUNK_ROWS,
    save_seconds: float = FLUSH_SECONDS,
) -> tuple[Segments, dict]:
    """Encode the text segments of `rows` (row_id, instruction, input) that the cache lacks for this
    encoder; returns the rows' segments (for `compose_rows`) and counts.

    Instructions and inputs are encoded as separate segments, each distinct text once: instruction
    datasets repeat their task instructions across many rows (Natural Instructions: 61 texts over
    193k rows), and a long shared instruction would otherwise truncate the input away at 256 word
    pieces. Encoded texts are saved at least every `save_seconds` (and every FLUSH_ROWS texts), so a
    run killed meanwhile resumes without encoding them again; each progress line marks a save.
    """
    start = time.perf_counter()
    texts, segments = _segments(rows)
    todo_seg = cache.missing(encoder.model_id, segments.distinct, kind="segments")
    # Longest first across the whole set: chunks of similar length pad little, and the slowest
    # chunk comes first so the time-left estimate errs on the safe side.
    todo_seg.sort(key=lambda h: (-len(texts[h]), h))
    encode_s = 0.0
    progress = Progress(len(todo_seg), "encoded", log, unit="texts", every_s=0)  # a line per save: each is a checkpoint
    with cache.buffered(
        encoder.model_id, kind="segments", on_flush=progress.advance, flush_seconds=save_seconds
    ) as saved:
        for chunk in _chunks(todo_seg, chunk_rows):
            t0 = time.perf_counter()
            vecs = encoder.encode([texts[h] for h in chunk])
            encode_s += time.perf_counter() - t0
            saved.add(chunk, vecs)
    new = pl.Series(todo_seg, dtype=pl.Utf8).implode()
    rows_embedded = segments.rows.filter(pl.col("instruction_hash").is_in(new) | pl.col("input_hash").is_in(new)).height
    total = time.perf_counter() - start
    return segments, {
        "rows_total": segments.rows.height,
        "rows_embedded": rows_embedded,  # rows with a text not encoded before
        "rows_reused": segments.rows.height - rows_embedded,
        "texts_encoded": len(todo_seg),
        "texts_reused": len(texts) - len(todo_seg),
        "seconds": total,
        "encode_seconds": encode_s,
        "rows_per_second": rows_embedded / total if rows_embedded and total > 0 else None,
    }


def compose_rows(segments: Segments, cache: EmbeddingCache, model_id: str) -> np.ndarray:
    """Every row's vector, in row order, from its segments' cached vectors (KeyError if one is
    missing): a float32 matrix, the segments read once each."""
    if not segments.rows.height:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = cache.get(model_id, segments.distinct, kind="segments")
    index = pl.DataFrame({"hash": segments.distinct, "i": np.arange(len(segments.distinct), dtype=np.int64)})
    ii = segments.rows.join(index, left_on="instruction_hash", right_on="hash", how="left", maintain_order="left")[
        "i"
    ].to_numpy()
    xi = (
        segments.rows.join(index, left_on="input_hash", right_on="hash", how="left", maintain_order="left")["i"]
        .fill_null(-1)
        .to_numpy()
    )
    return compose_many(vectors, ii, xi)


def embed_rows(
    rows: pl.DataFrame,
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    log: Callable[[str], None] = lambda _msg: None,
    chunk_rows: int = CHUNK_ROWS,
    save_seconds: float = FLUSH_SECONDS,
) -> tuple[np.ndarray, dict]:
    """(vectors in row order, counts): `encode_missing`, then `compose_rows`."""
    segments, stats = encode_missing(rows, encoder, cache, log=log, chunk_rows=chunk_rows, save_seconds=save_seconds)
    return compose_rows(segments, cache, encoder.model_id), stats


def embed_texts(
    row_ids: Sequence[str],
    instructions: Sequence[str],
    inputs: Sequence[str],
    encoder: Encoder,
    cache: EmbeddingCache,
    *,
    log: Callable[[str], None] = lambda _msg: None,
    chunk_rows: int = CHUNK_ROWS,
    save_seconds: float = FLUSH_SECONDS,
) -> tuple[np.ndarray, dict]:
    """`embed_rows` for three equal-length sequences."""
    if not (len(row_ids) == len(instructions) == len(inputs)):
        raise ValueError("row_ids, instructions and inputs differ in length")
    rows = pl.DataFrame(
        {"row_id": list(row_ids), "instruction": list(instructions), "input": list(inputs)}, schema=ROWS_SCHEMA
    )
    return embed_rows(rows, encoder, cache, log=log, chunk_rows=chunk_rows, save_seconds=save_seconds)
