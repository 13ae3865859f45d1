"""Sampling a source's units: a deterministic sample by hash of (seed, content), optionally spread
evenly over the values of a field (stratified)."""

from __future__ import annotations

import hashlib
from typing import Sequence

from shed_pipeline.core.sources.units import RawUnit


def sample_units(units: Sequence[RawUnit], n: int | None, seed: int, stratify: str | None = None) -> list[RawUnit]:
    """A deterministic sample of n units, by hash of (seed, content): independent of file order.

    With `stratify` naming a field, the sample is spread evenly over that field's values (a value
    with fewer units than its share gives its surplus to the others). Order of the result follows
    the source order.
    """
    if n is None or n >= len(units):
        return list(units)
    if n <= 0:
        raise ValueError(f"rows must be positive, got {n}")

    def key(u: RawUnit) -> str:
        return hashlib.sha256(f"{seed}:{u.fingerprint()}".encode()).hexdigest()

    groups: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        g = ""
        if stratify and isinstance(u.payload, dict):
            g = str(u.payload.get(stratify, ""))
        groups.setdefault(g, []).append(i)
    for g in groups:
        groups[g].sort(key=lambda i: (key(units[i]), i))  # identical records: source order
    # Even allocation with surplus redistribution (water-filling).
    quota = {g: 0 for g in groups}
    remaining = n
    open_groups = sorted(groups)
    while remaining > 0 and open_groups:
        share, extra = divmod(remaining, len(open_groups))
        next_open = []
        for j, g in enumerate(open_groups):
            want = share + (1 if j < extra else 0)
            take = min(want, len(groups[g]) - quota[g])
            quota[g] += take
            remaining -= take
            if quota[g] < len(groups[g]):
                next_open.append(g)
        if next_open == open_groups and share == 0 and extra == 0:
            break
        open_groups = next_open
    chosen = sorted(i for g, idx in groups.items() for i in idx[: quota[g]])
    return [units[i] for i in chosen]
