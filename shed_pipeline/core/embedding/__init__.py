"""Sentence embeddings with a persistent cache of text segments keyed by (model id, text hash).

A row's vector is the normalised mean of its instruction's and its input's vectors. A text is never
encoded twice by the same model: `encode_missing` encodes only the distinct texts the cache lacks
and saves them as it goes (an interrupted run keeps what it finished), and `compose_rows` builds
every row's vector from the cached segments.

What is embedded is the prompt (instruction and input), never the output: SHED embeds the whole
record, but a validation row's neighbours must be found without seeing its reference answer (the
kNN utility scores answers separately).
"""

from shed_pipeline.core.embedding.cache import (
    FLUSH_ROWS,
    FLUSH_SECONDS,
    GET_ROWS,
    BufferedWrites,
    EmbeddingCache,
    text_hash,
)
from shed_pipeline.core.embedding.encoder import (
    DEFAULT_MODEL,
    PRECISIONS,
    Encoder,
    SentenceTransformerEncoder,
    auto_precision,
    cpu_flags,
    resolve_model_path,
)
from shed_pipeline.core.embedding.rows import (
    CHUNK_ROWS,
    COMPOSE_ROWS,
    ROWS_SCHEMA,
    Segments,
    compose,
    compose_many,
    compose_rows,
    embed_rows,
    embed_texts,
    encode_missing,
)

__all__ = [
    "BufferedWrites",
    "CHUNK_ROWS",
    "COMPOSE_ROWS",
    "DEFAULT_MODEL",
    "EmbeddingCache",
    "Encoder",
    "FLUSH_ROWS",
    "FLUSH_SECONDS",
    "GET_ROWS",
    "PRECISIONS",
    "ROWS_SCHEMA",
    "Segments",
    "SentenceTransformerEncoder",
    "auto_precision",
    "compose",
    "compose_many",
    "compose_rows",
    "cpu_flags",
    "embed_rows",
    "embed_texts",
    "encode_missing",
    "resolve_model_path",
    "text_hash",
]
