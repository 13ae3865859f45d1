"""Scores and features from plain batched forward passes, one sequence per (prompt, target) pair:
log-likelihoods of continuations, multiple-choice picks and accuracy, and TS-DShapley's hidden-state
features. The valuation's LM utilities use these; `scoring` computes the evaluation's numbers faster.
"""

from __future__ import annotations

import numpy as np

from shed_pipeline.core.lm.tokens import encode_pairs, right_padded
from shed_pipeline.core.progress import Progress


def continuation_logprobs(
    model,
    tok,
    prompts: list[str],
    continuations: list[str],
    *,
    batch_size: int = 8,
    max_tokens: int = 256,
    progress: Progress | None = None,
) -> list[tuple[float, int]]:
    """For each (prompt, continuation): the summed log-probability of the continuation's tokens
    given the prompt, and their count. Deterministic (no sampling, eval mode). Sequences longer than
    `max_tokens` keep the continuation and lose the start of the prompt. `progress` advances by the
    sequences of each batch."""
    import torch

    if len(prompts) != len(continuations):
        raise ValueError("prompts and continuations differ in length")
    encoded = encode_pairs(tok, prompts, continuations, max_tokens)
    if any(not p_ids for p_ids, _ in encoded):
        raise ValueError("an empty prompt has no position to predict the continuation from")
    results: dict[int, tuple[float, int]] = {}
    for idx, ids, out in _batched_forward(model, tok, [p + c for p, c in encoded], batch_size):
        logp = torch.log_softmax(out.logits.float()[:, :-1], dim=-1)
        target = ids[:, 1:].to(logp.device)
        tok_lp = logp.gather(-1, target[..., None])[..., 0].cpu()
        for r, i in enumerate(idx):
            n_p, n_c = len(encoded[i][0]), len(encoded[i][1])
            # Token t is predicted at position t-1: the continuation's tokens are n_p .. n_p+n_c-1.
            results[i] = (float(tok_lp[r, n_p - 1 : n_p - 1 + n_c].sum()), n_c)
        if progress is not None:
            progress.advance(len(idx))
    return [results[i] for i in range(len(encoded))]


def penultimate_features(
    model,
    tok,
    prompts: list[str],
    targets: list[str],
    *,
    batch_size: int = 8,
    max_tokens: int = 256,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """TS-DShapley's representations: the penultimate layer's hidden states of each (prompt, target)
    sequence, mean-pooled over the prompt's tokens and over the target's tokens separately (the
    target's states see the prompt). Returns two float32 arrays of shape (n, hidden). One forward
    pass per sequence, in eval mode: deterministic. `progress` advances by the rows of each batch."""
    encoded = [(p or [tok.eos_token_id], t) for p, t in encode_pairs(tok, prompts, targets, max_tokens)]
    hidden = model.config.hidden_size
    xs = np.zeros((len(encoded), hidden), dtype=np.float32)
    ys = np.zeros((len(encoded), hidden), dtype=np.float32)
    for idx, _, out in _batched_forward(model, tok, [p + t for p, t in encoded], batch_size, output_hidden_states=True):
        states = out.hidden_states[-2].float().cpu().numpy()
        for r, i in enumerate(idx):
            n_p, n_t = len(encoded[i][0]), len(encoded[i][1])
            xs[i] = states[r, :n_p].mean(0)
            ys[i] = states[r, n_p : n_p + n_t].mean(0)
        if progress is not None:
            progress.advance(len(idx))
    return xs, ys


def mean_loglik_per_token(
    model,
    tok,
    prompts: list[str],
    targets: list[str],
    *,
    batch_size: int = 8,
    max_tokens: int = 256,
    progress: Progress | None = None,
) -> float:
    """Mean over the pairs of each target's per-token log-likelihood given its prompt."""
    return float(
        np.mean(
            [
                lp / max(n, 1)
                for lp, n in continuation_logprobs(
                    model, tok, prompts, targets, batch_size=batch_size, max_tokens=max_tokens, progress=progress
                )
            ]
        )
    )


def choice_pairs(items) -> int:
    """The (prompt, choice) sequences `choose_many` scores for `items`: a progress total."""
    return sum(len(it.choices) for it in items)


def choose_many(
    model, tok, items, *, batch_size: int = 8, max_tokens: int = 256, progress: Progress | None = None
) -> list[int]:
    """For each item (an object with `prompt` and `choices`), the index of the choice with the highest
    mean per-token log-probability (ties: the first). Every (prompt, choice) pair goes through one
    batched, length-sorted pass, not one small batch per item; `progress` counts the pairs."""
    prompts = [it.prompt for it in items for _ in it.choices]
    conts = [c for it in items for c in it.choices]
    scores = (
        continuation_logprobs(
            model, tok, prompts, conts, batch_size=batch_size, max_tokens=max_tokens, progress=progress
        )
        if conts
        else []
    )
    out, pos = [], 0
    for it in items:
        means = [lp / max(n, 1) for lp, n in scores[pos : pos + len(it.choices)]]
        pos += len(it.choices)
        out.append(max(range(len(means)), key=lambda j: (means[j], -j)))
    return out


def choose(model, tok, prompt: str, choices: list[str], batch_size: int = 8) -> int:
    """`choose_many` for one prompt."""
    from types import SimpleNamespace

    return choose_many(model, tok, [SimpleNamespace(prompt=prompt, choices=tuple(choices))], batch_size=batch_size)[0]


def choice_accuracy(model, tok, items, batch_size: int = 8, progress: Progress | None = None) -> float:
    """Share of items (with `prompt`, `choices`, `answer`) whose answer `choose_many` picks; nan without items."""
    picks = choose_many(model, tok, items, batch_size=batch_size, progress=progress)
    return float(np.mean([p == it.answer for p, it in zip(picks, items, strict=True)])) if items else float("nan")


def _batched_forward(model, tok, seqs: list[list[int]], batch_size: int, **model_kwargs):
    """Yield (positions in `seqs`, input ids, model output) batch by batch, longest sequences first
    (batches of similar length pad little), right-padded, without gradients."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        ids, att = right_padded([seqs[i] for i in idx], tok)
        with torch.no_grad():
            out = model(input_ids=ids.to(device), attention_mask=att.to(device), **model_kwargs)
        yield idx, ids, out
