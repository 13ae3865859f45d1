"""Data versions and when an asset runs again: the code version recorded with every asset, a content
hash of a frame as its data version, and the automation condition on upstream data."""

import hashlib

import dagster as dg
import polars as pl

from shed_pipeline import __version__

# Recorded in lineage with every asset: which code produced the records.
CODE_VERSION = __version__


FRAME_HASH_ROWS = 65_536


def frame_version(df: pl.DataFrame) -> dg.DataVersion:
    """A content hash of a frame: equal content, equal version (independent of run or time).
    polars row hashes are stable within a polars release, which is all a data version needs."""
    h = hashlib.sha256()
    h.update(str(df.schema).encode())
    # A block of rows at a time: row hashes do not depend on the other rows, so the bytes are those
    # of one whole-frame hash_rows, which takes about 3x a million 384-d vectors' size in memory.
    for start in range(0, df.height, FRAME_HASH_ROWS):
        h.update(df.slice(start, FRAME_HASH_ROWS).hash_rows(seed=0).to_numpy().tobytes())
    return dg.DataVersion(h.hexdigest()[:24])


def upstream_data_changed() -> dg.AutomationCondition:
    """Run when an upstream asset's *data version* changed, not whenever it ran (`eager()` would
    re-run downstream after an upstream run that produced the same data). Not while this asset or
    an upstream one is being computed, not again right after it ran (a whole-job run updates the
    upstream and this asset together), and not while an upstream asset is missing."""
    return (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.newly_updated()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.any_deps_missing()
    ).with_label("upstream data changed")
