"""What every selection method gets, and what it returns.

A method sees the pool (row ids in source order, each row's cluster, response, prompt vector), the
clusters (id, proxy score when valued, members in the clusters asset's order), optional per-row
values (e.g. `knn_shapley`, `ifd`), the number of rows to select and a seed. It returns the selected
rows in draw order, each with the reason it was chosen (stored in lineage, shown by
`shed-pipeline lineage why`).

Member orders (the `member_order` setting of the SHED methods): "source" takes a cluster's members
in the clusters asset's order (SHED's QOCS), "random" in a seeded random order (SHED's QWCS), and a
per-row value kind takes them best first. Best is the highest value, except for `ifd`, where the
Superfiltering rule holds: rows with IFD < 1 first, highest first, then rows with IFD >= 1, lowest
first (the instruction helps them least). Rows without a value come last; ties keep the clusters'
order.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from shed_pipeline.core.progress import silent
from shed_pipeline.core.row_values import ROW_VALUES

SOURCE, RANDOM = "source", "random"


@dataclass
class Selection:
    row_id: str
    cluster_id: int
    draw_order: int  # 0-based position in the draw sequence
    reason: str


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: int
    score: float | None  # the proxy's value; None when the clusters were not valued
    members: tuple[str, ...]  # row ids, in the clusters asset's order (source order)


@dataclass
class SelectionInputs:
    row_ids: Sequence[str]  # pool rows, in source order
    cluster_of: Mapping[str, int]  # pool row -> cluster id
    clusters: Sequence[ClusterInfo]  # in the clusters asset's order (cluster-id order)
    outputs: Sequence[str]  # each pool row's response, aligned with row_ids
    vectors: np.ndarray  # each pool row's normalised prompt embedding, aligned with row_ids (n, d)
    _: KW_ONLY  # the rest by name
    n: int = 0  # rows to select (`curate` sets it from the target size)
    seed: int = 0
    # Per-row values by kind ("knn_shapley", "ifd", ...): row id -> value; a row may lack one.
    row_values: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    log: Callable[[str], None] = silent  # progress lines of long methods

    def scored(self) -> bool:
        return all(c.score is not None for c in self.clusters)

    def require_scores(self, method: str) -> list[float]:
        """The clusters' proxy scores; a clear error when the clusters were not valued."""
        missing = sum(c.score is None for c in self.clusters)
        if missing:
            raise ValueError(
                f"method {method} ranks clusters by their proxy score, but {missing} of {len(self.clusters)} clusters "
                "have none: materialize proxy_shapley_scores first"
            )
        return [float(c.score) for c in self.clusters]  # type: ignore[arg-type]

    def values(self, kind: str) -> Mapping[str, float]:
        """The per-row values of `kind`; a clear error when they were not computed."""
        if kind not in self.row_values:
            have = ", ".join(self.row_values) or "none"
            raise ValueError(
                f"per-row values {kind!r} were not computed (computed: {have}); add {kind!r} to row_values' kinds"
            )
        return self.row_values[kind]


def target_size(pool_size: int, fraction: float | None, size: int | None) -> int:
    """Rows to select: an explicit count, else a fraction of the pool (rounded, at least 1)."""
    if size is not None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        if size > pool_size:
            raise ValueError(f"size {size} exceeds the pool's {pool_size} rows")
        return int(size)
    if fraction is None or not (0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, min(pool_size, int(round(fraction * pool_size))))


def value_key(kind: str, value: float | None) -> tuple:
    """Sort key, best first, of one row's value of `kind` (see the module's docstring)."""
    if value is None or math.isnan(value):
        return (2, 0.0)
    if kind == "ifd":
        return (0, -value) if value < 1 else (1, value)
    return (0, -value)


def best_first(members: Sequence[str], kind: str, values: Mapping[str, float]) -> list[str]:
    """`members` ordered best first by their `kind` values (stable: ties keep the given order)."""
    return sorted(members, key=lambda r: value_key(kind, values.get(r)))


def check_member_order(order: str, inputs: SelectionInputs) -> Mapping[str, float] | None:
    """The values a member order needs (None for source / random); fails naming missing values."""
    if order in (SOURCE, RANDOM):
        return None
    if order not in ROW_VALUES:
        raise ValueError(
            f"unknown member_order {order!r}; choose {SOURCE}, {RANDOM} or a per-row value: {', '.join(ROW_VALUES)}"
        )
    if order not in inputs.row_values:
        have = ", ".join(inputs.row_values) or "none"
        raise ValueError(
            f"member_order {order!r}: per-row values {order!r} were not computed (computed: {have}); use 'source', "
            f"'random' or add {order!r} to row_values' kinds"
        )
    return inputs.values(order)


def ordered_members(
    members: Sequence[str], order: str, values: Mapping[str, float] | None, rng: np.random.Generator | None
) -> list[str]:
    """A cluster's members in the take order `order`."""
    if order == SOURCE:
        return list(members)
    if order == RANDOM:
        assert rng is not None
        return [members[i] for i in rng.permutation(len(members))]
    assert values is not None
    return best_first(members, order, values)


def format_value(kind: str, values: Mapping[str, float] | None, row_id: str) -> str:
    v = None if values is None else values.get(row_id)
    return f"{kind} {v:.4g}" if v is not None else f"no {kind} value"


MEMBER_ORDER_HELP = (
    "order in which a chosen cluster's members are taken: 'source' (as listed), 'random' (seeded) or "
    "a per-row value kind such as 'knn_shapley' or 'ifd' (best first; needs that row value)"
)
