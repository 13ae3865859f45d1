"""Embedding throughput: the `embeddings` asset's code path against bare sentence-transformers encode.

Usage: python bench/embedding_throughput.py [--rows N] [--batch-size B] [--precisions fp32,auto]
Prints a table. Per number format, a bare encode of the distinct text segments and the asset's path
(the same encode plus its cache reads/writes and row composition), with the mean and smallest cosine
of each row's vector to the first format's. One line shows the naive approach (encoding each row's
whole prompt) for scale.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from shed_pipeline.core.embedding import EmbeddingCache, SentenceTransformerEncoder, auto_precision, embed_texts
from shed_pipeline.core.sources import FieldMapping, load_source
from shed_pipeline.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--precisions",
        default="fp32,auto",
        help="number formats to compare, the first the reference for cosines (auto: what the pipeline picks here)",
    )
    ap.add_argument("--skip-naive", action="store_true")
    a = ap.parse_args()
    settings = Settings.from_env()
    loaded = load_source(
        "natural-instructions",
        FieldMapping(),
        rows=a.rows,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=settings.downloads,
        log=print,
        bigbench_archive=settings.bigbench_archive,
    )
    rows = loaded.rows
    ins, inp = rows["instruction"].to_list(), rows["input"].to_list()
    segments = list(dict.fromkeys([*ins, *[x for x in inp if x]]))
    lines, reference = [], None
    for name in a.precisions.split(","):
        precision = auto_precision(a.device) if name == "auto" else name
        enc = SentenceTransformerEncoder(device=a.device, batch_size=a.batch_size, precision=precision)
        enc.encode(["warm up"] * 4)
        t0 = time.perf_counter()
        enc.encode(segments)
        bare = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            cache = EmbeddingCache(Path(tmp) / "c.duckdb")
            vectors, stats = embed_texts(rows["row_id"].to_list(), ins, inp, enc, cache)
        cosine = (
            ""
            if reference is None
            else f"{(vectors * reference).sum(1).mean():.5f} (min {(vectors * reference).sum(1).min():.4f})"
        )
        reference = vectors if reference is None else reference
        label = f"{precision}{' (auto)' if name == 'auto' else ''}"
        lines.append((f"{label}: bare encode of the distinct segments", len(segments), bare, ""))
        lines.append((f"{label}: embeddings asset path (cache + compose)", len(segments), stats["seconds"], cosine))
        if not a.skip_naive and name == a.precisions.split(",")[0]:
            prompts = [f"{i}\n\n{x}" if x else i for i, x in zip(ins, inp, strict=False)]
            t0 = time.perf_counter()
            enc.encode(prompts)
            lines.append((f"{label}: naive, whole prompts", len(prompts), time.perf_counter() - t0, ""))
    print(
        f"\n{rows.height} Natural Instructions rows, all-MiniLM-L6-v2, device {a.device}, batch {a.batch_size}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n"
    )
    print(f"{'what':<52} {'texts':>7} {'seconds':>9} {'rows/s':>8}  cosine to {a.precisions.split(',')[0]}")
    for name, n, sec, cos in lines:
        print(f"{name:<52} {n:>7} {sec:>9.1f} {rows.height / sec:>8.1f}  {cos}")


if __name__ == "__main__":
    main()
