"""Resolving and loading models: clear errors for what is not a model, and one slow test on the real
SmolLM2-135M-Instruct from the package registry."""

import pytest

from shed_pipeline.core import lm


def test_bad_model_names_and_folders_get_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="never fetched from a hub"):
        lm.resolve_lm("some-org/some-model", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        lm.resolve_lm(str(tmp_path / "empty"), tmp_path)


@pytest.mark.slow
def test_real_smollm2_loads_offline_and_knows_a_capital():
    from shed_pipeline.settings import Settings

    path = lm.resolve_lm(lm.SMOLLM2, Settings.from_env().downloads, log=lambda m: None)
    model, tok = lm.load_lm(path)
    assert type(model).__name__ == "LlamaForCausalLM" and sum(p.numel() for p in model.parameters()) == 134_515_008
    prompt = lm.prompt_text(tok, "What is the capital of France? Answer with one word.")
    assert lm.choose(model, tok, prompt, ["Berlin", "Paris", "Madrid"]) == 1
