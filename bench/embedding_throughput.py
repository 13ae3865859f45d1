"""Embedding throughput: the `embeddings` asset's code path against bare sentence-transformers encode.

Usage: python bench/embedding_throughput.py [--rows N] [--batch-size B]
Prints a table. Both sides encode the same distinct text segments with the same model, device and
batch size; the asset's side adds its cache reads/writes and row composition. A third line shows
the naive approach (encoding each row's whole prompt) for scale.
"""

import argparse
import tempfile
import time
from pathlib import Path

from shed_pipeline.core.embedding import EmbeddingCache, SentenceTransformerEncoder, embed_missing
from shed_pipeline.core.natural_instructions import default_cache_dir
from shed_pipeline.core.records import FieldMapping
from shed_pipeline.core.sources import load_source


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-naive", action="store_true")
    a = ap.parse_args()
    loaded = load_source("natural-instructions", FieldMapping(), a.rows, 0, 32_000, 0.1, 0.1, default_cache_dir(), print)
    rows = loaded.rows
    ins, inp = rows["instruction"].to_list(), rows["input"].to_list()
    enc = SentenceTransformerEncoder(device=a.device, batch_size=a.batch_size)
    enc.encode(["warm up"] * 4)
    segments = list(dict.fromkeys([*ins, *[x for x in inp if x]]))
    t0 = time.perf_counter()
    enc.model.encode(segments, batch_size=a.batch_size, normalize_embeddings=True, show_progress_bar=False)
    bare = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "c.duckdb")
        stats = embed_missing(rows["row_id"].to_list(), ins, inp, enc, cache)
    lines = [
        ("bare encode of the distinct segments", len(segments), bare),
        ("embeddings asset path (cache + compose)", len(segments), stats["seconds"]),
    ]
    if not a.skip_naive:
        prompts = [f"{i}\n\n{x}" if x else i for i, x in zip(ins, inp, strict=False)]
        t0 = time.perf_counter()
        enc.model.encode(prompts, batch_size=a.batch_size, normalize_embeddings=True, show_progress_bar=False)
        lines.append(("naive: bare encode of whole prompts", len(prompts), time.perf_counter() - t0))
    print(f"\n{rows.height} Natural Instructions rows, {enc.model_id}, device {a.device}, batch {a.batch_size}\n")
    print(f"{'what':<42} {'texts':>7} {'seconds':>9} {'rows/s':>8}")
    for name, n, sec in lines:
        print(f"{name:<42} {n:>7} {sec:>9.1f} {rows.height / sec:>8.1f}")
    print(f"\nasset throughput / bare encode: {bare / stats['seconds']:.1%} (target >= 90%)")


if __name__ == "__main__":
    main()
