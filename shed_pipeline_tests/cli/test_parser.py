"""The run command's help states the defaults that the assets' Config classes and the strategies hold:
the flags set a value only when given, so these are the defaults a run gets, and the help must not
drift from them."""

import re

import pytest

from shed_pipeline.assets.cluster import ClustersConfig
from shed_pipeline.assets.curate import CuratedSubsetConfig
from shed_pipeline.assets.embed import EmbeddingsConfig
from shed_pipeline.assets.evaluate import EvaluationConfig
from shed_pipeline.assets.ingest import RawDatasetConfig
from shed_pipeline.assets.row_values import DEFAULT_KINDS
from shed_pipeline.assets.score import ProxyShapleyConfig
from shed_pipeline.cli import run_flags
from shed_pipeline.core.estimators import ESTIMATORS
from shed_pipeline.core.valuation import DEFAULT_UTILITY


def stated_default(flag: str) -> str:
    """What a flag's help says its default is: '(default X' up to ';', ')' or ', the'."""
    found = re.search(r"\(default:? (.+?)(?:;|\)|, the |$)", run_flags()[flag].help)
    assert found, f"--{flag}'s help states no default"
    return found.group(1)


@pytest.mark.parametrize(
    ("flag", "default"),
    [
        ("fraction", CuratedSubsetConfig().fraction),
        ("eval_epochs", EvaluationConfig().epochs),
        ("random_seeds", EvaluationConfig().random_seeds),
        ("test_rows", EvaluationConfig().test_rows),
        ("benchmark_items", EvaluationConfig().benchmark_items),
        ("embed_chunk", EmbeddingsConfig().chunk_texts),
        ("samples", ESTIMATORS["banzhaf_msr"].defaults()["samples"]),
        ("chain_rounds", ESTIMATORS["ts_chains"].defaults()["chain_rounds"]),
        ("seed", RawDatasetConfig().seed),
    ],
)
def test_a_numeric_default_in_the_help_is_the_configs(flag, default):
    assert float(stated_default(flag)) == default


def test_list_and_name_defaults_in_the_help_are_the_configs():
    assert stated_default("benchmarks").split(",") == list(EvaluationConfig().benchmarks)
    assert stated_default("baselines").split(",") == list(EvaluationConfig().baselines)
    assert stated_default("row_values").split(",") == list(DEFAULT_KINDS)
    assert stated_default("utility") == DEFAULT_UTILITY == run_flags()["utility"].default
    permutations = {ESTIMATORS[name].defaults()["permutations"] for name in ("shed_grouped", "tmc", "ts_chains")}
    assert {float(stated_default("permutations"))} == permutations


def test_the_seed_flag_gives_every_asset_its_configs_default_seed():
    seeds = {
        c().seed for c in (RawDatasetConfig, ClustersConfig, ProxyShapleyConfig, CuratedSubsetConfig, EvaluationConfig)
    }
    assert seeds == {run_flags()["seed"].default}
