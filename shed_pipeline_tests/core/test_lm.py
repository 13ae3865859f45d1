"""The language-model layer on a tiny Llama built in the test (random weights, offline), and one
slow test on the real SmolLM2-135M-Instruct from the package registry."""

import json

import numpy as np
import polars as pl
import pytest
import torch

from shed_pipeline.core import lm
from shed_pipeline.core.progress import Progress
from shed_pipeline_tests.tiny_lm import build_tiny_lm

# A small chat template (the tiny tokenizer has none): one tagged line per turn.
CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
# One that refuses a conversation starting with an assistant turn, as some models' templates do.
STRICT = (
    "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    + CHAT
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return lm.load_lm(tiny_dir)


def tokenizer_with(tiny_dir, template):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)
    tok.chat_template = template
    return tok


class Ticks:
    """A clock that moves one second per reading: progress lines come out exact."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 1.0
        return self.t


def one_at_a_time(model, tok, prompt, continuation):
    """Oracle: no batching, no padding."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(continuation, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([p + c])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    return sum(float(logp[len(p) - 1 + j, c[j]]) for j in range(len(c))), len(c)


def test_batched_log_likelihoods_equal_one_at_a_time(tiny):
    model, tok = tiny
    prompts = ["the capital of france is", "what colour", "a b c d e f g the sky is", "what"]
    conts = ["paris", "is the sky blue", "green", "a b"]
    got = lm.continuation_logprobs(model, tok, prompts, conts, batch_size=3)
    for (lp, n), p, c in zip(got, prompts, conts, strict=True):
        want_lp, want_n = one_at_a_time(model, tok, p, c)
        assert n == want_n and lp == pytest.approx(want_lp, abs=1e-4)
    single = lm.continuation_logprobs(model, tok, prompts, conts, batch_size=1)
    assert [n for _, n in single] == [n for _, n in got] and [lp for lp, _ in single] == pytest.approx(
        [lp for lp, _ in got], abs=1e-4
    )


def test_choose_takes_the_best_mean_log_likelihood(tiny):
    model, tok = tiny
    choices = ["paris", "berlin", "madrid a b"]
    scores = [one_at_a_time(model, tok, "the capital of france is", c) for c in choices]
    assert lm.choose(model, tok, "the capital of france is", choices) == int(np.argmax([lp / n for lp, n in scores]))


def test_bad_input_gets_a_clear_error(tiny, tmp_path):
    model, tok = tiny
    with pytest.raises(ValueError, match="differ in length"):
        lm.continuation_logprobs(model, tok, ["a"], ["b", "c"])
    with pytest.raises(ValueError, match="empty prompt"):
        lm.continuation_logprobs(model, tok, [""], ["b"])
    with pytest.raises(ValueError, match="never fetched from a hub"):
        lm.resolve_lm("some-org/some-model", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        lm.resolve_lm(str(tmp_path / "empty"), tmp_path)


@pytest.mark.slow
def test_real_smollm2_loads_offline_and_knows_a_capital():
    from shed_pipeline.core.natural_instructions import default_cache_dir

    path = lm.resolve_lm(lm.SMOLLM2, default_cache_dir(), log=lambda m: None)
    model, tok = lm.load_lm(path)
    assert type(model).__name__ == "LlamaForCausalLM" and sum(p.numel() for p in model.parameters()) == 134_515_008
    prompt = lm.prompt_text(tok, "What is the capital of France? Answer with one word.")
    assert lm.choose(model, tok, prompt, ["Berlin", "Paris", "Madrid"]) == 1


def test_lora_fine_tune_learns_is_seeded_and_leaves_the_base_untouched(tiny):
    model, tok = tiny
    base = {k: v.clone() for k, v in model.state_dict().items()}
    prompts, targets = ["the capital of france is", "what colour is the sky"], ["paris", "blue"]
    before = lm.continuation_logprobs(model, tok, prompts, targets)
    with lm.lora_finetuned(model, tok, prompts, targets, steps=30, lr=1e-2, rank=4, batch_size=2, seed=3) as tuned:
        after = lm.continuation_logprobs(tuned, tok, prompts, targets)
    with lm.lora_finetuned(model, tok, prompts, targets, steps=30, lr=1e-2, rank=4, batch_size=2, seed=3) as tuned:
        again = lm.continuation_logprobs(tuned, tok, prompts, targets)
    assert all(a > b + 1.0 for (a, _), (b, _) in zip(after, before, strict=True))  # learned the targets
    assert again == after  # same seed, same fine-tune, bit for bit
    state = model.state_dict()
    assert state.keys() == base.keys() and all(torch.equal(state[k], base[k]) for k in base)
    assert lm.continuation_logprobs(model, tok, prompts, targets) == before
    with pytest.raises(ValueError, match="at least one"):
        lm.lora_finetuned(model, tok, [], [], steps=1)


def test_penultimate_features_are_the_mean_pooled_hidden_states_whatever_the_batching(tiny):
    model, tok = tiny
    prompts, targets = ["the capital of france is", "what colour", "a b c"], ["paris", "is the sky blue", "d e f g"]
    xs, ys = lm.penultimate_features(model, tok, prompts, targets, batch_size=2)
    assert xs.shape == ys.shape == (3, model.config.hidden_size) and xs.dtype == np.float32
    for i, (p, t) in enumerate(zip(prompts, targets, strict=True)):  # oracle: one unpadded sequence
        p_ids = tok(p, add_special_tokens=False)["input_ids"]
        t_ids = tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            h = model(input_ids=torch.tensor([p_ids + t_ids]), output_hidden_states=True).hidden_states[-2][0].numpy()
        np.testing.assert_allclose(xs[i], h[: len(p_ids)].mean(0), atol=1e-5)
        np.testing.assert_allclose(ys[i], h[len(p_ids) :].mean(0), atol=1e-5)


def test_choose_many_equals_choosing_item_by_item(tiny):
    from shed_pipeline.core.benchmarks import ChoiceItem

    model, tok = tiny
    items = [
        ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0),
        ChoiceItem("what colour", ("blue", "green"), 1),
        ChoiceItem("a b", ("c d e f g", "c"), 0),
    ]
    assert lm.choose_many(model, tok, items, batch_size=2) == [
        lm.choose(model, tok, it.prompt, list(it.choices)) for it in items
    ]
    assert lm.choose_many(model, tok, []) == []


