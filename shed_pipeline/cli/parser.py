"""The command line: commands, flags and their value checks (one line and exit 2 for a bad flag)."""

import argparse
import json
from typing import Any

from shed_pipeline.asset_names import ASSET_NAMES
from shed_pipeline.cli.run_config import strategy_choices
from shed_pipeline.core.valuation.preparation import DEFAULT_UTILITY


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def size_arg(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)


def parse_setting(text: str) -> tuple[str, tuple[str, ...], Any]:
    """ASSET.KEY=VALUE, KEY a dotted path into nested config (proxy_shapley_scores.utility.probe.dims=8)."""
    name, eq, raw = text.partition("=")
    asset, dot, key = name.partition(".")
    path = tuple(key.split("."))
    if not eq or not dot or not all(path):
        raise argparse.ArgumentTypeError(f"expected ASSET.KEY=VALUE, got {text!r}")
    if asset not in ASSET_NAMES:
        raise argparse.ArgumentTypeError(f"unknown asset {asset!r} in {text!r}; assets: {', '.join(ASSET_NAMES)}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return asset, path, value


def fraction_arg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {v}")
    return v


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"shed-pipeline: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="shed-pipeline",
        description="Shapley-based curation of instruction-tuning data (SHED) as a Dagster pipeline.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    add_run_flags(sub.add_parser("run", help="materialize all seven assets and write the curated subset"))

    lin = sub.add_parser("lineage", help="query the lineage database")
    lin.add_argument(
        "--db",
        help="lineage DuckDB file (default: the project's, $SHED_PIPELINE_LINEAGE or .shed_pipeline/lineage.duckdb)",
    )
    lin.add_argument("--json", action="store_true", help="print JSON")
    lsub = lin.add_subparsers(dest="query", required=True, parser_class=OneLineParser)
    lsub.add_parser("runs", help="list runs")
    why = lsub.add_parser("why", help="why is (or isn't) a row in the curated set")
    why.add_argument("row_id", help="row id (a unique prefix is enough)")
    why.add_argument("--run", help="run id or prefix (default: latest run with a curated subset)")
    diff = lsub.add_parser("diff", help="rows added to / removed from the curated set between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")

    strat = sub.add_parser(
        "strategies",
        help="list the utilities, estimators, selection methods and per-row values, with their settings and defaults",
    )
    strat.add_argument("--json", action="store_true", help="print JSON")
    strat.add_argument("--markdown", action="store_true", help="print the README's tables")

    bench = sub.add_parser(
        "benchmarks",
        help="list the bigbench multiple-choice tasks --benchmarks accepts (a parent name takes all its subtasks)",
    )
    bench.add_argument("--json", action="store_true", help="print JSON")
    return p


def add_run_flags(r: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Add the run command's flags to `r`; returns them by destination."""
    from shed_pipeline.core.selection import default_method_label

    choices = {field: registry for (_, field), registry in strategy_choices().items()}
    actions: dict[str, argparse.Action] = {}

    def recording(container):
        def add(*names, **kwargs) -> argparse.Action:
            action = container.add_argument(*names, **kwargs)
            actions[action.dest] = action
            return action

        return add

    flag = recording(r)
    flag(
        "--source",
        help=(
            "'natural-instructions', 'bigbench-chat', a JSONL/JSON/Parquet/CSV file or folder, or an s3:// object or "
            "prefix (default: $SHED_PIPELINE_SOURCE, else natural-instructions)"
        ),
    )
    flag(
        "--rows",
        type=positive_int,
        help=(
            "deterministic sample of N rows (default 1500 for the packaged sources natural-instructions and "
            "bigbench-chat, all rows of a file)"
        ),
    )
    flag("--clusters", type=positive_int, help="number of clusters K (default: about pool/20)")
    flag(
        "--method",
        choices=choices["method"].names,
        help=(
            f"selection method (default {default_method_label()}, chosen by measurement; a method named here takes "
            "its own defaults: `--method qwcs` is SHED's QWCS; `shed-pipeline strategies` lists each with its "
            "settings)"
        ),
    )
    size = recording(r.add_mutually_exclusive_group())
    size("--fraction", type=fraction_arg, help="target size as a fraction of the pool (default 0.1)")
    size(
        "--size",
        type=size_arg,
        help=(
            "target size as a row count, or 'auto': TS-DShapley's removal-index rule drops the lowest-valued clusters "
            "and keeps the rest"
        ),
    )
    flag(
        "--estimator",
        choices=choices["estimator"].names,
        help=(
            "Shapley estimator of the cluster proxies' values (default: knn_exact, the closed form, for the knn "
            "utility; ts_chains for probe; banzhaf_msr for lm)"
        ),
    )
    flag(
        "--utility",
        choices=choices["utility"].names,
        default=DEFAULT_UTILITY,
        help=f"utility U(S) the proxies are valued by (default {DEFAULT_UTILITY})",
    )
    flag(
        "--permutations",
        type=positive_int,
        help="permutations for shed_grouped / tmc, and per chain for ts_chains (default 20)",
    )
    flag(
        "--lm-model",
        help=(
            "the target LM of the lm/probe utilities and the evaluation: 'smollm2-135m-instruct' (default, from the "
            "package registry) or a local causal-LM folder"
        ),
    )
    flag(
        "--chain-rounds",
        type=positive_int,
        help="ts_chains: rounds of chains; each proxy is valued in this many chains (default 10)",
    )
    flag(
        "--no-lm-eval",
        action="store_true",
        help="skip the language-model arms of evaluation_metrics (keep the model-free report)",
    )
    flag("--eval-epochs", type=float, help="evaluation: passes of every fine-tuned arm over its own rows (default 1)")
    flag(
        "--eval-steps",
        type=positive_int,
        help="evaluation: a fixed budget of LoRA steps for every arm instead of epochs (reported as such)",
    )
    flag(
        "--random-seeds",
        type=positive_int,
        help="evaluation: random subsets of the curated size to compare against (default 2; the benchmark uses 5)",
    )
    flag(
        "--baselines",
        help=(
            "evaluation: selection methods evaluated beside the curated subset, comma-separated (default stratified, "
            "the strongest cheap baseline measured; '' for none)"
        ),
    )
    flag(
        "--full-pool",
        action="store_true",
        help="evaluation: also fine-tune on the whole pool (as many epochs: about 10x a 10%% arm)",
    )
    flag("--test-rows", type=int, help="evaluation: test rows scored per arm (default 48; 0 = the whole test split)")
    flag("--benchmark-items", type=int, help="evaluation: items per multiple-choice task (default 30; 0 = all)")
    flag(
        "--benchmarks",
        help=(
            "comma-separated bigbench multiple-choice tasks for the evaluation (default "
            "social_iqa,strategyqa,sports_understanding; '' for none)"
        ),
    )
    flag("--samples", type=positive_int, help="random coalitions for banzhaf_msr (default 1000)")
    flag("--temperature", type=float, help="QWCS softmax temperature (default: std of the scores)")
    flag(
        "--member-order",
        metavar="ORDER",
        help=(
            "qocs / qwcs / coverage: the order a chosen cluster's rows are taken in: 'source', 'random', or a per-row "
            "value ('knn_shapley', 'ifd'), best first (default: source for qocs and coverage, the default method; "
            "random for qwcs, as SHED)"
        ),
    )
    flag(
        "--cap", type=positive_int, help="coverage: most rows taken from one cluster (default ceil(target / clusters))"
    )
    flag(
        "--dedup",
        type=fraction_arg,
        metavar="COSINE",
        help=(
            "remove near-duplicates before selection: rows of one cluster whose prompt embeddings' cosine similarity "
            "exceeds COSINE (e.g. 0.95); one of each group is kept"
        ),
    )
    flag(
        "--dedup-keep",
        metavar="ORDER",
        help=(
            "which near-duplicate is kept: 'source' (the first, default) or the best by a per-row value "
            "('knn_shapley', 'ifd')"
        ),
    )
    flag(
        "--row-values",
        metavar="KINDS",
        help=(
            "per-row values to compute, comma-separated (default knn_shapley; 'ifd' runs the target LM over the "
            "pool). A method, --member-order or --dedup-keep that needs one adds it"
        ),
    )
    flag("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    flag(
        "--full-refit",
        action="store_true",
        help="re-fit the clusters from scratch instead of refreshing the previous run's",
    )
    flag(
        "--embed-chunk",
        type=positive_int,
        help="texts per encode call (default 512); encoded texts are saved every 30 s (embeddings.save_seconds)",
    )
    flag("--device", choices=["auto", "cpu", "cuda"], help="compute device (default auto: CUDA when present)")
    flag(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help=(
            "the encoder's number format (default auto: fp16 on CUDA, bf16 on a CPU with AMX, else fp32); cached "
            "vectors are kept per format"
        ),
    )
    flag(
        "--embedding-shards",
        type=positive_int,
        metavar="N",
        help=(
            "split embeddings into N row-id hash shards (Dagster partitions; default $SHED_EMBEDDING_SHARDS, else 1). "
            "This run computes every shard; in the UI, a backfill of embeddings runs one run per shard, side by side"
        ),
    )
    flag(
        "--out",
        help=(
            "output folder or s3:// prefix for curated.jsonl, curated.parquet, evaluation.json (default: "
            "$SHED_PIPELINE_OUT, else .shed_pipeline/out); lineage stays in the project's one database"
        ),
    )
    flag(
        "--row-id-field",
        metavar="NAME",
        help=(
            "add each curated row's id (what `shed-pipeline lineage why` takes) to curated.jsonl/.parquet under this "
            "field name; the ids are in curated.manifest.json either way"
        ),
    )
    flag(
        "--no-wait",
        action="store_true",
        help="fail at once, instead of waiting, when another run is using the project folder",
    )
    flag(
        "--set",
        action="append",
        default=[],
        metavar="ASSET.KEY=VALUE",
        type=parse_setting,
        help=(
            "any asset config value, a dotted path for nested ones, e.g. proxy_shapley_scores.utility.probe.dims=8, "
            "curated_subset.method.qwcs.temperature=0.5 or evaluation_metrics.benchmarks='[\"social_iqa\"]' (JSON, "
            "else text); naming another strategy than the chosen one replaces the choice; repeatable, applied last"
        ),
    )
    flag("--json", action="store_true", help="print a machine-readable summary instead of a table")
    return actions


def run_flags() -> dict[str, argparse.Action]:
    """The run command's flags by destination (their choices, defaults and help)."""
    return add_run_flags(OneLineParser(prog="shed-pipeline run"))
