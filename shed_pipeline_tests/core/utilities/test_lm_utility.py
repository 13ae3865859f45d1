import numpy as np
import pytest
import torch

from shed_pipeline.core import lm
from shed_pipeline.core.estimators import exact_shapley
from shed_pipeline.core.utilities import CachedUtility
from shed_pipeline.core.utilities.lm import ChoiceItem, LMSettings, LMUtility
from shed_pipeline_tests.tiny_lm import build_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return lm.load_lm(build_tiny_lm(tmp_path_factory.mktemp("tiny_llama")))


PLAYERS = (["the capital of france is", "what colour is the sky", "a b c"], ["paris", "blue", "d e f"])
VAL = (["the capital of france is", "what colour is the sky"], ["paris", "blue"])
VAL_KW = {"val_prompts": VAL[0], "val_targets": VAL[1]}
FAST = LMSettings(steps=20, lr=1e-2, rank=4, batch_size=4, seed=1)


def test_empty_coalition_is_the_base_model_and_learning_the_answers_helps(tiny):
    model, tok = tiny
    u = LMUtility(model, tok, *PLAYERS, **VAL_KW, settings=FAST)
    base = lm.continuation_logprobs(model, tok, *VAL)
    assert u.value(np.zeros(3, bool)) == pytest.approx(np.mean([lp / n for lp, n in base]), abs=1e-9)
    helpful = u.value(np.array([True, True, False]))
    assert helpful > u.value(np.zeros(3, bool)) + 0.5
    assert u.value(np.array([True, True, False])) == helpful  # deterministic
    assert lm.continuation_logprobs(model, tok, *VAL) == base  # base model untouched


def test_choice_items_add_their_accuracy_and_estimators_run_on_it(tiny):
    model, tok = tiny
    items = [ChoiceItem("the capital of france is", ("paris", "berlin"), 0)]
    u = LMUtility(model, tok, *PLAYERS, **VAL_KW, settings=FAST, choice_items=items)
    v = u.value(np.array([True, False, False]))
    assert set(u.last_parts) == {"val_loglik_per_token", "choice_accuracy"}
    assert v == pytest.approx(u.last_parts["val_loglik_per_token"] + u.last_parts["choice_accuracy"])
    counted = CachedUtility(u)
    res = exact_shapley(counted)
    assert counted.evaluations == 8 and np.isfinite(res.values).all()
    assert res.values.sum() == pytest.approx(counted.value(np.ones(3, bool)) - counted.value(np.zeros(3, bool)))
    assert torch.isfinite(torch.tensor(res.values)).all()


def test_bad_input(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="differ in length"):
        LMUtility(model, tok, ["a"], [], **VAL_KW)
    with pytest.raises(ValueError, match="at least one validation row"):
        LMUtility(model, tok, *PLAYERS, val_prompts=[], val_targets=[])
    with pytest.raises(ValueError, match="shape"):
        LMUtility(model, tok, *PLAYERS, **VAL_KW).value(np.ones(2, bool))


def test_progress_goes_through_one_throttle(tiny):
    import time

    model, tok = tiny
    lines = []
    u = LMUtility(
        model, tok, *PLAYERS, **VAL_KW, settings=FAST, log=lines.append, log_every_s=0
    )  # no throttle: every line
    u.value(np.array([True, False, True]))
    u.value(np.zeros(3, bool))
    assert [m.split(" (")[0] for m in lines] == [
        "lm utility, evaluation 1: LoRA fine-tune: 20/20 steps",
        "lm utility, evaluation 1: validation: 2/2 sequences",
        "lm utility: 1 evaluations",
        "lm utility, evaluation 2: validation: 2/2 sequences",  # the empty coalition: the base model, no fine-tune
        "lm utility: 2 evaluations",
    ]
    quiet, t0 = [], time.monotonic()
    u = LMUtility(
        model, tok, *PLAYERS, **VAL_KW, settings=FAST, log=quiet.append
    )  # the default: at most a line per 10 s
    for mask in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]):
        u.value(np.array(mask, bool))
    assert 1 <= len(quiet) <= 1 + (time.monotonic() - t0) // 10