def test_long_steps_report_progress_per_batch_and_per_step(tiny):
    model, tok = tiny
    prompts, targets = ["the capital of france is", "what colour", "a b c"], ["paris", "is the sky blue", "d e f g"]
    lines = []
    xs, ys = lm.penultimate_features(
        model,
        tok,
        prompts,
        targets,
        batch_size=2,
        progress=Progress(3, "probe features", lines.append, every_s=0, clock=Ticks()),
    )
    assert lines == [
        "probe features: 2/3 rows (2.0 rows/s, ~0s left)",
        "probe features: 3/3 rows (1.5 rows/s, done in 2s)",
    ]
    np.testing.assert_array_equal(
        xs, lm.penultimate_features(model, tok, prompts, targets, batch_size=2)[0]
    )  # no progress: same numbers
    lines = []
    lm.continuation_logprobs(
        model,
        tok,
        prompts + ["what"],
        targets + ["a b"],
        batch_size=3,
        progress=Progress(4, "test_split", lines.append, unit="sequences", every_s=0, clock=Ticks()),
    )
    assert [line.split(" (")[0] for line in lines] == ["test_split: 3/4 sequences", "test_split: 4/4 sequences"]
    lines = []
    with lm.lora_finetuned(
        model,
        tok,
        prompts,
        targets,
        steps=3,
        rank=2,
        batch_size=2,
        progress=Progress(3, "LoRA fine-tune", lines.append, unit="steps", every_s=0, clock=Ticks()),
    ):
        pass
    assert [line.split(" (")[0] for line in lines] == [
        "LoRA fine-tune: 1/3 steps",
        "LoRA fine-tune: 2/3 steps",
        "LoRA fine-tune: 3/3 steps",
    ]
    from shed_pipeline.core.benchmarks import ChoiceItem

    items = [
        ChoiceItem("the capital of france is", ("paris", "berlin", "madrid"), 0),
        ChoiceItem("what colour", ("blue", "green"), 1),
    ]
    lines = []
    lm.choice_accuracy(
        model,
        tok,
        items,
        batch_size=8,
        progress=Progress(lm.choice_pairs(items), "quiz", lines.append, unit="sequences"),
    )
    assert len(lines) == 1 and lines[0].startswith("quiz: 5/5 sequences (")  # quick: the end line only


CONVERSATION = [
    {"role": "user", "content": "what colour is the sky"},
    {"role": "assistant", "content": "blue"},
    {"role": "user", "content": "and paris"},
]


