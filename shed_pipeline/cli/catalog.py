"""`shed-pipeline strategies` and `shed-pipeline benchmarks`: what a run can choose from."""

import argparse
import json

from shed_pipeline.cli.render import say, table
from shed_pipeline.cli.run_config import strategy_choices
from shed_pipeline.settings import Settings


def cmd_benchmarks(args: argparse.Namespace) -> int:
    from shed_pipeline.core.evaluation import DEFAULT_TASKS, choice_index

    settings = Settings.from_env()
    index = choice_index(settings.downloads, log=say, archive=settings.bigbench_archive)
    parents: dict[str, list[str]] = {}
    for name in index:
        if "/" in name:
            parents.setdefault(name.split("/")[0], []).append(name)
    if args.json:
        print(json.dumps({"tasks": index, "parents": parents, "default": list(DEFAULT_TASKS)}, indent=2))
        return 0
    rows = [[name, n, ""] for name, n in index.items()]
    rows += [
        [parent, sum(index[c] for c in children), f"all {len(children)} subtasks"]
        for parent, children in parents.items()
        if parent not in index
    ]
    print(table(["benchmark", "items", "note"], sorted(rows)))
    print(f"default: {','.join(DEFAULT_TASKS)}  (--benchmarks a,b,c; a parent name takes all its subtasks)")
    return 0


def all_registries() -> list:
    """Every registry of strategies, in the order the pipeline uses them."""
    from shed_pipeline.core.row_values import ROW_VALUES

    by_field = strategy_choices()
    return [
        by_field[("proxy_shapley_scores", "utility")],
        by_field[("proxy_shapley_scores", "estimator")],
        ROW_VALUES,
        by_field[("curated_subset", "method")],
    ]


def strategies_markdown() -> str:
    """The README's strategy tables (a test keeps the README equal to this)."""
    out = []
    for r in all_registries():
        out += [f"| {r.kind} | what it does | settings (defaults) |", "|---|---|---|"]
        for name, s in r.items():
            settings = ", ".join(f"`{k}={v!r}`" for k, v in s.defaults().items()) or "-"
            out.append(f"| `{name}` | {s.summary} | {settings} |")
        out.append("")
    return "\n".join(out)


def cmd_strategies(args: argparse.Namespace) -> int:
    registries = all_registries()
    if args.markdown:
        print(strategies_markdown(), end="")
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    r.kind: {
                        name: {
                            "summary": s.summary,
                            "settings": s.defaults(),
                            "requires": {k: list(v) for k, v in s.requires.items()},
                        }
                        for name, s in r.items()
                    }
                    for r in registries
                },
                indent=2,
                default=str,
            )
        )
        return 0
    for r in registries:
        rows = [
            [name, s.summary, ", ".join(f"{k}={v!r}" for k, v in s.defaults().items()) or "-"] for name, s in r.items()
        ]
        print(table([r.kind, "what it does", "settings (defaults)"], rows))
    print(
        "choose with --utility / --estimator / --method; settings with --set, e.g. --set "
        "curated_subset.method.qwcs.temperature=0.5"
    )
    return 0
