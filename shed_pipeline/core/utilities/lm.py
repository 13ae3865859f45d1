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

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from shed_pipeline.core import lm
from shed_pipeline.core.benchmarks import ChoiceItem
from shed_pipeline.core.progress import EVERY_S, Log, Progress, silent, throttled


@dataclass(frozen=True)
class LMSettings(lm.FinetuneBudget):
    """The fine-tune budget of every evaluation, and the weight of the choice accuracy in U."""

    steps: int = 8
    max_tokens: int = 256
    choice_weight: float = 1.0


class LMUtility:
    def __init__(self, model, tok, player_prompts: Sequence[str], player_targets: Sequence[str], val_prompts: Sequence[str], val_targets: Sequence[str], settings: LMSettings = LMSettings(), choice_items: Sequence[ChoiceItem] = (), log: Log = silent, log_every_s: float = EVERY_S):
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
        self.computed = Progress(None, "lm utility", self._log, unit="evaluations", every_s=0)  # every one offered to the throttle

    def _progress(self, total: int, what: str, unit: str) -> Progress:
        return Progress(total, f"lm utility, evaluation {self.computed.done + 1}: {what}", self._log, unit=unit)

    def _score(self, model) -> float:
        s = self.settings
        loglik = lm.mean_loglik_per_token(model, self.tok, self.val_prompts, self.val_targets, s.batch_size, s.max_tokens, self._progress(len(self.val_prompts), "validation", "sequences"))
        parts = {"val_loglik_per_token": loglik}
        score = loglik
        if self.choice_items:
            acc = lm.choice_accuracy(model, self.tok, self.choice_items, s.batch_size, self._progress(lm.choice_pairs(self.choice_items), "choice items", "sequences"))
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
            with self.settings.finetuned(self.model, self.tok, [self.player_prompts[i] for i in idx], [self.player_targets[i] for i in idx], finetune) as tuned:
                value = self._score(tuned)
        self.computed.advance()
        return value
