"""What the CLI prints: tables (plain text, aligned columns), the run summary's rows, and timed lines on stderr."""

import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.core.terminal_text import printable
from shed_pipeline.summaries import EvaluationMetricsSummary, Summary


def comparison_summary(path: Path) -> tuple[list[str], list[list[str]]] | None:
    """The arms against random (difference, 95% interval, z), from the run's evaluation report."""
    from shed_pipeline.core.evaluation import summary_table

    try:
        comparisons = (json.loads(path.read_text()).get("lm") or {}).get("comparisons")
    except (OSError, ValueError):
        return None
    return summary_table(comparisons) if comparisons else None


def lm_summary(path: Path) -> tuple[list[str], list[list[str]]] | None:
    """(header, rows) of the LM arms table, from the run's evaluation report (None without LM arms):
    a column per arm (base, curated, each baseline, random as mean ± std over seeds, full pool)."""
    try:
        lm = json.loads(path.read_text()).get("lm")
    except (OSError, ValueError):
        return None
    if not lm:
        return None
    by: dict[tuple[str, str], dict[str, dict]] = {}
    for s in lm["summary"]:
        by.setdefault((s["benchmark"], s["metric"]), {})[s["arm"]] = s
    arms = list(dict.fromkeys(s["arm"] for s in lm["summary"]))

    def cell(s: dict | None) -> str:
        if s is None:
            return "-"
        return f"{s['mean']:.4f} ± {s['std']:.4f} (n={s['n']})" if s["arm"] == "random" else f"{s['mean']:.4f}"

    header = ["benchmark", "metric"] + [("random (mean ± std)" if a == "random" else a.replace("_", " ")) for a in arms]
    return header, [[b, m] + [cell(got.get(a)) for a in arms] for (b, m), got in by.items()]


def work_done(summaries: Mapping[str, Summary]) -> dict[str, dict]:
    """Per asset, the work this run did and the work it reused: what a refresh is judged by."""
    raw, emb, cl, sc = (
        summaries["raw_dataset"],
        summaries["embeddings"],
        summaries["clusters"],
        summaries["proxy_shapley_scores"],
    )
    return {
        "raw_dataset": {
            "rows_new": raw.rows_added,
            "rows_removed": raw.rows_removed,
            "rows_edited": raw.rows_edited,
            "rows_unchanged": raw.rows_unchanged,
            "previous_run": raw.previous_run,
        },
        "embeddings": {
            "rows_embedded": emb.rows_embedded,
            "rows_reused": emb.rows_reused,
            "texts_encoded": emb.texts_encoded,
            "texts_reused": emb.texts_reused,
        },
        "clusters": {
            "full_refit": cl.full_refit,
            "refit_reason": cl.refit_reason,
            "clusters_affected": cl.clusters_affected,
            "clusters_total": cl.clusters_total,
            "rows_new": cl.rows_new,
            "rows_removed": cl.rows_removed,
        },
        "proxy_shapley_scores": {
            "players_new": sc.players_new,
            "utility_evaluations": sc.utility_evaluations,
            "utility_cache_hits": sc.utility_cache_hits,
            "utility_cache_hits_earlier_runs": sc.utility_cache_hits_earlier_runs,
            "coalitions": sc.coalitions,
            "coalitions_with_new_players": sc.coalitions_with_new_players,
        },
    }


def work_rows(w: dict[str, dict]) -> list[list[str]]:
    r, e, c, s = w["raw_dataset"], w["embeddings"], w["clusters"], w["proxy_shapley_scores"]
    since = f"vs run {str(r['previous_run'])[:8]}" if r["previous_run"] else "first run of this source"
    fit = (
        f"full re-fit ({c['refit_reason']})"
        if c["full_refit"]
        else f"{c['clusters_affected']} of {c['clusters_total']} clusters refreshed"
    )
    return [
        [
            "raw_dataset",
            f"{r['rows_new']} new, {r['rows_removed']} removed ({r['rows_edited']} edited) {since}",
            f"{r['rows_unchanged']} unchanged",
        ],
        [
            "embeddings",
            f"{e['rows_embedded']} rows embedded ({e['texts_encoded']} texts)",
            f"{e['rows_reused']} rows from the cache",
        ],
        [
            "clusters",
            fit,
            "-" if c["full_refit"] else f"{(c['clusters_total'] or 0) - (c['clusters_affected'] or 0)} clusters kept",
        ],
        [
            "proxy_shapley_scores",
            f"{s['utility_evaluations']} utility evaluations",
            f"{s['utility_cache_hits']} cache hits ({s['utility_cache_hits_earlier_runs']} from earlier runs)",
        ],
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[printable(h) for h in headers]] + [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))  # noqa: E731
    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *[line(r) for r in cells[1:]]]) + "\n"


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} run: {printable(message)}", file=sys.stderr, flush=True)


def run_summary_text(
    summary: dict[str, Any],
    ev: EvaluationMetricsSummary,
    *,
    wall: float,
    lm_rows: tuple[list[str], list[list[str]]] | None,
    comparison: tuple[list[str], list[list[str]]] | None,
) -> str:
    """What `shed-pipeline run` prints when it succeeds: the work done and reused per asset, the row
    counts, seconds per asset, the held-out utility, the LM arms and their comparison with random, and
    where the outputs are."""
    out: list[str] = []
    c, s, w = summary["counts"], summary["seconds"], summary["work"]
    out.append(f"\nshed-pipeline run {summary['run_id']}  ({wall:.1f}s)")
    out.append(table(["asset", "work done", "work reused"], work_rows(w)))
    out.append(
        table(
            ["rows in", "quarantined", "pool / val / test", "clusters", "selected"],
            [
                [
                    c["rows_in"],
                    c["rows_quarantined"],
                    f"{c['rows_pool']} / {c['rows_validation']} / {c['rows_test']}",
                    c["clusters"],
                    c["selected"],
                ]
            ],
        )
    )
    out.append(table(["asset", "seconds"], [[n, f"{s[n]:.1f}" if s[n] is not None else "-"] for n in ASSET_NAMES]))
    if ev.utility_subset is not None:
        out.append(
            table(
                ["held-out utility", "value"],
                [
                    ["curated subset", f"{ev.utility_subset:.4f}"],
                    ["random, same size (mean)", f"{_or_nan(ev.utility_random_mean):.4f}"],
                    ["full pool", f"{_or_nan(ev.utility_full_pool):.4f}"],
                ],
            )
        )
    if lm_rows:
        out.append(table(*lm_rows))
    if comparison:
        header, rows = comparison
        out.append(
            table(header, rows)
            + (
                "paired differences to the random arms' mean over the same test rows / items: a 95% interval that "
                "holds 0, or |z| < 2, is no difference\n"
            )
        )
    for k, v in summary["outputs"].items():
        out.append(f"{k:>16}: {printable(v)}")
    out.append(
        f"{'dagster_home':>16}: {printable(summary['dagster_home'])}  (DAGSTER_HOME for `dagster dev` to show this run)"
    )
    return "\n".join(out)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value
