"""The `lm` utility (SHED-faithful): U(S) = the target LM's score on the validation rows after a
LoRA fine-tune on the coalition's proxy rows.

    U(S)     = mean per-token log-likelihood of the validation references (plus, when multiple-
               choice items are given, their accuracy, weighted by `choice_weight`)
    U(empty) = the same score of the base model, never 0 (SHED's code used 0, which skews the
               last-removed batch)

The fine-tune has a fixed budget (steps, lr, rank, batch) and a seed, so U(S) is a deterministic
function of S on one device. Each call costs a fine-tune and a validation pass: minutes on a CPU
for real settings, which is why the evaluation cache and Banzhaf-MSR matter here.

Progress: everything the utility logs (evaluations computed so far; within a long evaluation, its
fine-tune steps and scored sequences) goes through one throttle, at most a line per `log_every_s`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from shed_pipeline.core import lm
from shed_pipeline.core.evaluation.benchmarks import ChoiceItem
from shed_pipeline.core.progress import EVERY_S, Log, Progress, silent, throttled
from shed_pipeline.core.strategies import Strategy
from shed_pipeline.core.utilities.cache import fingerprint_arrays, utility_key
from shed_pipeline.core.utilities.inputs import BuiltUtility, UtilityInputs, first_by_id, prompt_identities


@dataclass(frozen=True)
class LMSettings(lm.FinetuneBudget):
    """The fine-tune budget of every evaluation, and the weight of the choice accuracy in U."""

    steps: int = 8
    max_tokens: int = 256
    choice_weight: float = 1.0


class LMUtility:
    def __init__(
        self,
        model,
        tok,
        player_prompts: Sequence[str],
        player_targets: Sequence[str],
        *,
        val_prompts: Sequence[str],
        val_targets: Sequence[str],
        settings: LMSettings = LMSettings(),
        choice_items: Sequence[ChoiceItem] = (),
        log: Log = silent,
        log_every_s: float = EVERY_S,
    ):
        if len(player_prompts) != len(player_targets) or len(val_prompts) != len(val_targets):
            raise ValueError("prompts and targets differ in length")
        if not val_prompts:
            raise ValueError("the lm utility needs at least one validation row")
        self.model, self.tok, self.settings = model, tok, settings
        self.player_prompts, self.player_targets = list(player_prompts), list(player_targets)
        self.val_prompts, self.val_targets = list(val_prompts), list(val_targets)
        self.choice_items = list(choice_items)
        self.n_players = len(self.player_prompts)
        self.last_parts: dict[str, float] = {}
        self._log = throttled(log, log_every_s)
        self.computed = Progress(
            None, "lm utility", self._log, unit="evaluations", every_s=0
        )  # every one offered to the throttle

    def _progress(self, total: int, what: str, unit: str) -> Progress:
        return Progress(total, f"lm utility, evaluation {self.computed.done + 1}: {what}", self._log, unit=unit)

    def _score(self, model) -> float:
        s = self.settings
        loglik = lm.mean_loglik_per_token(
            model,
            self.tok,
            self.val_prompts,
            self.val_targets,
            batch_size=s.batch_size,
            max_tokens=s.max_tokens,
            progress=self._progress(len(self.val_prompts), "validation", "sequences"),
        )
        parts = {"val_loglik_per_token": loglik}
        score = loglik
        if self.choice_items:
            acc = lm.choice_accuracy(
                model,
                self.tok,
                self.choice_items,
                s.batch_size,
                self._progress(lm.choice_pairs(self.choice_items), "choice items", "sequences"),
            )
            parts["choice_accuracy"] = acc
            score += s.choice_weight * acc
        self.last_parts = parts
        return score

    def value(self, members: np.ndarray) -> float:
        mask = np.asarray(members, dtype=bool)
        if mask.shape != (self.n_players,):
            raise ValueError(f"coalition mask must have shape ({self.n_players},), got {mask.shape}")
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            value = self._score(self.model)
        else:
            finetune = self._progress(self.settings.steps, "LoRA fine-tune", "steps")
            with self.settings.finetuned(
                self.model,
                self.tok,
                [self.player_prompts[i] for i in idx],
                [self.player_targets[i] for i in idx],
                finetune,
            ) as tuned:
                value = self._score(tuned)
        self.computed.advance()
        return value


@dataclass(frozen=True)
class LMUtilitySettings:
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "the target LM: the packaged SmolLM2-135M-Instruct, or a local model folder"},
    )
    steps: int = field(default=8, metadata={"help": "LoRA fine-tune steps of every evaluation"})
    lr: float = field(default=1e-3, metadata={"help": "LoRA learning rate"})
    rank: int = field(default=8, metadata={"help": "LoRA rank (alpha = 2 x rank)"})
    batch_size: int = field(default=8, metadata={"help": "rows per fine-tune step and per scoring batch"})
    max_tokens: int = field(default=256, metadata={"help": "tokens kept per row"})
    validation_rows: int = field(
        default=64, metadata={"help": "validation rows scored by every evaluation (the first by row id); 0 = all"}
    )
    # SHED scores by multiple-choice accuracy (MMLU). Items come from the other end of the order the
    # evaluation samples from, so the two never share items.
    benchmarks: list[str] = field(
        default_factory=list,
        metadata={"help": "bigbench multiple-choice tasks whose accuracy is added to U (SHED's MMLU score)"},
    )
    benchmark_items: int = field(default=32, metadata={"help": "items per benchmark task"})


def build(settings: LMUtilitySettings, inputs: UtilityInputs) -> BuiltUtility:
    log = inputs.log
    path = lm.resolve_lm(settings.model, inputs.cache_dir, log)
    model, tok = lm.load_lm(path, device=inputs.device)
    # A fixed subset of the validation rows (the first by row id): each evaluation scores all of them.
    proxies, val = inputs.proxies, first_by_id(inputs.validation, settings.validation_rows)
    budget = LMSettings(
        steps=settings.steps,
        lr=settings.lr,
        rank=settings.rank,
        alpha=2 * settings.rank,
        batch_size=settings.batch_size,
        max_tokens=settings.max_tokens,
        seed=inputs.seed,
    )
    items = []
    if settings.benchmarks:
        from shed_pipeline.core.evaluation.benchmarks import load_choice_items

        raw = load_choice_items(
            settings.benchmarks,
            settings.benchmark_items,
            inputs.seed,
            inputs.cache_dir,
            log,
            from_end=True,
            archive=inputs.bigbench_archive,
        )  # never the evaluation's items
        items = [it for task in settings.benchmarks for it in lm.choice_items(tok, raw[task])]
    player_prompts = lm.prompt_texts(tok, proxies["instruction"], proxies["input"], lm.messages_column(proxies), log)
    val_prompts = lm.prompt_texts(tok, val["instruction"], val["input"], lm.messages_column(val), log)
    utility = LMUtility(
        model,
        tok,
        player_prompts,
        proxies["output"].to_list(),
        val_prompts=val_prompts,
        val_targets=val["output"].to_list(),
        settings=budget,
        choice_items=items,
        log=log,
    )
    # U(S) depends on the model's weights, the fine-tune settings, the device's arithmetic, the
    # validation rows (ids and texts; the ids are content hashes), how prompts are rendered (chat
    # rows' turns) and the multiple-choice items.
    key_settings = {
        "model": lm.model_fingerprint(path),
        **budget.as_dict(),
        "device": lm.device_signature(inputs.device),
        "prompt": lm.PROMPT_FORMAT,
        "score": "val_loglik_per_token/v1",
    }
    if items:
        key_settings["choice_items"] = fingerprint_arrays(
            [f"{it.prompt}\x00{chr(31).join(it.choices)}\x00{it.answer}" for it in items]
        )
    data = fingerprint_arrays(lm.prompt_keys(val["row_id"], lm.messages_column(val)))
    description = {
        "utility": STRATEGY.name,
        "settings": key_settings,
        "validation_rows": val.height,
        "validation_fingerprint": data,
        "model_path": str(path),
    }
    return BuiltUtility(
        utility, utility_key(STRATEGY.name, key_settings, data), description, prompt_identities(proxies)
    )


STRATEGY = Strategy(
    name="lm",
    summary=(
        "SHED's utility: the target LM's validation log-likelihood after a LoRA fine-tune on the coalition (slow: a "
        "fine-tune per evaluation)"
    ),
    settings=LMUtilitySettings,
    run=build,
)
