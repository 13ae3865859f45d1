"""Splits by a hash of (seed, row id)."""

from collections import Counter

import pytest

from shed_pipeline.core.sources import row_id_for
from shed_pipeline.core.sources.splits import split_of


def test_split_depends_on_id_and_seed_only():
    ids = [row_id_for("i", str(n), "o") for n in range(2000)]
    splits = [split_of(r, 7, 0.1, 0.1) for r in ids]
    c = Counter(splits)
    assert 140 < c["validation"] < 260 and 140 < c["test"] < 260
    assert splits == [split_of(r, 7, 0.1, 0.1) for r in ids]
    assert splits != [split_of(r, 8, 0.1, 0.1) for r in ids]
    with pytest.raises(ValueError):
        split_of(ids[0], 0, 0.6, 0.5)
