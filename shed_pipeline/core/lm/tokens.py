"""Token ids for the model: (prompt, target) pairs cut to a token budget, and right-padded batches."""

from __future__ import annotations


def encode_pairs(
    tok, prompts: list[str], targets: list[str], max_tokens: int, max_target_tokens: int | None = None
) -> list[tuple[list[int], list[int]]]:
    """Token ids of each (prompt, target + eos), cut to `max_tokens`: the target keeps its start
    (at most `max_target_tokens`, by default max_tokens - 1), the prompt loses its start."""
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    keep = max_tokens - 1 if max_target_tokens is None else min(max_target_tokens, max_tokens - 1)
    out = []
    for p, t in zip(prompts, targets, strict=True):
        t_ids = (tok(t, add_special_tokens=False)["input_ids"] + eos)[:keep]
        p_ids = tok(p, add_special_tokens=False)["input_ids"][-(max_tokens - len(t_ids)) :]
        out.append((p_ids, t_ids))
    return out


def right_padded(seqs: list[list[int]], tok):
    """(input ids, attention mask) of a batch, padded on the right so that positions (and so
    position ids) start at 0 in every row."""
    import torch

    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(seqs), max(len(q) for q in seqs)), pad, dtype=torch.long)
    att = torch.zeros(ids.shape, dtype=torch.long)
    for r, q in enumerate(seqs):
        ids[r, : len(q)] = torch.tensor(q)
        att[r, : len(q)] = 1
    return ids, att
