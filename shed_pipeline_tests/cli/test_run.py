"""The run's Settings: its flags over the environment's variables, before anything is built."""

import pytest

from shed_pipeline.cli import build_parser
from shed_pipeline.cli.run import settings_from_flags
from shed_pipeline.resources import resources_for


def flags(*argv: str):
    return build_parser().parse_args(["run", *argv])


def test_flags_override_the_variables_they_stand_for(shed_env, monkeypatch):
    monkeypatch.setenv("SHED_EMBEDDING_SHARDS", "many")  # unusable, but overridden
    monkeypatch.setenv("SHED_PRECISION", "fp16")
    settings = settings_from_flags(flags("--embedding-shards", "3", "--device", "cuda", "--out", "/tmp/x"))
    assert (settings.embedding_shards, settings.device, settings.precision) == (3, "cuda", "fp16")
    assert settings.out == "/tmp/x"
    with pytest.raises(ValueError, match="SHED_EMBEDDING_SHARDS"):
        settings_from_flags(flags())


def test_an_s3_out_flag_satisfies_a_prod_environment_without_one(shed_env, monkeypatch):
    monkeypatch.setenv("SHED_ENV", "prod")
    monkeypatch.delenv("SHED_PIPELINE_OUT")
    with pytest.raises(ValueError, match="SHED_ENV=prod needs SHED_PIPELINE_OUT"):
        resources_for(settings_from_flags(flags()))
    settings = settings_from_flags(flags("--out", "s3://bucket/curated"))
    assert resources_for(settings)["io_manager"].prefix == "s3://bucket/curated/_assets"
