import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from shed_pipeline.core.clustering import normalized_mutual_info


def test_nmi_matches_sklearn():
    rng = np.random.default_rng(0)
    a, b = rng.integers(5, size=200), rng.integers(7, size=200)
    assert normalized_mutual_info(a, b) == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-10)
    assert normalized_mutual_info(a, a) == pytest.approx(1.0)