def test_the_utility_builders_prompt_chat_rows_with_their_turns_and_key_them_apart(tmp_path):
    """The lm and probe utilities' builders on a tiny Llama given a chat template: chat rows keep
    their turns; frames and validation snapshots from before the messages column read as Alpaca
    rows, under other cache keys and player identities."""
    import json

    import polars as pl
    from transformers import AutoTokenizer

    from shed_pipeline.core.utilities import UTILITIES, UtilityInputs
    from shed_pipeline.core.valuation import proxy_rows, validation_rows
    from shed_pipeline_tests.core.lm.chat_templates import CHAT

    model_dir = build_tiny_lm(tmp_path / "chat_llama")
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = CHAT
    tok.save_pretrained(model_dir)
    conv = json.dumps(
        [
            {"role": "user", "content": "what colour"},
            {"role": "assistant", "content": "blue"},
            {"role": "user", "content": "the sky"},
        ]
    )
    flat = "user: what colour\n\nassistant: blue\n\nuser: the sky"  # how the reader flattens it into the instruction
    raw = pl.DataFrame(
        {
            "row_id": ["p1", "p2", "p3", "v1", "v2", "v3"],
            "instruction": ["a b", flat, "c", flat, "paris", "d e"],
            "input": [""] * 6,
            "output": ["c", "blue", "d", "blue", "france", "f"],
            "messages": [None, conv, None, conv, None, None],
            "split": ["pool"] * 3 + ["validation"] * 3,
        }
    )
    emb = pl.DataFrame(
        {
            "row_id": raw["row_id"],
            "embedding": [np.random.default_rng(i).normal(size=4).astype(np.float32) for i in range(6)],
        }
    )
    val, proxies, logs = validation_rows(raw, emb), ["p1", "p2", "p3"], []
    assert val.columns == ["row_id", "instruction", "input", "output", "messages", "embedding"]
    assert validation_rows(raw.drop("messages"), emb).columns == [
        "row_id",
        "instruction",
        "input",
        "output",
        "embedding",
    ]
    cfg = UTILITIES["lm"].settings(model=str(model_dir), steps=2, max_tokens=64)

    def build(settings, raw, val):
        name = "lm" if isinstance(settings, UTILITIES["lm"].settings) else "probe"
        built = UTILITIES[name].run(
            settings,
            UtilityInputs(
                proxy_rows(raw, emb, proxies),
                val,
                device="cpu",
                cache_dir=tmp_path,
                log=logs.append,
                feature_cache=tmp_path / "features.duckdb",
            ),
        )
        return built.utility, built.key, built.description, built.identities

    u, key, description, ids = build(cfg, raw, val)
    assert (
        u.player_prompts[1]
        == u.val_prompts[0]
        == "<|user|>what colour\n<|assistant|>blue\n<|user|>the sky\n<|assistant|>"
    )
    # Alpaca prompts did not change: the key's prompt format did not either, so their cached values stay valid.
    assert (
        u.player_prompts[0] == "<|user|>a b\n<|assistant|>" and description["settings"]["prompt"] == "chat_template/v1"
    )
    old_u, old_key, _, old_ids = build(
        cfg, raw.drop("messages"), val.drop("messages")
    )  # frames and a snapshot from before the column
    assert old_u.player_prompts[1] == old_u.val_prompts[0] == f"<|user|>{flat}\n<|assistant|>"
    assert (
        old_key != key and old_ids[1] != ids[1] and old_ids[0] == ids[0] and old_ids[2] == ids[2]
    )  # only the chat row's identity differs
    _, mixed_key, _, mixed_ids = build(
        cfg, raw, val.drop("messages")
    )  # a snapshot from before: its rows as Alpaca rows
    assert mixed_key == old_key and mixed_ids == ids
    probe = UTILITIES["probe"].settings(model=str(model_dir), dims=2)
    _, pkey, pdesc, _ = build(probe, raw, val)
    _, old_pkey, _, _ = build(probe, raw.drop("messages"), val.drop("messages"))
    assert pdesc["settings"]["features"].startswith("lm-penultimate/v1:") and pkey != old_pkey
    # The second build computes features again for the two chat rows only (prompted flattened now).
    assert [m.split(" (")[0] for m in logs if m.startswith("probe")] == [
        "probe: LM features for 6 rows",
        "probe features: 6/6 rows",
        "probe: LM features for 2 rows",
        "probe features: 2/2 rows",
    ]
