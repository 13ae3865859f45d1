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


def bars(labels: Sequence[str], values: Sequence[float], title: str, ylabel: str, errors: Sequence[float] | None = None) -> bytes:
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(labels) + 2), 3))
    ax.bar(range(len(labels)), list(values), yerr=list(errors) if errors is not None else None, color="#55a868", capsize=4)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(list(labels), rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return _png(fig)
