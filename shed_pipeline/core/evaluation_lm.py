"""The language-model evaluation of a curated subset (SHED's protocol, scaled to the machine).

Arms: the base model (no fine-tune), the curated subset, random subsets of the same size (several
seeds) and, optionally, the whole pool. Every fine-tuned arm gets the same LoRA budget (steps, lr,
rank, batch, seed), so arms differ only in the rows they learn from. Each arm is scored on

- the held-out test split: mean per-token log-likelihood of the reference outputs, and
- multiple-choice benchmarks: accuracy, choosing the choice with the highest mean per-token
  log-likelihood (deterministic; no sampling, unlike SHED's generation with temperature 0.2).

SHED's claim, checked by `verdict`: the curated subset scores at or above the random subsets on every
benchmark, and within noise of the full pool.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from shed_pipeline.core import lm
from shed_pipeline.core.benchmarks import ChoiceItem
from shed_pipeline.core.files import write_text_atomic
from shed_pipeline.core.lm import FinetuneBudget  # the budget every arm gets; re-exported for callers
from shed_pipeline.core.progress import Progress, format_seconds

Log = Callable[[str], None]
ArmDone = Callable[[int, int, str, bool], None]  # (arms done, arms in all, the arm's label, from the cache)
TEST_SPLIT = "test_split"


def steps_for_epochs(epochs: float, subset_size: int, batch_size: int) -> int:
    """Steps that take `epochs` passes over a subset of `subset_size` rows (at least 1)."""
    return max(1, math.ceil(epochs * subset_size / batch_size))


@dataclass(frozen=True)
class Arm:
    name: str  # base | curated | random | full_pool
    replicate: int  # the random arm's seed; 0 otherwise
    rows: tuple[int, ...]  # pool positions fine-tuned on (empty for the base model)

    @property
    def label(self) -> str:
        """base, curated, random (seed 3), full_pool."""
        return f"{self.name} (seed {self.replicate})" if self.name == "random" else self.name


def plan_arms(n_pool: int, curated: Sequence[int], random_seeds: Sequence[int], include_full_pool: bool, include_base: bool = True) -> list[Arm]:
    """The arms, in the order they run. Random arms draw `len(curated)` pool rows per seed."""
    if not len(curated):
        raise ValueError("the curated subset is empty: nothing to evaluate")
    arms = [Arm("base", 0, ())] if include_base else []
    arms.append(Arm("curated", 0, tuple(int(i) for i in curated)))
    for s in random_seeds:
        idx = np.sort(np.random.default_rng(s).choice(n_pool, size=len(curated), replace=False))
        arms.append(Arm("random", int(s), tuple(int(i) for i in idx)))
    if include_full_pool:
        arms.append(Arm("full_pool", 0, tuple(range(n_pool))))
    return arms


def evaluate_arms(
    model,
    tok,
    arms: Sequence[Arm],
    pool_prompts: Sequence[str],
    pool_targets: Sequence[str],
    test_prompts: Sequence[str],
    test_targets: Sequence[str],
    benchmarks: dict[str, Sequence[ChoiceItem]],
    budget: FinetuneBudget,
    log: Log = print,
    cache_dir: Path | None = None,
    model_key: str = "",
    on_arm_done: ArmDone | None = None,
) -> list[dict]:
    """One record per (arm, benchmark): arm, replicate, subset_size, benchmark, metric, value.

    With `cache_dir` (and `model_key`, a fingerprint of the model's weights), each arm's results are
    kept in a JSON file named by a hash of everything they depend on (model, budget, the arm's rows'
    texts in order, the test rows, the benchmark items): a re-run whose subsets did not change
    fine-tunes nothing.

    Progress: a line per arm ("evaluation arm 2/6 curated: ..."), and the fine-tune's steps and the
    scored sequences at most every 10 s. `on_arm_done(done, total, label, cached)` is called once
    per arm when its results are in (and, with `cache_dir`, kept in the cache)."""
    if not test_prompts and not any(benchmarks.values()):
        raise ValueError("the LM evaluation has nothing to score: no test rows and no benchmark items")
    records = []
    for k, arm in enumerate(arms, 1):
        idx = list(arm.rows)
        label = f"evaluation arm {k}/{len(arms)} {arm.label}"
        path = None
        if cache_dir is not None:
            key = _arm_key(model_key, budget, [(pool_prompts[i], pool_targets[i]) for i in idx], test_prompts, test_targets, benchmarks)
            path = Path(cache_dir) / f"{key}.json"
            if path.is_file():
                cached = json.loads(path.read_text())
                records += [{"arm": arm.name, "replicate": arm.replicate, "subset_size": len(idx), **r} for r in cached]
                log(f"{label}: from the cache")
                if on_arm_done is not None:
                    on_arm_done(k, len(arms), arm.label, True)
                continue
        first = len(records)
        t0 = time.monotonic()
        log(f"{label}: {f'fine-tune on {len(idx)} rows, then score' if idx else 'the base model, scored'}")
        finetune = Progress(budget.steps, f"{label}: LoRA fine-tune", log, unit="steps")
        ctx = budget.finetuned(model, tok, [pool_prompts[i] for i in idx], [pool_targets[i] for i in idx], finetune) if idx else nullcontext(model)
        with ctx as m:
            base = {"arm": arm.name, "replicate": arm.replicate, "subset_size": len(idx)}
            if test_prompts:
                scored = Progress(len(test_prompts), f"{label}: {TEST_SPLIT}", log, unit="sequences")
                value = lm.mean_loglik_per_token(m, tok, list(test_prompts), list(test_targets), budget.batch_size, budget.max_tokens, scored)
                records.append({**base, "benchmark": TEST_SPLIT, "metric": "loglik_per_token", "value": value})
            for name, items in benchmarks.items():
                scored = Progress(lm.choice_pairs(items), f"{label}: {name}", log, unit="sequences")
                records.append({**base, "benchmark": name, "metric": "accuracy", "value": lm.choice_accuracy(m, tok, items, budget.batch_size, scored)})
        if path is not None:
            write_text_atomic(path, json.dumps([{f: r[f] for f in ("benchmark", "metric", "value")} for r in records[first:]]))
        log(f"{label}: done in {format_seconds(time.monotonic() - t0)}")
        if on_arm_done is not None:
            on_arm_done(k, len(arms), arm.label, False)
    return records


def _arm_key(model_key: str, budget: FinetuneBudget, rows: Sequence[tuple[str, str]], test_prompts, test_targets, benchmarks) -> str:
    h = hashlib.sha256(json.dumps({"model": model_key, "budget": budget.as_dict(), "version": 1}, sort_keys=True).encode())
    for part in (rows, list(zip(test_prompts, test_targets, strict=True)), [(name, it.prompt, it.choices, it.answer) for name, items in benchmarks.items() for it in items]):
        h.update(b"|")
        for item in part:
            b = json.dumps(item).encode()
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    return h.hexdigest()[:32]


def summarize(records: Sequence[dict]) -> list[dict]:
    """Mean, sample standard deviation (0 for one value) and count per (benchmark, arm), in
    first-seen order."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in records:
        groups.setdefault((r["benchmark"], r["metric"], r["arm"]), []).append(r["value"])
    return [{"benchmark": b, "metric": m, "arm": a, "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "n": len(v)} for (b, m, a), v in groups.items()]


def verdict(summary: Sequence[dict], noise_sigmas: float = 2.0) -> dict[str, dict]:
    """Per benchmark: curated minus the random arms' mean, whether it is at or above them, and
    whether it is within `noise_sigmas` random-arm standard deviations of the full pool (when run)."""
    by = {(s["benchmark"], s["arm"]): s for s in summary}
    out = {}
    for b in dict.fromkeys(s["benchmark"] for s in summary):
        cur, rnd, full = by.get((b, "curated")), by.get((b, "random")), by.get((b, "full_pool"))
        if cur is None or rnd is None:
            continue
        v: dict = {"curated_minus_random": cur["mean"] - rnd["mean"], "at_or_above_random": cur["mean"] >= rnd["mean"]}
        if full is not None:
            v["curated_minus_full_pool"] = cur["mean"] - full["mean"]
            v["within_noise_of_full_pool"] = abs(cur["mean"] - full["mean"]) <= noise_sigmas * rnd["std"] if rnd["n"] > 1 else None
        out[b] = v
    return out
