"""The clustering's state between runs: every cluster's anchor, centroid, proxy and members, and how
the anchors were fitted (FitInfo); saved as one Parquet file with the fit info in its metadata."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from shed_pipeline.core.files import atomic_path

STATE_META_KEY = "shed_pipeline.cluster_fit"


@dataclass(kw_only=True)
class FitInfo:
    """How the anchors were fitted, and how much the rows have changed since."""

    fit_id: str  # content hash of the anchors: equal fits, equal id
    k: int
    seed: int
    max_iter: int
    tol: float
    dim: int
    rows_at_fit: int
    anchor_msd_at_fit: float  # mean squared distance of a row to its anchor, at fit time
    n_iter: int
    converged: bool
    rows_joined: int = 0  # rows added since the fit (all refreshes together)
    rows_left: int = 0  # rows removed since the fit
    warm_start: float = 0.0  # fraction of the training rows the first iterations ran on (0: none)


@dataclass
class ClusterState:
    """All k clusters, indexed by cluster id (0..k-1). A cluster whose members all left keeps its
    anchor (a new row near it revives it with the same id) but has no proxy while empty."""

    anchors: np.ndarray  # (k, d) float32
    centroids: np.ndarray  # (k, d) float32; an empty cluster's is its anchor
    proxy_row_ids: list[str | None]
    member_row_ids: list[list[str]]  # members in input order
    member_sq_dist: list[list[float]]  # squared distance to the cluster's centroid
    fit: FitInfo

    @property
    def k(self) -> int:
        return self.anchors.shape[0]

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(m) for m in self.member_row_ids], dtype=np.int64)

    def labels_for(self, row_ids: Sequence[str]) -> np.ndarray:
        where = {r: c for c, ms in enumerate(self.member_row_ids) for r in ms}
        return np.array([where[r] for r in row_ids], dtype=np.int64)

    def inertia(self) -> float:
        return float(sum(sum(d) for d in self.member_sq_dist))

    # -- persistence: one Parquet file, fit info in its schema metadata (written atomically) --

    def save(self, path: str | Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = self.anchors.shape[1]
        table = pa.table(
            {
                "cluster_id": pa.array(np.arange(self.k, dtype=np.int64)),
                "anchor": pa.FixedSizeListArray.from_arrays(pa.array(self.anchors.astype(np.float32).ravel()), d),
                "centroid": pa.FixedSizeListArray.from_arrays(pa.array(self.centroids.astype(np.float32).ravel()), d),
                "proxy_row_id": pa.array(self.proxy_row_ids, type=pa.string()),
                "members": pa.array(self.member_row_ids, type=pa.list_(pa.string())),
                "member_sq_dist": pa.array(self.member_sq_dist, type=pa.list_(pa.float64())),
            }
        ).replace_schema_metadata({STATE_META_KEY: json.dumps(asdict(self.fit))})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "ClusterState | None":
        """The saved state, or None if there is none. A file that cannot be read raises ValueError."""
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.exists():
            return None
        try:
            table = pq.read_table(path)
            fit = FitInfo(**json.loads(table.schema.metadata[STATE_META_KEY.encode()]))
            cols = table.to_pydict()
            d = fit.dim
            return cls(
                anchors=np.asarray(table.column("anchor").combine_chunks().flatten(), dtype=np.float32).reshape(-1, d),
                centroids=np.asarray(table.column("centroid").combine_chunks().flatten(), dtype=np.float32).reshape(
                    -1, d
                ),
                proxy_row_ids=cols["proxy_row_id"],
                member_row_ids=cols["members"],
                member_sq_dist=cols["member_sq_dist"],
                fit=fit,
            )
        except Exception as exc:  # noqa: BLE001 (any damage means: cannot trust it)
            raise ValueError(f"{path}: cannot read the saved clustering ({type(exc).__name__}: {exc})") from exc
