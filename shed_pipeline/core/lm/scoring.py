"""Log-likelihood scoring for the evaluation: the numbers of `forward.continuation_logprobs` (up to
float rounding), for a fraction of the work.

- A multiple-choice item is one packed sequence: its prompt once, then every choice, each choice
  attending to the prompt and to itself only (a 4D attention mask; each choice's positions continue
  from the prompt's), instead of the prompt once per choice.
- Batches of length-sorted sequences bounded by a token budget (rows x longest row), so short
  sequences share a forward pass and few pad tokens are computed.
- The output head and the vocabulary's log-softmax only at the positions that predict a scored
  token (a full forward computes them at every position: a fifth of a small model's work).
- The prompt prefix shared by every sequence of a call (a chat template's system turn, a task's
  instructions) through the model once; its keys and values are reused by every batch.
- Inference mode.

Deterministic: the same inputs give the same batches and the same numbers (on one device).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Sequence

from shed_pipeline.core.lm.tokens import encode_pairs
from shed_pipeline.core.progress import Progress

TOKEN_BUDGET = 2048  # tokens per forward pass (rows x longest row): ~8 rows of 256 tokens
HEAD_CHUNK = 512  # positions per output-head call: bounds the (positions x vocabulary) logits
MIN_SHARED = 4  # shortest shared prompt prefix worth a cached pass


@dataclass(frozen=True)
class Tree:
    """A prompt and the continuations scored after it, packed into one sequence."""

    prompt: tuple[int, ...]
    branches: tuple[tuple[int, ...], ...]

    @property
    def length(self) -> int:
        return len(self.prompt) + sum(len(b) for b in self.branches)


def continuation_logprobs(
    model,
    tok,
    prompts: Sequence[str],
    continuations: Sequence[str],
    *,
    max_tokens: int = 256,
    progress: Progress | None = None,
    token_budget: int = TOKEN_BUDGET,
    max_target_tokens: int | None = None,
) -> list[tuple[float, int]]:
    """`forward.continuation_logprobs`: for each (prompt, continuation), the summed log-probability of
    the continuation's tokens (with eos) given the prompt, and their count; same truncation."""
    if len(prompts) != len(continuations):
        raise ValueError("prompts and continuations differ in length")
    trees = [
        Tree(tuple(p), (tuple(c),))
        for p, c in encode_pairs(tok, list(prompts), list(continuations), max_tokens, max_target_tokens)
    ]
    return [s[0] for s in score_trees(model, tok, trees, progress, token_budget)]


def choice_means(
    model,
    tok,
    items,
    *,
    max_tokens: int = 256,
    progress: Progress | None = None,
    token_budget: int = TOKEN_BUDGET,
) -> list[list[float]]:
    """For each item (`prompt`, `choices`), each choice's mean per-token log-probability (with eos)
    given the prompt: what `forward.choose_many` compares. An item whose choices cut its prompt
    differently (prompt + choice over `max_tokens`) is scored as one sequence per choice."""
    trees, owner = [], []
    for k, it in enumerate(items):
        pairs = encode_pairs(tok, [it.prompt] * len(it.choices), list(it.choices), max_tokens)
        if len({tuple(p) for p, _ in pairs}) == 1:
            trees.append(Tree(tuple(pairs[0][0]), tuple(tuple(c) for _, c in pairs)))
            owner.append((k, None))
        else:
            for j, (p, c) in enumerate(pairs):
                trees.append(Tree(tuple(p), (tuple(c),)))
                owner.append((k, j))
    scored = score_trees(model, tok, trees, progress, token_budget)
    out: list[list[float]] = [[0.0] * len(it.choices) for it in items]
    for (k, j), per_branch in zip(owner, scored, strict=True):
        for b, (lp, n) in enumerate(per_branch):
            out[k][b if j is None else j] = lp / max(n, 1)
    return out


def pick(means: Sequence[float]) -> int:
    """The choice with the highest mean log-probability; ties: the first (as `forward.choose_many`)."""
    return max(range(len(means)), key=lambda j: (means[j], -j))


