import numpy as np
import pytest
import torch

from shed_pipeline.core import lm
from shed_pipeline.core.estimators import exact_shapley
from shed_pipeline.core.utilities import CountingUtility
from shed_pipeline.core.utilities.lm import ChoiceItem, LMSettings, LMUtility
from shed_pipeline_tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return lm.load_lm(build_tiny_lm(tmp_path_factory.mktemp("tiny_llama")))


PLAYERS = (["the capital of france is", "what colour is the sky", "a b c"], ["paris", "blue", "d e f"])
VAL = (["the capital of france is", "what colour is the sky"], ["paris", "blue"])
FAST = LMSettings(steps=20, lr=1e-2, rank=4, batch_size=4, seed=1)


def test_empty_coalition_is_the_base_model_and_learning_the_answers_helps(tiny):
    model, tok = tiny
    u = LMUtility(model, tok, *PLAYERS, *VAL, settings=FAST)
    base = lm.continuation_logprobs(model, tok, *VAL)
    assert u.value(np.zeros(3, bool)) == pytest.approx(np.mean([lp / n for lp, n in base]), abs=1e-9)
    helpful = u.value(np.array([True, True, False]))
    assert helpful > u.value(np.zeros(3, bool)) + 0.5
    assert u.value(np.array([True, True, False])) == helpful  # deterministic
    assert lm.continuation_logprobs(model, tok, *VAL) == base  # base model untouched


def test_choice_items_add_their_accuracy_and_estimators_run_on_it(tiny):
    model, tok = tiny
    items = [ChoiceItem("the capital of france is", ("paris", "berlin"), 0)]
    u = LMUtility(model, tok, *PLAYERS, *VAL, settings=FAST, choice_items=items)
    v = u.value(np.array([True, False, False]))
    assert set(u.last_parts) == {"val_loglik_per_token", "choice_accuracy"}
    assert v == pytest.approx(u.last_parts["val_loglik_per_token"] + u.last_parts["choice_accuracy"])
    counted = CountingUtility(u)
    res = exact_shapley(counted)
    assert counted.evaluations == 8 and np.isfinite(res.values).all()
    assert res.values.sum() == pytest.approx(counted.value(np.ones(3, bool)) - counted.value(np.zeros(3, bool)))
    assert torch.isfinite(torch.tensor(res.values)).all()


def test_bad_input(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="differ in length"):
        LMUtility(model, tok, ["a"], [], *VAL)
    with pytest.raises(ValueError, match="at least one validation row"):
        LMUtility(model, tok, *PLAYERS, [], [])
    with pytest.raises(ValueError, match="shape"):
        LMUtility(model, tok, *PLAYERS, *VAL).value(np.ones(2, bool))
