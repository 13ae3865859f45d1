"""The tiny Llama (random weights, offline) the language-model tests run on, one per test module."""

import pytest

from shed_pipeline.core import lm
from shed_pipeline_tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return lm.load_lm(tiny_dir)
