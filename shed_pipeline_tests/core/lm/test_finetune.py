"""Seeded LoRA fine-tuning on the tiny Llama."""

import pytest
import torch

from shed_pipeline.core import lm


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
