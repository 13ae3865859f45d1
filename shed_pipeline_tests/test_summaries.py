"""Typed asset summaries: what an asset reports, read back the same."""

import dataclasses

import pytest

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.summaries import SUMMARIES, ClustersSummary, ProxyShapleyScoresSummary, RawDatasetSummary


def test_one_summary_per_asset():
    assert list(SUMMARIES) == list(ASSET_NAMES)
    assert all(SUMMARIES[name].asset == name for name in ASSET_NAMES)


def test_metadata_reads_back_as_the_same_summary():
    s = ClustersSummary(n_clusters=12, full_refit=True, refit_reason="first fit", size_median=4.5, seconds=1.25)
    meta = s.metadata()
    assert meta == {
        "seconds": 1.25,
        "n_clusters": 12,
        "full_refit": True,
        "refit_reason": "first fit",
        "size_median": 4.5,
    }
    assert ClustersSummary.from_metadata(meta) == s


def test_entries_without_a_field_are_kept_as_extras_and_missing_fields_read_as_none():
    # An estimator's own counts have no field of their own.
    meta = {"utility_evaluations": 61, "estimator_chains": 4, "removal_best": 2}
    s = ProxyShapleyScoresSummary.from_metadata(meta)
    assert s.utility_evaluations == 61 and s.coalitions is None
    assert s.extra == {"estimator_chains": 4, "removal_best": 2}
    assert s.metadata() == meta


def test_a_summary_takes_keywords_only_and_no_unknown_field():
    with pytest.raises(TypeError):
        RawDatasetSummary(10)  # type: ignore[misc]
    with pytest.raises(TypeError):
        RawDatasetSummary(rows_inn=10)  # type: ignore[call-arg]
    s = RawDatasetSummary(rows_in=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rows_in = 11  # type: ignore[misc]


def test_arm_progress_reads_back_from_its_entries_and_only_from_them():
    from shed_pipeline.summaries import ArmProgress

    progress = ArmProgress(arms_done=3, arms_total=7, arm="random seed 1", cached=True)
    assert ArmProgress.from_metadata(progress.metadata()) == progress
    assert ArmProgress.from_metadata({"arms_done": 3, "arm": "base"}) is None  # not a whole progress entry
