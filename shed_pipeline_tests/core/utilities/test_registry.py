"""The utility registry: names, settings, builders, and the evaluation-cache keys pinned to the ones
the pipeline used before utilities became strategies (a changed key would silently invalidate every
cached evaluation)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import shed_pipeline.core.utilities as package
from shed_pipeline.core import lm
from shed_pipeline.core.embedding import EmbeddingCache
from shed_pipeline.core.strategies import StrategyError, declared_strategies
from shed_pipeline.core.utilities import UTILITIES, UtilityInputs
from shed_pipeline.core.utilities.knn import KNNUtility
from shed_pipeline.core.utilities.probe import ProbeUtility
from shed_pipeline.core.valuation import proxy_rows, validation_rows

IDS = [f"r{i:02d}" for i in range(12)]
PROXIES = ["r01", "r04", "r06"]
FEATURES = "lm-penultimate/v1:model-fp:256:cpu-sig"  # what the stand-in model and device below give


@pytest.fixture
def inputs(tmp_path, monkeypatch) -> UtilityInputs:
    """8 pool rows and 4 validation rows with exact vectors; a stand-in LM whose features are cached."""
    raw = pl.DataFrame(
        {
            "row_id": IDS,
            "instruction": [f"do {i}" for i in range(12)],
            "input": [""] * 12,
            "output": [f"answer {i % 5}" for i in range(12)],
            "split": ["pool"] * 8 + ["validation"] * 4,
        }
    )
    emb = pl.DataFrame(
        {
            "row_id": IDS,
            "embedding": [np.array([(i % 4) / 4, (i % 3) / 3, i / 16, 1.0], dtype=np.float32) for i in range(12)],
        }
    )
    monkeypatch.setattr(lm, "resolve_lm", lambda model, cache_dir=None, log=print: Path("/models/stand-in"))
    monkeypatch.setattr(lm, "model_fingerprint", lambda path: "model-fp")
    monkeypatch.setattr(lm, "device_signature", lambda device: "cpu-sig")
    monkeypatch.setattr(lm, "load_lm", lambda *a, **k: pytest.fail("every feature is cached: no model loads"))
    feats = np.array(
        [[((i * 7 + j * 3) % 11) / 11 - 0.5 + (i == j) for j in range(8)] for i in range(12)], dtype=np.float32
    )
    EmbeddingCache(tmp_path / "features.duckdb").put(FEATURES, IDS, feats)
    return UtilityInputs(
        proxy_rows(raw, emb, PROXIES),
        validation_rows(raw, emb),
        device="cpu",
        cache_dir=tmp_path,
        log=print,
        feature_cache=tmp_path / "features.duckdb",
        seed=0,
    )


# Keys computed by the pipeline before this refactor (assets/score.py's build_utility) on these rows.
PINNED_KEYS = [
    ("knn", {}, "427aa74b3715e26709e83f88727d3042", 0.375),
    ("knn", {"k": 3}, "ec09d8fc37d9537ba7e4246b1ad87f59", 0.625),
    ("probe", {}, "d9113593a4ac40675e3a39134efe53ae", 0.1405784621952516),
    ("probe", {"dims": 2, "ridge": 5.0, "validation_rows": 3}, "05862f262d4910a39cfca71fb326d8eb", 0.1780118964693691),
]
IDENTITIES = ["r01:fcdcc9c75a39654d", "r04:68aa322e1d020f92", "r06:aabfe6988439f32d"]  # row id and vector digest


@pytest.mark.parametrize(("name", "settings", "key", "full"), PINNED_KEYS)
def test_utility_keys_and_player_identities_are_the_pinned_ones(inputs, name, settings, key, full):
    strategy, configured = UTILITIES.configure(name, settings)
    built = strategy.run(configured, inputs)
    assert built.key == key and built.identities == IDENTITIES
    assert built.description["utility"] == name and built.utility.n_players == 3
    assert built.utility.value(np.ones(3, dtype=bool)) == pytest.approx(full, rel=1e-12)
    assert isinstance(built.utility, KNNUtility if name == "knn" else ProbeUtility)


def test_probe_key_names_its_features_and_settings(inputs):
    built = UTILITIES["probe"].run(UTILITIES["probe"].settings(dims=2, validation_rows=3), inputs)
    assert built.description["settings"] == {"features": FEATURES, "dims": 2, "ridge": 20.0, "score": "ridge_r2/v1"}
    assert built.description["validation_rows"] == 3 and built.description["model_path"] == "/models/stand-in"


def test_registry_lists_exactly_the_utility_modules():
    declared = declared_strategies(package)
    assert UTILITIES.names == ("knn", "lm", "probe") and set(declared) == set(UTILITIES)
    assert all(UTILITIES[name] is s for name, s in declared.items())


def test_registries_import_without_torch():
    code = (
        "import sys, shed_pipeline.core.utilities, shed_pipeline.core.estimators, shed_pipeline.core.valuation; "
        "print('torch' in sys.modules, 'dagster' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == [
        "False",
        "False",
    ]


def test_unknown_utility_and_setting_fail_listing_what_exists():
    with pytest.raises(StrategyError, match="unknown utility 'knnn'; choose one of knn, lm, probe"):
        UTILITIES.configure("knnn")
    with pytest.raises(
        StrategyError,
        match=(
            "utility probe has no setting 'probe_dims'; its settings: batch_size, dims, max_tokens, model, ridge, "
            "validation_rows"
        ),
    ):
        UTILITIES.configure("probe", {"probe_dims": 4})


def test_settings_defaults_are_the_documented_ones():
    assert UTILITIES["knn"].defaults() == {"k": 5}
    assert UTILITIES["lm"].defaults() == {
        "model": "smollm2-135m-instruct",
        "steps": 8,
        "lr": 1e-3,
        "rank": 8,
        "batch_size": 8,
        "max_tokens": 256,
        "validation_rows": 64,
        "benchmarks": [],
        "benchmark_items": 32,
    }
    assert UTILITIES["probe"].defaults() == {
        "model": "smollm2-135m-instruct",
        "dims": 16,
        "ridge": 20.0,
        "validation_rows": 256,
        "max_tokens": 256,
        "batch_size": 8,
    }
