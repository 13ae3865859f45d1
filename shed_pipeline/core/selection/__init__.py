"""Selection methods by name, and `curate`: near-duplicate removal, target size, the chosen method.

Each method is one module declaring `STRATEGY` (its name, summary, settings and
`run(inputs: SelectionInputs, settings) -> list[Selection]`); adding one is its module plus a line in
METHODS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from shed_pipeline.core import dedup
from shed_pipeline.core.selection import coverage, ifd, kcenter, longest, qocs, qwcs, random_rows, stratified
from shed_pipeline.core.selection.base import SOURCE, ClusterInfo, Selection, SelectionInputs, target_size
from shed_pipeline.core.strategies import Registry

METHODS = Registry(
    "method",
    [
        qocs.STRATEGY,
        qwcs.STRATEGY,
        coverage.STRATEGY,
        random_rows.STRATEGY,
        stratified.STRATEGY,
        longest.STRATEGY,
        ifd.STRATEGY,
        kcenter.STRATEGY,
    ],
)

# The pipeline's default selection (the CLI without --method, and curated_subset's config): chosen
# by measurement across two sources (README "Results"). SHED's exact rules keep their names.
DEFAULT_METHOD = "coverage"
DEFAULT_METHOD_SETTINGS: dict[str, Any] = {}


def default_method_label() -> str:
    """`coverage`, or `coverage (member_order knn_shapley)`: the default as help texts say it."""
    settings = ", ".join(f"{k} {v}" for k, v in DEFAULT_METHOD_SETTINGS.items())
    return f"{DEFAULT_METHOD} ({settings})" if settings else DEFAULT_METHOD


@dataclass
class Curated:
    selections: list[Selection]
    near_duplicates: list[dedup.NearDuplicate] = field(default_factory=list)
    target: int = 0  # rows the method was asked for
    pool_rows: int = 0  # rows it could choose from, before near-duplicate removal
    rows_after_dedup: int = 0


def curate(
    inputs: SelectionInputs,
    method: str,
    settings: Any = None,
    *,
    fraction: float | None = 0.1,
    size: int | None = None,
    every_row: bool = False,
    dedup_threshold: float | None = None,
    dedup_keep: str = SOURCE,
) -> Curated:
    """Select rows from `inputs` with `method` (settings: its settings object, a mapping of them or
    None for the defaults). The target is `size` rows, else `fraction` of the pool, else (every_row)
    all of it; it is counted before near-duplicate removal, so a subset has the same size with or
    without it: an explicit size larger than the rows left fails, a fraction is cut to them."""
    strategy = METHODS[method]
    if settings is None or isinstance(settings, Mapping):
        settings = strategy.configure(settings, METHODS.kind)
    elif not isinstance(settings, strategy.settings):
        raise TypeError(f"method {method} takes {strategy.settings.__name__}, got {type(settings).__name__}")
    METHODS.check_requirements(method, row_values=tuple(inputs.row_values))
    pool_rows = len(inputs.row_ids)
    n = pool_rows if every_row else target_size(pool_rows, fraction, size)
    removed: list[dedup.NearDuplicate] = []
    if dedup_threshold is not None:
        inputs, removed = dedup.deduplicate(inputs, dedup_threshold, dedup_keep)
        left = len(inputs.row_ids)
        if n > left and size is not None:
            raise ValueError(
                f"size {size} exceeds the {left} rows left after near-duplicate removal ({len(removed)} removed); ask "
                "for fewer rows or raise dedup_threshold"
            )
        n = min(n, left)
    chosen = strategy.run(dataclasses.replace(inputs, n=n), settings)
    return Curated(chosen, removed, n, pool_rows, len(inputs.row_ids))


__all__ = ["METHODS", "ClusterInfo", "Curated", "Selection", "SelectionInputs", "curate", "target_size"]
