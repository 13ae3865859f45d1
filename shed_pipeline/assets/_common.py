"""Helpers shared by the asset modules: data versions, metadata, lineage inputs."""

import base64
import hashlib

import dagster as dg
import polars as pl

from shed_pipeline import __version__

# Recorded in lineage with every asset: which code produced the records.
CODE_VERSION = __version__


def frame_version(df: pl.DataFrame) -> dg.DataVersion:
    """A content hash of a frame: equal content, equal version (independent of run or time).
    polars row hashes are stable within a polars release, which is all a data version needs."""
    h = hashlib.sha256()
    h.update(str(df.schema).encode())
    if df.height:
        h.update(df.hash_rows(seed=0).to_numpy().tobytes())
    return dg.DataVersion(h.hexdigest()[:24])


def first_by_id(df: pl.DataFrame, n: int) -> pl.DataFrame:
    """The first `n` rows by row id (all when n is 0): row ids are content hashes, so this is a
    fixed random sample that changes only where the rows change."""
    return df.sort("row_id").head(n) if n else df


def png_md(png: bytes, alt: str) -> dg.MetadataValue:
    # Dagster has no image metadata type; an inline data URI renders in the UI's markdown.
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def input_runs(context: dg.AssetExecutionContext, upstream: list[str]) -> dict[str, str | None]:
    """The run that produced each upstream asset this step reads (lineage across runs)."""
    out: dict[str, str | None] = {}
    for name in upstream:
        ev = context.instance.get_latest_materialization_event(dg.AssetKey(name))
        out[name] = ev.run_id if ev is not None else None
    return out


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
