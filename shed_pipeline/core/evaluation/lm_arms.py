"""The language-model evaluation of a curated subset (SHED's protocol, scaled to the machine).

Arms: the base model (no fine-tune), the curated subset, baseline selections of the same size, random
subsets of the same size (several seeds) and, optionally, the whole pool. Every fine-tuned arm trains
the same number of epochs over its own rows (steps = ceil(epochs x rows / batch), so the full pool
trains on all of its rows), with the same LoRA settings and seed; a fixed step budget for every arm
is an option (`TrainingPlan.steps`) and is reported as such. Each arm is scored on the same

- held-out test rows: each row's mean per-token log-likelihood of its reference output, and
- multiple-choice items: each item's correctness, choosing the choice with the highest mean
  per-token log-likelihood (deterministic; no sampling, unlike SHED's generation at temperature 0.2),

kept per row / item, so arms are compared pairwise on the same material (comparison.py).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from shed_pipeline.core.evaluation.arm_cache import arm_path, material_digest, read_arm, write_arm
from shed_pipeline.core.evaluation.benchmarks import ChoiceItem
from shed_pipeline.core.lm import FinetuneBudget  # one arm's resolved budget; re-exported for callers
from shed_pipeline.core.lm import scoring as lm_scoring
from shed_pipeline.core.progress import Log, Progress, format_seconds

ArmDone = Callable[[int, int, str, bool], None]  # (arms done, arms in all, the arm's label, from the cache)
TEST_SPLIT = "test_split"
CHOICE_MAX_TOKENS = 256  # multiple-choice items are short: never cut


def steps_for_epochs(epochs: float, subset_size: int, batch_size: int) -> int:
    """Steps that take `epochs` passes over a subset of `subset_size` rows (at least 1)."""
    return max(1, math.ceil(epochs * subset_size / batch_size))


@dataclass(frozen=True)
class TrainingPlan:
    """How every fine-tuned arm trains: `epochs` passes over its own rows, or (with `steps`) the same
    fixed number of steps for every arm; LoRA settings and seed shared by all arms."""

    epochs: float = 1.0
    steps: int | None = None
    lr: float = 1e-3
    rank: int = 8
    alpha: int = 16
    batch_size: int = 8
    max_tokens: int = 128
    seed: int = 0

    def __post_init__(self):
        if self.steps is None and not self.epochs > 0:
            raise ValueError(f"evaluation epochs must be > 0, got {self.epochs} (or set a fixed number of steps)")
        if self.steps is not None and self.steps < 1:
            raise ValueError(
                f"evaluation steps must be >= 1, got {self.steps} (or leave them unset to train by epochs)"
            )

    def budget(self, n_rows: int) -> FinetuneBudget:
        steps = self.steps if self.steps is not None else steps_for_epochs(self.epochs, n_rows, self.batch_size)
        return FinetuneBudget(
            steps=steps,
            lr=self.lr,
            rank=self.rank,
            alpha=self.alpha,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            seed=self.seed,
        )

    def describe(self) -> str:
        if self.steps is not None:
            return f"fixed budget: {self.steps} steps of {self.batch_size} rows per arm"
        return (
            f"{self.epochs:g} epoch{'' if self.epochs == 1 else 's'} over each arm's rows "
            f"(ceil({self.epochs:g} x rows / {self.batch_size}) steps)"
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "description": self.describe()}

    @classmethod
    def fixed(cls, budget: FinetuneBudget) -> TrainingPlan:
        """The plan that gives every arm `budget`."""
        return cls(epochs=1.0, **{k: v for k, v in budget.as_dict().items()})


@dataclass(frozen=True)
class Arm:
    name: str  # base | curated | random | full_pool | a baseline selection method
    replicate: int  # the random arm's seed; 0 otherwise
    rows: tuple[int, ...]  # pool positions fine-tuned on (empty for the base model)

    @property
    def label(self) -> str:
        """base, curated, random (seed 3), full_pool, longest."""
        return f"{self.name} (seed {self.replicate})" if self.name == "random" else self.name


def plan_arms(
    n_pool: int,
    curated: Sequence[int],
    random_seeds: Sequence[int],
    *,
    include_full_pool: bool,
    include_base: bool = True,
    baselines: Mapping[str, Sequence[int]] | None = None,
) -> list[Arm]:
    """The arms, in the order they run: base, curated, each baseline, random (`len(curated)` pool
    rows per seed), full pool."""
    if not len(curated):
        raise ValueError("the curated subset is empty: nothing to evaluate")
    arms = [Arm("base", 0, ())] if include_base else []
    arms.append(Arm("curated", 0, tuple(int(i) for i in curated)))
    for name, rows in (baselines or {}).items():
        if name in ("base", "curated", "random", "full_pool"):
            raise ValueError(f"a baseline cannot be named {name!r}: that is an arm of its own")
        arms.append(Arm(name, 0, tuple(int(i) for i in rows)))
    for s in random_seeds:
        arms.append(Arm("random", int(s), random_rows(n_pool, len(curated), s)))
    if include_full_pool:
        arms.append(Arm("full_pool", 0, tuple(range(n_pool))))
    return arms


def random_rows(n_pool: int, size: int, seed: int) -> tuple[int, ...]:
    """The random arm of `seed`: `size` pool positions, sorted (the same for a seed everywhere)."""
    return tuple(int(i) for i in np.sort(np.random.default_rng(seed).choice(n_pool, size=size, replace=False)))


def evaluate_arms(
    model,
    tok,
    arms: Sequence[Arm],
    *,
    pool_prompts: Sequence[str],
    pool_targets: Sequence[str],
    test_prompts: Sequence[str],
    test_targets: Sequence[str],
    benchmarks: dict[str, Sequence[ChoiceItem]],
    plan: TrainingPlan | FinetuneBudget,
    log: Log = print,
    cache_dir: Path | None = None,
    model_key: str = "",
    on_arm_done: ArmDone | None = None,
) -> list[dict]:
    """One record per (arm, benchmark): arm, replicate, subset_size, steps, benchmark, metric, value
    (the mean) and scores (per test row: mean per-token log-likelihood; per item: 1.0 if answered
    correctly, else 0.0; in the order given).

    With `cache_dir` (and `model_key`, a fingerprint of the model's weights), each arm's results are
    kept in a JSON file named by a hash of everything they depend on (model, the arm's resolved
    budget, the arm's rows' texts in order, the test rows, the benchmark items, the cache version):
    a re-run whose subsets did not change fine-tunes nothing.

    Progress: a line per arm ("evaluation arm 2/6 curated: ..."), the fine-tune's steps and the
    scored sequences at most every 10 s, and after each arm the arms done and the time left.
    `on_arm_done(done, total, label, cached)` is called once per arm when its results are in."""
    if not test_prompts and not any(benchmarks.values()):
        raise ValueError("the LM evaluation has nothing to score: no test rows and no benchmark items")
    plan = plan if isinstance(plan, TrainingPlan) else TrainingPlan.fixed(plan)
    material = material_digest(test_prompts, test_targets, benchmarks)
    budgets = [plan.budget(len(a.rows)) if a.rows else None for a in arms]
    clock = _Clock(sum(b.steps for b in budgets if b), len(arms))
    records: list[dict] = []
    for k, (arm, budget) in enumerate(zip(arms, budgets, strict=True), 1):
        idx = list(arm.rows)
        label = f"evaluation arm {k}/{len(arms)} {arm.label}"
        base = {
            "arm": arm.name,
            "replicate": arm.replicate,
            "subset_size": len(idx),
            "steps": budget.steps if budget else 0,
        }
        path = None
        if cache_dir is not None:
            rows = [(pool_prompts[i], pool_targets[i]) for i in idx]
            path = arm_path(
                cache_dir,
                model_key=model_key,
                budget=budget,
                rows=rows,
                material=material,
                choice_max_tokens=CHOICE_MAX_TOKENS,
            )
            cached = read_arm(path)
            if cached is not None:
                records += [{**base, **r} for r in cached]
                log(f"{label}: from the cache")
                clock.skip(budget.steps if budget else 0)
                if on_arm_done is not None:
                    on_arm_done(k, len(arms), arm.label, True)
                continue
        t0 = time.monotonic()
        what = (
            f"fine-tune on {len(idx)} rows, then score ({budget.steps} steps of {budget.batch_size})"
            if idx
            else "the base model, scored"
        )
        log(f"{label}: {what}")
        finetune = Progress(budget.steps if budget else 0, f"{label}: LoRA fine-tune", log, unit="steps")
        ctx = (
            budget.finetuned(model, tok, [pool_prompts[i] for i in idx], [pool_targets[i] for i in idx], finetune)
            if idx
            else nullcontext(model)
        )
        with ctx as m:
            t_score = time.monotonic()
            results = score_arm(
                m,
                tok,
                test_prompts=test_prompts,
                test_targets=test_targets,
                benchmarks=benchmarks,
                max_tokens=plan.max_tokens,
                label=label,
                log=log,
            )
        records += [{**base, **r} for r in results]
        if path is not None:
            write_arm(path, results)
        log(f"{label}: done in {format_seconds(time.monotonic() - t0)}")
        clock.arm_done(budget.steps if budget else 0, t_score - t0, time.monotonic() - t_score, log)
        if on_arm_done is not None:
            on_arm_done(k, len(arms), arm.label, False)
    return records


def score_arm(
    model,
    tok,
    *,
    test_prompts: Sequence[str],
    test_targets: Sequence[str],
    benchmarks: Mapping[str, Sequence[ChoiceItem]],
    max_tokens: int,
    label: str = "",
    log: Log = print,
) -> list[dict]:
    """The arm's records without its identity: benchmark, metric, value, scores."""
    out = []
    if test_prompts:
        scored = Progress(len(test_prompts), f"{label}: {TEST_SPLIT}", log, unit="sequences")
        per_row = [
            lp / max(n, 1)
            for lp, n in lm_scoring.continuation_logprobs(
                model, tok, test_prompts, test_targets, max_tokens=max_tokens, progress=scored
            )
        ]
        out.append(
            {"benchmark": TEST_SPLIT, "metric": "loglik_per_token", "value": float(np.mean(per_row)), "scores": per_row}
        )
    for name, items in benchmarks.items():
        scored = Progress(sum(len(it.choices) for it in items), f"{label}: {name}", log, unit="sequences")
        picks = [
            lm_scoring.pick(m)
            for m in lm_scoring.choice_means(model, tok, items, max_tokens=CHOICE_MAX_TOKENS, progress=scored)
        ]
        correct = [float(p == it.answer) for p, it in zip(picks, items, strict=True)]
        out.append(
            {
                "benchmark": name,
                "metric": "accuracy",
                "value": float(np.mean(correct)) if correct else float("nan"),
                "scores": correct,
            }
        )
    return out


class _Clock:
    """The evaluation's time left, from the measured seconds per fine-tune step and per scored arm."""

    def __init__(self, steps_total: int, arms_total: int):
        self.steps_left, self.arms_left, self.arms_total = steps_total, arms_total, arms_total
        self.train_s = self.score_s = 0.0
        self.steps_done = self.scored = 0

    def skip(self, steps: int) -> None:
        self.steps_left -= steps
        self.arms_left -= 1

    def arm_done(self, steps: int, train_s: float, score_s: float, log: Log) -> None:
        self.skip(steps)
        self.steps_done += steps
        self.train_s += train_s
        self.score_s += score_s
        self.scored += 1
        per_step = self.train_s / self.steps_done if self.steps_done else 0.0
        left = self.steps_left * per_step + self.arms_left * self.score_s / self.scored
        done = self.arms_total - self.arms_left
        log(
            f"evaluation: {done}/{self.arms_total} arms"
            + (
                f" (~{format_seconds(left)} left: {self.steps_left} fine-tune steps, "
                f"{self.arms_left} arm{'' if self.arms_left == 1 else 's'} to score)"
                if self.arms_left
                else ""
            )
        )


def summarize(records: Sequence[dict]) -> list[dict]:
    """Mean, sample standard deviation (0 for one value) and count of the arms' values per
    (benchmark, arm), in first-seen order."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in records:
        groups.setdefault((r["benchmark"], r["metric"], r["arm"]), []).append(r["value"])
    return [
        {
            "benchmark": b,
            "metric": m,
            "arm": a,
            "mean": float(np.mean(v)),
            "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "n": len(v),
        }
        for (b, m, a), v in groups.items()
    ]
