"""K-means: shed_pipeline's k-means against scikit-learn's KMeans (k-means++, every row) and faiss's own
Kmeans (random init), time and inertia (lower is better; compare at equal inertia).

Usage: python bench/kmeans.py [--embeddings PATH] [--k K ...] [--seeds N]
With --embeddings (the `embeddings` asset's Parquet, e.g. .shed_pipeline/assets/embeddings.parquet
after a run) it clusters real vectors; otherwise 8,000 x 384 synthetic unit vectors around 60 centres.
"""

import argparse
import time

import faiss
import numpy as np
import polars as pl
from sklearn.cluster import KMeans

from shed_pipeline.core.clustering import kmeans


def data(path: str | None) -> tuple[np.ndarray, str]:
    if path:
        return pl.read_parquet(path)["embedding"].to_numpy().astype(np.float32), path
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 384))
    x = centres[rng.integers(60, size=8000)] + rng.normal(scale=0.8, size=(8000, 384))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), "synthetic 8000x384"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embeddings")
    ap.add_argument("--k", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    x, name = data(a.embeddings)
    print(f"\n{name}: {x.shape[0]} x {x.shape[1]}, device {a.device}, {a.seeds} seeds each\n")
    print(f"{'k':>5} {'impl':<22} {'seconds':>8} {'inertia':>12} {'iters':>6}")
    for k in a.k:
        for impl in ("shed_pipeline", "sklearn (n_init=1)", "faiss (random init)"):
            secs, inert, iters = [], [], []
            for s in range(a.seeds):
                t0 = time.perf_counter()
                if impl == "shed_pipeline":
                    r = kmeans(x, k, seed=s, device=a.device)
                    inert.append(r.inertia)
                    iters.append(r.n_iter)
                elif impl.startswith("sklearn"):
                    r = KMeans(k, n_init=1, random_state=s).fit(x)
                    inert.append(r.inertia_)
                    iters.append(r.n_iter_)
                else:
                    km = faiss.Kmeans(x.shape[1], k, niter=100, seed=s, max_points_per_centroid=len(x))
                    km.train(x)
                    inert.append(float(km.index.search(x, 1)[0].sum()))
                    iters.append(100)
                secs.append(time.perf_counter() - t0)
            print(f"{k:>5} {impl:<22} {np.mean(secs):>8.2f} {np.mean(inert):>12.2f} {np.mean(iters):>6.1f}")


if __name__ == "__main__":
    main()