def prompt_text_before_messages(tok, instruction, input_text=""):
    """`lm.prompt_text` as it was before chat rows kept their turns: the regression oracle."""
    user = f"{instruction}\n\n{input_text}" if input_text else instruction
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    return user + "\n"


def test_a_chat_row_keeps_its_turns_through_the_chat_template(tiny_dir):
    tok = tokenizer_with(tiny_dir, CHAT)
    text = lm.prompt_text(tok, "flattened instruction, unused", "", json.dumps(CONVERSATION))
    assert text == "<|user|>what colour is the sky\n<|assistant|>blue\n<|user|>and paris\n<|assistant|>"
    assert lm.prompt_text(tok, "", "", CONVERSATION) == text  # the parsed list works too
    system = [{"role": "system", "content": "Be brief."}, *CONVERSATION]
    assert lm.prompt_text(tok, "", "", json.dumps(system, ensure_ascii=False)).startswith(
        "<|system|>Be brief.\n<|user|>"
    )


def test_alpaca_rows_render_byte_for_byte_as_before(tiny_dir, tiny):
    rows = [("the capital of france is", ""), ("what colour", "the sky"), ("a b\n\nc", "d")]
    for tok in (tokenizer_with(tiny_dir, CHAT), tiny[1]):  # with a chat template and without
        want = [prompt_text_before_messages(tok, i, x) for i, x in rows]
        assert [lm.prompt_text(tok, i, x) for i, x in rows] == want
        assert (
            lm.prompt_texts(tok, [i for i, _ in rows], [x for _, x in rows]) == want
        )  # a frame without a messages column
        assert (
            lm.prompt_texts(tok, [i for i, _ in rows], [x for _, x in rows], [None, None, None]) == want
        )  # null: an Alpaca row
        assert lm.prompt_text(tok, "the capital of france is", "", "[]") == want[0]  # no turns: an Alpaca row


def test_a_column_mixes_chat_and_alpaca_rows_and_frames_without_it_are_alpaca(tiny_dir):
    tok = tokenizer_with(tiny_dir, CHAT)
    frame = pl.DataFrame(
        {
            "instruction": ["user: what colour is the sky\n\nassistant: blue\n\nuser: and paris", "what colour"],
            "input": ["", "the sky"],
            "messages": [json.dumps(CONVERSATION), None],
        }
    )
    got = lm.prompt_texts(tok, frame["instruction"], frame["input"], lm.messages_column(frame))
    assert got == [
        lm.prompt_text(tok, "", "", json.dumps(CONVERSATION)),
        "<|user|>what colour\n\nthe sky\n<|assistant|>",
    ]
    old = frame.drop("messages")
    assert lm.messages_column(old) is None
    assert lm.prompt_texts(tok, old["instruction"], old["input"], lm.messages_column(old))[1] == got[1]


def test_without_a_chat_template_turns_are_plain_text_like_the_flattened_instruction(tiny):
    tok = tiny[1]
    assert not getattr(tok, "chat_template", None)
    assert (
        lm.prompt_text(tok, "", "", json.dumps(CONVERSATION))
        == "user: what colour is the sky\n\nassistant: blue\n\nuser: and paris\n"
    )
    assert (
        lm.prompt_text(tok, "", "", json.dumps(CONVERSATION[:1])) == "what colour is the sky\n"
    )  # one turn: its content, as the reader flattens it


def test_turns_the_template_refuses_become_one_user_turn_logged_once(tiny_dir):
    tok = tokenizer_with(tiny_dir, STRICT)
    starts_with_assistant = json.dumps(
        [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "what colour"}]
    )
    lines = []
    got = lm.prompt_texts(
        tok,
        ["x", "y", "z"],
        ["", "", ""],
        [starts_with_assistant, json.dumps(CONVERSATION), starts_with_assistant],
        lines.append,
    )
    assert got[0] == got[2] == "<|user|>assistant: hello\n\nuser: what colour\n<|assistant|>"
    assert (
        got[1] == "<|user|>what colour is the sky\n<|assistant|>blue\n<|user|>and paris\n<|assistant|>"
    )  # accepted: as turns
    assert len(lines) == 1 and "refused the turns of 2 of 3 chat rows" in lines[0]
    with pytest.raises(ValueError, match="list of"):
        lm.prompt_text(tok, "x", "", "not json")
    with pytest.raises(ValueError, match="list of"):
        lm.prompt_text(tok, "x", "", json.dumps([{"role": "user"}]))