def score_trees(
    model, tok, trees: Sequence[Tree], progress: Progress | None = None, token_budget: int = TOKEN_BUDGET
) -> list[list[tuple[float, int]]]:
    """For each tree, each branch's (summed log-probability, token count) given the prompt.
    `progress` advances by the branches (sequences) of each batch."""
    import torch

    if any(not t.prompt for t in trees):
        raise ValueError("an empty prompt has no position to predict the continuation from")
    decoder, head = _decoder_and_head(model)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    out: list[list[tuple[float, int]]] = [[(0.0, len(b)) for b in t.branches] for t in trees]
    shared = shared_prefix(trees)
    order = sorted(range(len(trees)), key=lambda i: (-trees[i].length, i))
    with torch.inference_mode():
        cache_arg = (
            "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
        )  # renamed in transformers 5
        past = (
            getattr(decoder(input_ids=torch.tensor([shared], device=device), use_cache=True), cache_arg)
            if shared
            else None
        )
        rest = [Tree(t.prompt[len(shared) :], t.branches) for t in trees]
        for batch in _batches(order, [t.length for t in rest], token_budget):
            ids, mask, pos, where = _pack([rest[i] for i in batch], tok, dtype, len(shared))
            kwargs = {}
            if past is not None:  # every row continues the shared prefix's keys and values
                kwargs[cache_arg] = copy.deepcopy(past)
                kwargs[cache_arg].batch_repeat_interleave(len(batch))
            hidden = decoder(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=pos.to(device),
                use_cache=past is not None,
                **kwargs,
            ).last_hidden_state
            rows, cols, targets, owners = where
            logp = torch.empty(len(rows), dtype=torch.float32)
            for s in range(0, len(rows), HEAD_CHUNK):
                r, c, t = rows[s : s + HEAD_CHUNK], cols[s : s + HEAD_CHUNK], targets[s : s + HEAD_CHUNK]
                logits = head(hidden[r.to(device), c.to(device)]).float()
                logp[s : s + HEAD_CHUNK] = (
                    torch.log_softmax(logits, dim=-1).gather(-1, t.to(device)[:, None])[:, 0].cpu()
                )
            sums: dict[tuple[int, int], float] = {}
            for (b, br), v in zip(owners, logp.tolist(), strict=True):
                sums[(b, br)] = sums.get((b, br), 0.0) + v
            for (b, br), v in sums.items():
                tree = batch[b]
                out[tree][br] = (v, len(trees[tree].branches[br]))
            if progress is not None:
                progress.advance(sum(len(trees[i].branches) for i in batch))
    return out


def shared_prefix(trees: Sequence[Tree]) -> tuple[int, ...]:
    """The prompt tokens every tree starts with (e.g. a chat template's system turn), computed once
    per call; at least one prompt token of each tree stays outside it (it predicts the first
    continuation token). Empty when shorter than MIN_SHARED."""
    if len(trees) < 2:
        return ()
    first = trees[0].prompt
    n = min(len(t.prompt) for t in trees) - 1
    for t in trees[1:]:
        k = 0
        while k < n and t.prompt[k] == first[k]:
            k += 1
        n = k
    return tuple(first[:n]) if n >= MIN_SHARED else ()


def _decoder_and_head(model):
    """The model's decoder stack (final norm included) and its output head. A PeftModel's LoRA layers
    sit inside its base model, so the decoder carries them."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        raise ValueError(
            f"{type(base).__name__} transforms its logits after the output head; "
            "the evaluation's scoring does not support it"
        )
    return base.get_decoder(), base.get_output_embeddings()


def _batches(order: list[int], lengths: list[int], token_budget: int):
    """Consecutive runs of `order` (longest first) whose rows x longest row fit `token_budget`
    (at least one row each)."""
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[batch[0]] > token_budget:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _pack(trees: Sequence[Tree], tok, dtype, past: int = 0):
    """(input ids, additive 4D attention mask, position ids, scored positions) of a batch of trees,
    right-padded, after `past` cached positions that every row sees. Scored positions: row, column
    of the hidden state that predicts each scored token, the token, and (tree in batch, branch)."""
    import torch

    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    width = max(t.length for t in trees)
    ids = torch.full((len(trees), width), pad, dtype=torch.long)
    pos = torch.zeros((len(trees), width), dtype=torch.long)
    allowed = torch.zeros((len(trees), width, width), dtype=torch.bool)
    allowed[:, torch.arange(width), torch.arange(width)] = True  # pad rows attend to themselves: no empty softmax
    rows, cols, targets, owners = [], [], [], []
    for r, t in enumerate(trees):
        n_p = len(t.prompt)
        ids[r, :n_p] = torch.tensor(t.prompt)
        pos[r, :n_p] = torch.arange(n_p)
        allowed[r, :n_p, :n_p] = torch.ones(n_p, n_p, dtype=torch.bool).tril()
        start = n_p
        for b, branch in enumerate(t.branches):
            n = len(branch)
            end = start + n
            ids[r, start:end] = torch.tensor(branch)
            pos[r, start:end] = torch.arange(n_p, n_p + n)
            allowed[r, start:end, :n_p] = True
            allowed[r, start:end, start:end] = torch.ones(n, n, dtype=torch.bool).tril()
            # Token j of the branch is predicted by the prompt's last position (j = 0) or the branch's token j - 1.
            rows += [r] * n
            cols += [n_p - 1] + list(range(start, end - 1))
            targets += list(branch)
            owners += [(r, b)] * n
            start = end
    allowed = torch.cat([torch.ones((len(trees), width, past), dtype=torch.bool), allowed], dim=2)
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]
    return (
        ids,
        mask,
        pos + past,
        (
            torch.tensor(rows, dtype=torch.long),
            torch.tensor(cols, dtype=torch.long),
            torch.tensor(targets, dtype=torch.long),
            owners,
        ),
    )
