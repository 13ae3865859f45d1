"""The target language model: where it comes from, how rows become its prompts, what it scores,
and how it is fine-tuned.

- `store`: resolving, downloading and converting models, loading them, and their fingerprints
- `prompts`: rows as prompt texts (chat templates, chat rows' turns) and prompt cache keys
- `tokens`: (prompt, target) token ids cut to a budget, and padded batches
- `forward`: log-likelihoods, choices and hidden-state features from plain batched forward passes
- `scoring`: the evaluation's log-likelihood scoring (packed sequences, token budgets, cached prefixes)
- `finetune`: seeded LoRA fine-tuning and its budget

The names below are the package's API (`from shed_pipeline.core import lm; lm.resolve_lm(...)`);
the evaluation's packed scoring is `lm.scoring`.
"""

from shed_pipeline.core.lm import scoring
from shed_pipeline.core.lm.finetune import FinetuneBudget, lora_finetuned
from shed_pipeline.core.lm.forward import (
    choice_accuracy,
    choice_pairs,
    choose,
    choose_many,
    continuation_logprobs,
    mean_loglik_per_token,
    penultimate_features,
)
from shed_pipeline.core.lm.prompts import (
    PROMPT_FORMAT,
    choice_items,
    messages_column,
    parse_messages,
    plain_turns,
    prompt_keys,
    prompt_text,
    prompt_texts,
)
from shed_pipeline.core.lm.store import SMOLLM2, device_signature, load_lm, model_fingerprint, resolve_lm

__all__ = [
    "PROMPT_FORMAT",
    "SMOLLM2",
    "FinetuneBudget",
    "choice_accuracy",
    "choice_items",
    "choice_pairs",
    "choose",
    "choose_many",
    "continuation_logprobs",
    "device_signature",
    "load_lm",
    "lora_finetuned",
    "mean_loglik_per_token",
    "messages_column",
    "model_fingerprint",
    "parse_messages",
    "penultimate_features",
    "plain_turns",
    "prompt_keys",
    "prompt_text",
    "prompt_texts",
    "resolve_lm",
    "scoring",
]
