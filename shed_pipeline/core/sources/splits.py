"""Which split a row is in (pool, validation or test): a hash of (seed, row id), so adding rows never
moves a row from one split to another."""

from __future__ import annotations

import hashlib


def split_of(row_id: str, seed: int, validation_fraction: float, test_fraction: float) -> str:
    """pool / validation / test from a hash of (seed, row id): adding rows never moves a row."""
    if not (0 <= validation_fraction and 0 <= test_fraction and validation_fraction + test_fraction < 1):
        raise ValueError("validation_fraction and test_fraction must be >= 0 and sum to less than 1")
    h = int(hashlib.sha256(f"split:{seed}:{row_id}".encode()).hexdigest()[:15], 16) / float(1 << 60)
    if h < validation_fraction:
        return "validation"
    if h < validation_fraction + test_fraction:
        return "test"
    return "pool"
