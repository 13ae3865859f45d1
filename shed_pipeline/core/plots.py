"""Small PNG plots for asset metadata (matplotlib, headless)."""

from __future__ import annotations

import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 30) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(list(values), bins=bins, color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return _png(fig)


def bars(
    labels: Sequence[str], values: Sequence[float], title: str, ylabel: str, errors: Sequence[float] | None = None
) -> bytes:
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(labels) + 2), 3))
    ax.bar(
        range(len(labels)), list(values), yerr=list(errors) if errors is not None else None, color="#55a868", capsize=4
    )
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(list(labels), rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return _png(fig)


def arm_panels(panels: dict[str, tuple[Sequence[str], Sequence[float], Sequence[float]]], title: str) -> bytes:
    """One small bar chart per benchmark: mean and spread (error bar) of each evaluation arm."""
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
    colours = {"base": "#8c8c8c", "curated": "#c44e52", "random": "#4c72b0", "full_pool": "#55a868"}
    for ax, (name, (labels, means, stds)) in zip(axes[0], panels.items(), strict=False):
        ax.bar(
            range(len(labels)),
            list(means),
            yerr=list(stds),
            capsize=4,
            color=[colours.get(a, "#999999") for a in labels],
        )
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(list(labels), rotation=30, ha="right")
        lo, hi = (
            min(m - s for m, s in zip(means, stds, strict=True)),
            max(m + s for m, s in zip(means, stds, strict=True)),
        )
        pad = 0.15 * (hi - lo) if hi > lo else 0.05 * (abs(hi) or 1.0)
        ax.set_ylim(lo - pad, hi + pad)  # differences between arms are small: zoom on them
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def line(
    xs: Sequence[float], ys: Sequence[float], title: str, *, xlabel: str, ylabel: str, mark: float | None = None
) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(list(xs), list(ys), marker="o", color="#4c72b0")
    if mark is not None:
        ax.axvline(mark, color="#c44e52", linestyle="--")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _png(fig)
