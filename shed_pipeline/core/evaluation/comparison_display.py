"""How comparisons are shown: one cell (difference, interval, z), the CLI's short table, the markdown
table of every (arm, benchmark) and the interval plot. The numbers come from `comparison`."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from shed_pipeline.core.evaluation.comparison import BENCHMARKS_MEAN, TEST_SPLIT


def _fmt(v: float | None, digits: int = 3, sign: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def cell(row: dict | None) -> str:
    """'+0.031 [-0.012, +0.074] z=1.2': the difference to random, its interval and z."""
    if row is None:
        return "-"
    z = f" z={row['z']:+.1f}" if row["z"] is not None else ""
    return (
        f"{_fmt(row['difference'], sign=True)} [{_fmt(row['ci_low'], sign=True)}, {_fmt(row['ci_high'], sign=True)}]{z}"
    )


def summary_table(comparisons: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the CLI's short table: per arm, its mean and difference to random (95%
    interval, z) on the test split and on the benchmarks' mean; first a row for the random arms'
    mean ± seed-to-seed standard deviation."""
    by = {(r["arm"], r["benchmark"]): r for r in comparisons}
    benches = [b for b in (TEST_SPLIT, BENCHMARKS_MEAN) if any(k[1] == b for k in by)]
    header = ["arm"] + [h for b in benches for h in (f"{b} mean", f"{b} vs random [95% CI]")]
    first = {b: next(r for r in comparisons if r["benchmark"] == b) for b in benches}
    seeds = next(iter(first.values()))["seeds"] if first else 0
    rows = [
        [f"random ({seeds} seeds)"]
        + [c for b in benches for c in (f"{_fmt(first[b]['random_mean'])} ± {_fmt(first[b]['random_std'])}", "")]
    ]
    for arm in dict.fromkeys(r["arm"] for r in comparisons):
        rows.append(
            [arm]
            + [
                c
                for b in benches
                for c in (_fmt(by[(arm, b)]["arm_mean"]) if (arm, b) in by else "-", cell(by.get((arm, b))))
            ]
        )
    return header, rows


def markdown(comparisons: Sequence[dict]) -> str:
    """Every (arm, benchmark) comparison as a markdown table (asset metadata, bench output)."""
    lines = [
        "| arm | benchmark | mean | random mean ± std | vs random | 95% interval | z | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in comparisons:
        z = f"{r['z']:+.2f}" if r["z"] is not None else "-"
        lines.append(
            f"| {r['arm']} | {r['benchmark']} | {_fmt(r['arm_mean'], 4)} "
            f"| {_fmt(r['random_mean'], 4)} ± {_fmt(r['random_std'], 4)} | {_fmt(r['difference'], 4, True)} "
            f"| [{_fmt(r['ci_low'], 4, True)}, {_fmt(r['ci_high'], 4, True)}] | {z} | {r['n']} |"
        )
    return "\n".join(lines)


def interval_plot(comparisons: Sequence[dict], title: str) -> bytes:
    """One panel per benchmark: each arm's difference to random with its 95% interval, the random
    arms' ±1 and ±2 standard deviations shaded."""
    from shed_pipeline.core.plots import _png, plt

    benches = list(dict.fromkeys(r["benchmark"] for r in comparisons))
    fig, axes = plt.subplots(
        1,
        max(1, len(benches)),
        figsize=(3.2 * max(1, len(benches)), 0.35 * len({r["arm"] for r in comparisons}) + 1.6),
        squeeze=False,
    )
    for ax, b in zip(axes[0], benches, strict=False):
        rows = [r for r in comparisons if r["benchmark"] == b]
        y = np.arange(len(rows))[::-1]
        sd = rows[0]["random_std"] or 0.0
        for k, shade in ((2, "#eeeeee"), (1, "#dddddd")):
            ax.axvspan(-k * sd, k * sd, color=shade, zorder=0)
        ax.axvline(0, color="#4c72b0", linewidth=1)
        diffs = np.array([r["difference"] for r in rows])
        err = np.array([[r["difference"] - r["ci_low"], r["ci_high"] - r["difference"]] for r in rows]).T
        ax.errorbar(diffs, y, xerr=np.nan_to_num(err), fmt="o", color="#c44e52", capsize=3)
        ax.set_yticks(y)
        ax.set_yticklabels([r["arm"] for r in rows], fontsize=8)
        ax.set_title(f"{b} ({rows[0]['metric']})", fontsize=9)
        ax.set_xlabel("difference to random", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)
