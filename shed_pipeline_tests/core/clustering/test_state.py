import pytest

from shed_pipeline.core.clustering import ClusterState


def test_damaged_state_file_is_a_clear_error(tmp_path):
    assert ClusterState.load(tmp_path / "missing.parquet") is None
    bad = tmp_path / "clusters.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="cannot read the saved clustering"):
        ClusterState.load(bad)
