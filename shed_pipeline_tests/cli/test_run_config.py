"""The run config the CLI builds from its flags fits the assets' Config classes: every flag's path
exists and its value has the type the config declares."""

import dagster as dg
import pytest

from shed_pipeline.cli import build_parser, run_config_from_args
from shed_pipeline.core.valuation import DEFAULT_UTILITY, default_estimator
from shed_pipeline.definitions import build_definitions

EVERY_FLAG = [
    "run",
    "--source", "data.jsonl", "--rows", "50", "--clusters", "5", "--method", "qwcs", "--fraction", "0.2",
    "--utility", "probe", "--estimator", "ts_chains", "--permutations", "3", "--chain-rounds", "2",
    "--lm-model", "some/model", "--eval-epochs", "2", "--random-seeds", "3", "--baselines", "random,longest",
    "--full-pool", "--test-rows", "8", "--benchmark-items", "4", "--benchmarks", "quiz",
    "--temperature", "0.5", "--member-order", "random", "--dedup", "0.95", "--dedup-keep", "source",
    "--row-values", "knn_shapley", "--seed", "3", "--full-refit", "--embed-chunk", "64",
    "--row-id-field", "shed_id", "--no-lm-eval",
]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [["run"], EVERY_FLAG, ["run", "--utility", "lm", "--samples", "10", "--size", "auto", "--eval-steps", "5"]],
    ids=["defaults", "every flag", "lm and auto size"],
)
def test_the_flags_build_a_run_config_the_job_accepts(shed_env, argv):
    job = build_definitions().resolve_job_def("shed_curation_job")
    config = run_config_from_args(build_parser().parse_args(argv))
    result = dg.validate_run_config(job, config)  # raises on a path or type the Config classes do not have
    assert result["ops"].keys() >= config["ops"].keys()


def test_the_defaults_come_from_the_valuation_core():
    ops = run_config_from_args(build_parser().parse_args(["run"]))["ops"]
    assert ops["proxy_shapley_scores"]["config"]["utility"] == {DEFAULT_UTILITY: {}}
    assert ops["proxy_shapley_scores"]["config"]["estimator"] == {default_estimator(DEFAULT_UTILITY): {}}
    for utility in ("knn", "probe", "lm"):
        chosen = run_config_from_args(build_parser().parse_args(["run", "--utility", utility]))
        assert chosen["ops"]["proxy_shapley_scores"]["config"]["estimator"] == {default_estimator(utility): {}}
