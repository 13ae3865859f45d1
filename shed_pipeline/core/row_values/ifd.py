"""`ifd`: Superfiltering's instruction-following difficulty of each pool row under the target LM,

    IFD = PPL(response | prompt) / PPL(response alone) = exp(mean NLL given the prompt - mean NLL alone),

over the same tokens: the response and the end-of-sequence token, cut to half of `max_tokens` (so the
instruction always keeps the other half). "Alone" is
the response after a single start token (the tokenizer's BOS, else EOS), so its first token is
predicted too. The prompt is rendered as everywhere else (lm.prompt_texts: the chat template, a
chat row's own turns). IFD near or above 1: the prompt does not help predict the response (it
does not follow from the instruction, e.g. a wrong answer); low: the response is easy once the
instruction is known.

Values are cached per (prompt key, model fingerprint, max_tokens, device signature, prompt format)
in the embedding-cache DuckDB, like the probe's LM features: a refresh computes new rows only, and
each chunk is written as soon as it is done (an interrupted run keeps its work).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from shed_pipeline.core.progress import Progress
from shed_pipeline.core.row_values.base import RowValueInputs
from shed_pipeline.core.strategies import Strategy

CHUNK_ROWS = 256  # rows scored per call (writes to the cache are gathered: BufferedWrites)
FEATURE = "ifd/v2"  # bump when what is computed changes


@dataclass(frozen=True)
class IFDSettings:
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "the packaged SmolLM2-135M-Instruct, or a local transformers model folder"},
    )
    max_tokens: int = field(
        default=256,
        metadata={
            "help": (
                "tokens per sequence; the response keeps at most half of them (its start), the prompt loses its start"
            )
        },
    )


def start_text(tok) -> str:
    """The one-token context the response is scored after when 'alone'."""
    text = tok.bos_token or tok.eos_token
    if not text:
        raise ValueError("ifd: the tokenizer has neither a BOS nor an EOS token to start a response from")
    return text


def ifd_scores(
    model, tok, prompts: list[str], responses: list[str], *, max_tokens: int = 256, progress: Progress | None = None
) -> np.ndarray:
    """(n, 3) float64: IFD, mean NLL per token given the prompt, mean NLL per token alone.
    `progress` advances by two sequences per row (with and without the prompt)."""
    from shed_pipeline.core.lm import scoring as lm_scoring

    # The response gets at most half the tokens: a long response would otherwise push the whole
    # instruction out, and IFD would compare the response with itself (about 1) whatever the prompt.
    half = max(1, max_tokens // 2)
    given = lm_scoring.continuation_logprobs(
        model, tok, prompts, responses, max_tokens=max_tokens, progress=progress, max_target_tokens=half
    )
    alone = lm_scoring.continuation_logprobs(
        model,
        tok,
        [start_text(tok)] * len(responses),
        responses,
        max_tokens=max_tokens,
        progress=progress,
        max_target_tokens=half,
    )
    out = np.zeros((len(responses), 3))
    for i, ((lp_c, n_c), (lp_a, n_a)) in enumerate(zip(given, alone, strict=True)):
        nll_c, nll_a = -lp_c / max(n_c, 1), -lp_a / max(n_a, 1)
        out[i] = (np.exp(nll_c - nll_a), nll_c, nll_a)
    return out


def feature_id(fingerprint: str, max_tokens: int, device_signature: str) -> str:
    from shed_pipeline.core.lm import PROMPT_FORMAT

    return f"{FEATURE}:{fingerprint}:{max_tokens}:{device_signature}:{PROMPT_FORMAT}"


def run(settings: IFDSettings, inputs: RowValueInputs) -> np.ndarray:
    from shed_pipeline.core import lm
    from shed_pipeline.core.embedding import EmbeddingCache

    if inputs.feature_cache is None:
        raise ValueError("ifd needs a feature cache (the embedding-cache DuckDB) to keep its values")
    path = lm.resolve_lm(settings.model, inputs.cache_dir or inputs.feature_cache.parent, inputs.log)
    fid = feature_id(lm.model_fingerprint(path), settings.max_tokens, lm.device_signature(inputs.device))
    pool = inputs.pool
    messages = pool["messages"].cast(pl.Utf8).to_list() if "messages" in pool.columns else None
    keys = lm.prompt_keys(pool["row_id"], messages)
    cache = EmbeddingCache(inputs.feature_cache)
    missing = set(cache.missing(fid, list(dict.fromkeys(keys))))
    first = {key: i for i, key in reversed(list(enumerate(keys)))}  # two rows with one prompt key are scored once
    todo = sorted(first[key] for key in missing)
    if todo:
        inputs.log(f"ifd: {len(todo)} rows to score with {path.name} ({len(first) - len(todo)} cached)")
        model, tok = lm.load_lm(path, device=inputs.device)
        rows = pool[todo]
        prompts = lm.prompt_texts(
            tok,
            rows["instruction"],
            rows["input"],
            None if messages is None else [messages[i] for i in todo],
            inputs.log,
        )
        responses = rows["output"].to_list()
        progress = Progress(2 * len(todo), "ifd", inputs.log, unit="sequences")
        with cache.buffered(fid) as saved:  # few transactions, at most half a minute of work unsaved
            for s in range(0, len(todo), CHUNK_ROWS):
                scores = ifd_scores(
                    model,
                    tok,
                    prompts[s : s + CHUNK_ROWS],
                    responses[s : s + CHUNK_ROWS],
                    max_tokens=settings.max_tokens,
                    progress=progress,
                )
                saved.add([keys[i] for i in todo[s : s + CHUNK_ROWS]], scores)
    return cache.get(fid, keys)[:, 0].astype(np.float64) if keys else np.zeros(0)


STRATEGY = Strategy(
    "ifd",
    "Superfiltering's instruction-following difficulty PPL(response | prompt) / PPL(response) under the target LM "
    "(cached per row and model)",
    IFDSettings,
    run,
    requires={"columns": ("instruction", "input", "output", "messages")},
    rows_apart=True,
)
