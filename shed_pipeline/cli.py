"""The `shed-pipeline` command: run the curation job, and query lineage.

`run` materializes the seven assets through the same Definitions the UI loads, recorded in
DAGSTER_HOME so `dagster dev` shows the run. Runs on one project folder take turns (a second one
waits, naming the run it waits for). Errors print one line and exit non-zero; an interrupt (Ctrl-C,
SIGTERM) says what was finished and kept, and exits 130.
"""

import argparse
import errno
import json
import os
import re
import shutil
import signal
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from shed_pipeline.core.display import printable
from shed_pipeline.settings import Settings

# Without --estimator: the closed form where one exists, else the estimator that measured best per
# utility evaluation (bench/estimators.py).
DEFAULT_ESTIMATOR = {"knn": "knn_exact", "probe": "ts_chains", "lm": "banzhaf_msr"}
ASSET_ORDER = [
    "raw_dataset",
    "embeddings",
    "clusters",
    "row_values",
    "proxy_shapley_scores",
    "curated_subset",
    "evaluation_metrics",
]


class CliError(Exception):
    pass


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a run; the message says what was finished and kept."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _size(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def _setting(text: str) -> tuple[str, tuple[str, ...], Any]:
    """ASSET.KEY=VALUE, KEY a dotted path into nested config (proxy_shapley_scores.utility.probe.dims=8)."""
    name, eq, raw = text.partition("=")
    asset, dot, key = name.partition(".")
    path = tuple(key.split("."))
    if not eq or not dot or not all(path):
        raise argparse.ArgumentTypeError(f"expected ASSET.KEY=VALUE, got {text!r}")
    if asset not in ASSET_ORDER:
        raise argparse.ArgumentTypeError(f"unknown asset {asset!r} in {text!r}; assets: {', '.join(ASSET_ORDER)}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return asset, path, value


def strategy_choices() -> dict[tuple[str, str], Any]:
    """The config fields that choose a strategy, by (asset, field), with their registries."""
    from shed_pipeline.core.estimators import ESTIMATORS
    from shed_pipeline.core.selection import METHODS
    from shed_pipeline.core.utilities import UTILITIES

    return {
        ("proxy_shapley_scores", "utility"): UTILITIES,
        ("proxy_shapley_scores", "estimator"): ESTIMATORS,
        ("curated_subset", "method"): METHODS,
    }


def apply_setting(ops: dict[str, dict], asset: str, path: Sequence[str], value: Any) -> None:
    """Set one (possibly nested) config value. A strategy field takes a name (`method=qwcs`) or a path
    through one (`method.qwcs.temperature=0.5`): naming another strategy than the chosen one replaces
    the choice, since a choice holds exactly one strategy and its settings."""
    moved_key_hint(asset, path)
    node = ops.setdefault(asset, {})
    registry = strategy_choices().get((asset, path[0]))
    if registry is not None:
        if len(path) == 1 and isinstance(value, str):
            path, value = (path[0], value), None
        if len(path) >= 2:
            registry[path[1]]  # an unknown name fails here, listing the names that exist
            current = node.get(path[0])
            if not (isinstance(current, dict) and list(current) == [path[1]]):
                node[path[0]] = {path[1]: {}}
            if value is None and len(path) == 2:
                return
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise CliError(f"{asset}.{'.'.join(path)}: {key!r} is a value, not a group of settings")
        node = child
    node[path[-1]] = value


# Flat config keys of earlier versions, and where each setting lives now (a --set of one says so).
MOVED_KEYS = {
    "proxy_shapley_scores": {
        "k": "utility.knn.k",
        "permutations": "estimator.<shed_grouped|tmc|ts_chains>.permutations",
        "group_size": "estimator.shed_grouped.group_size",
        "truncation_tolerance": "estimator.tmc.truncation_tolerance",
        "samples": "estimator.banzhaf_msr.samples",
        "chain_size": "estimator.ts_chains.chain_size",
        "chain_rounds": "estimator.ts_chains.chain_rounds",
        "lm_model": "utility.<lm|probe>.model",
        **{
            f"lm_{k}": f"utility.lm.{k}"
            for k in ("steps", "lr", "rank", "batch_size", "validation_rows", "benchmarks", "benchmark_items")
        },
        "lm_max_tokens": "utility.<lm|probe>.max_tokens",
        **{f"probe_{k}": f"utility.probe.{k}" for k in ("dims", "ridge", "validation_rows")},
    },
    "curated_subset": {"temperature": "method.qwcs.temperature"},
    "evaluation_metrics": {"lm_steps": "steps", "lm_epochs": "epochs", "lm_test_rows": "test_rows"},
}


def moved_key_hint(asset: str, path: Sequence[str]) -> None:
    moved = MOVED_KEYS.get(asset, {}).get(path[0])
    if moved and len(path) == 1:
        raise CliError(
            f"{asset}.{path[0]} is now {asset}.{moved} (settings live under the strategy they belong to; `shed-pipeline strategies` lists them)"
        )


def set_strategy_setting(ops: dict[str, dict], asset: str, field: str, setting: str, value: Any, flag: str) -> None:
    """A flag that is a setting of the chosen strategy (--temperature: qwcs's); naming the strategies
    it applies to when the chosen one has no such setting."""
    registry = strategy_choices()[(asset, field)]
    ((name, settings),) = ops[asset][field].items()
    if setting not in {f.name for f in registry[name].fields()}:
        users = [n for n in registry.names if setting in {f.name for f in registry[n].fields()}]
        raise CliError(
            f"{flag} is a setting of the {registry.kind} {' / '.join(users)}, not of {name} (--{registry.kind} {users[0] if users else '...'})"
        )
    settings[setting] = value


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {v}")
    return v


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"shed-pipeline: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from shed_pipeline.core.selection import default_method_label

    choices = {field: registry for (_, field), registry in strategy_choices().items()}

    p = _Parser(
        prog="shed-pipeline",
        description="Shapley-based curation of instruction-tuning data (SHED) as a Dagster pipeline.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="materialize all seven assets and write the curated subset")
    r.add_argument(
        "--source",
        help="'natural-instructions', 'bigbench-chat', a JSONL/JSON/Parquet/CSV file or folder, or an s3:// object or prefix (default: $SHED_PIPELINE_SOURCE, else natural-instructions)",
    )
    r.add_argument(
        "--rows",
        type=_positive_int,
        help="deterministic sample of N rows (default 1500 for the packaged sources natural-instructions and bigbench-chat, all rows of a file)",
    )
    r.add_argument("--clusters", type=_positive_int, help="number of clusters K (default: about pool/20)")
    r.add_argument(
        "--method",
        choices=choices["method"].names,
        help=f"selection method (default {default_method_label()}, chosen by measurement; a method named here takes its own defaults: `--method qwcs` is SHED's QWCS; `shed-pipeline strategies` lists each with its settings)",
    )
    size = r.add_mutually_exclusive_group()
    size.add_argument("--fraction", type=_fraction, help="target size as a fraction of the pool (default 0.1)")
    size.add_argument(
        "--size",
        type=_size,
        help="target size as a row count, or 'auto': TS-DShapley's removal-index rule drops the lowest-valued clusters and keeps the rest",
    )
    r.add_argument(
        "--estimator",
        choices=choices["estimator"].names,
        help="Shapley estimator of the cluster proxies' values (default: knn_exact, the closed form, for the knn utility; ts_chains for probe; banzhaf_msr for lm)",
    )
    r.add_argument(
        "--utility",
        choices=choices["utility"].names,
        default="knn",
        help="utility U(S) the proxies are valued by (default knn)",
    )
    r.add_argument(
        "--permutations",
        type=_positive_int,
        help="permutations for shed_grouped / tmc, and per chain for ts_chains (default 20)",
    )
    r.add_argument(
        "--lm-model",
        help="the target LM of the lm/probe utilities and the evaluation: 'smollm2-135m-instruct' (default, from the package registry) or a local causal-LM folder",
    )
    r.add_argument(
        "--chain-rounds",
        type=_positive_int,
        help="ts_chains: rounds of chains; each proxy is valued in this many chains (default 10)",
    )
    r.add_argument(
        "--no-lm-eval",
        action="store_true",
        help="skip the language-model arms of evaluation_metrics (keep the model-free report)",
    )
    r.add_argument(
        "--eval-epochs", type=float, help="evaluation: passes of every fine-tuned arm over its own rows (default 1)"
    )
    r.add_argument(
        "--eval-steps",
        type=_positive_int,
        help="evaluation: a fixed budget of LoRA steps for every arm instead of epochs (reported as such)",
    )
    r.add_argument(
        "--random-seeds",
        type=_positive_int,
        help="evaluation: random subsets of the curated size to compare against (default 2; the benchmark uses 5)",
    )
    r.add_argument(
        "--baselines",
        help="evaluation: selection methods evaluated beside the curated subset, comma-separated (default stratified, the strongest cheap baseline measured; '' for none)",
    )
    r.add_argument(
        "--full-pool",
        action="store_true",
        help="evaluation: also fine-tune on the whole pool (as many epochs: about 10x a 10%% arm)",
    )
    r.add_argument(
        "--test-rows", type=int, help="evaluation: test rows scored per arm (default 48; 0 = the whole test split)"
    )
    r.add_argument(
        "--benchmark-items", type=int, help="evaluation: items per multiple-choice task (default 30; 0 = all)"
    )
    r.add_argument(
        "--benchmarks",
        help="comma-separated bigbench multiple-choice tasks for the evaluation (default social_iqa,strategyqa,sports_understanding; '' for none)",
    )
    r.add_argument("--samples", type=_positive_int, help="random coalitions for banzhaf_msr (default 1000)")
    r.add_argument("--temperature", type=float, help="QWCS softmax temperature (default: std of the scores)")
    r.add_argument(
        "--member-order",
        metavar="ORDER",
        help="qocs / qwcs / coverage: the order a chosen cluster's rows are taken in: 'source', 'random', or a per-row value ('knn_shapley', 'ifd'), best first (default: source for qocs and coverage, the default method; random for qwcs, as SHED)",
    )
    r.add_argument(
        "--cap", type=_positive_int, help="coverage: most rows taken from one cluster (default ceil(target / clusters))"
    )
    r.add_argument(
        "--dedup",
        type=_fraction,
        metavar="COSINE",
        help="remove near-duplicates before selection: rows of one cluster whose prompt embeddings' cosine similarity exceeds COSINE (e.g. 0.95); one of each group is kept",
    )
    r.add_argument(
        "--dedup-keep",
        metavar="ORDER",
        help="which near-duplicate is kept: 'source' (the first, default) or the best by a per-row value ('knn_shapley', 'ifd')",
    )
    r.add_argument(
        "--row-values",
        metavar="KINDS",
        help="per-row values to compute, comma-separated (default knn_shapley; 'ifd' runs the target LM over the pool). A method, --member-order or --dedup-keep that needs one adds it",
    )
    r.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    r.add_argument(
        "--full-refit",
        action="store_true",
        help="re-fit the clusters from scratch instead of refreshing the previous run's",
    )
    r.add_argument(
        "--embed-chunk",
        type=_positive_int,
        help="texts per encode call (default 512); encoded texts are saved every 30 s (embeddings.save_seconds)",
    )
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], help="compute device (default auto: CUDA when present)")
    r.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="the encoder's number format (default auto: fp16 on CUDA, bf16 on a CPU with AMX, else fp32); cached vectors are kept per format",
    )
    r.add_argument(
        "--embedding-shards",
        type=_positive_int,
        metavar="N",
        help="split embeddings into N row-id hash shards (Dagster partitions; default $SHED_EMBEDDING_SHARDS, else 1). This run computes every shard; in the UI, a backfill of embeddings runs one run per shard, side by side",
    )
    r.add_argument(
        "--out",
        help="output folder or s3:// prefix for curated.jsonl, curated.parquet, evaluation.json (default: $SHED_PIPELINE_OUT, else .shed_pipeline/out); lineage stays in the project's one database",
    )
    r.add_argument(
        "--row-id-field",
        metavar="NAME",
        help="add each curated row's id (what `shed-pipeline lineage why` takes) to curated.jsonl/.parquet under this field name; the ids are in curated.manifest.json either way",
    )
    r.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once, instead of waiting, when another run is using the project folder",
    )
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ASSET.KEY=VALUE",
        type=_setting,
        help="any asset config value, a dotted path for nested ones, e.g. proxy_shapley_scores.utility.probe.dims=8, curated_subset.method.qwcs.temperature=0.5 or evaluation_metrics.benchmarks='[\"social_iqa\"]' (JSON, else text); naming another strategy than the chosen one replaces the choice; repeatable, applied last",
    )
    r.add_argument("--json", action="store_true", help="print a machine-readable summary instead of a table")

    lin = sub.add_parser("lineage", help="query the lineage database")
    lin.add_argument(
        "--db",
        help="lineage DuckDB file (default: the project's, $SHED_PIPELINE_LINEAGE or .shed_pipeline/lineage.duckdb)",
    )
    lin.add_argument("--json", action="store_true", help="print JSON")
    lsub = lin.add_subparsers(dest="query", required=True, parser_class=_Parser)
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


@contextmanager
def _dagster_instance(dagster_home: Path):
    """The instance in `dagster_home`, created under a lock on that folder: processes that create a
    new instance at the same moment race in its SQLite migrations ("more than one head present")."""
    import dagster as dg

    from shed_pipeline.core.files import folder_lock

    with folder_lock(dagster_home, ".shed-instance.lock"):
        instance = dg.DagsterInstance.from_config(str(dagster_home))
    with instance:
        yield instance


# The instance `shed-pipeline run` creates (and `dagster dev` then uses): no telemetry, and one run
# per project at a time in the run queue (runs started by the UI, a schedule or a sensor), so that a
# second run waits queued instead of in a run worker holding the project lock.
DAGSTER_YAML = """telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: shed/project
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def _ensure_dagster_home(settings: Settings) -> Path:
    """The Dagster instance folder (DAGSTER_HOME, else <home>/dagster_home), made with DAGSTER_YAML
    when it is new."""
    path = settings.dagster_home_dir.resolve()
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    return path


def _needed_row_values(ops: dict[str, dict]) -> list[str]:
    """The per-row values the curated_subset config reads: its method's requirements, a member
    order or near-duplicate rule by value."""
    from shed_pipeline.core.row_values import ROW_VALUES

    curated = ops.get("curated_subset", {})
    method = curated.get("method")
    needed: list[str] = []
    if isinstance(method, dict) and len(method) == 1:
        ((name, settings),) = method.items()
        registry = strategy_choices()[("curated_subset", "method")]
        if name in registry:
            needed += list(registry[name].requires.get("row_values", ()))
        if isinstance(settings, dict):
            needed.append(settings.get("member_order"))
    needed.append(curated.get("dedup_keep"))
    for order in needed:  # a misspelt order fails now, not after valuation
        if isinstance(order, str) and order not in ("source", "random") and order not in ROW_VALUES:
            raise CliError(
                f"unknown member order {order!r}; choose source, random or a per-row value: {', '.join(ROW_VALUES)}"
            )
    return list(dict.fromkeys(k for k in needed if isinstance(k, str) and k in ROW_VALUES))


def _run_config(args: argparse.Namespace) -> dict:
    from shed_pipeline.core.selection import DEFAULT_METHOD, DEFAULT_METHOD_SETTINGS

    ops: dict[str, dict] = {
        "raw_dataset": {"seed": args.seed},
        "clusters": {"seed": args.seed, "full_refit": args.full_refit},
        "proxy_shapley_scores": {
            "utility": {args.utility: {}},
            "estimator": {args.estimator or DEFAULT_ESTIMATOR.get(args.utility, "banzhaf_msr"): {}},
            "seed": args.seed,
        },
        "curated_subset": {
            "method": {args.method: {}} if args.method else {DEFAULT_METHOD: dict(DEFAULT_METHOD_SETTINGS)},
            "seed": args.seed,
        },
        "evaluation_metrics": {"seed": args.seed},
    }
    if args.source:
        ops["raw_dataset"]["source"] = args.source
    if args.embed_chunk:
        ops["embeddings"] = {"chunk_texts": args.embed_chunk}
    if args.rows:
        ops["raw_dataset"]["rows"] = args.rows
    if args.clusters:
        ops["clusters"]["n_clusters"] = args.clusters
    for flag, setting in (("permutations", "permutations"), ("samples", "samples"), ("chain_rounds", "chain_rounds")):
        if getattr(args, flag):
            set_strategy_setting(
                ops, "proxy_shapley_scores", "estimator", setting, getattr(args, flag), "--" + flag.replace("_", "-")
            )
    if args.lm_model:
        ((utility, settings),) = ops["proxy_shapley_scores"]["utility"].items()
        if "model" in {f.name for f in strategy_choices()[("proxy_shapley_scores", "utility")][utility].fields()}:
            settings["model"] = args.lm_model
        ops["evaluation_metrics"]["lm_model"] = args.lm_model
    if args.no_lm_eval:
        ops["evaluation_metrics"]["lm"] = False
    evaluation = ops["evaluation_metrics"]
    for flag, key in (
        ("eval_epochs", "epochs"),
        ("eval_steps", "steps"),
        ("random_seeds", "random_seeds"),
        ("test_rows", "test_rows"),
        ("benchmark_items", "benchmark_items"),
    ):
        if getattr(args, flag) is not None:
            evaluation[key] = getattr(args, flag)
    if args.baselines is not None:
        evaluation["baselines"] = [b.strip() for b in args.baselines.split(",") if b.strip()]
        methods = strategy_choices()[("curated_subset", "method")]
        unknown = [b for b in evaluation["baselines"] if b not in methods]
        if unknown:
            raise CliError(f"--baselines: unknown method {unknown[0]!r}; choose among {', '.join(methods.names)}")
    if args.full_pool:
        evaluation["include_full_pool"] = True
    if args.benchmarks is not None:
        ops["evaluation_metrics"]["benchmarks"] = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    if args.fraction:
        ops["curated_subset"]["fraction"] = args.fraction
    if args.size == "auto":
        ops["curated_subset"]["auto_size"] = True
        ops["proxy_shapley_scores"]["removal_points"] = (
            6 if args.utility == "lm" else 21
        )  # each point is one utility evaluation
    elif args.size:
        ops["curated_subset"]["size"] = args.size
    if args.temperature is not None:
        set_strategy_setting(ops, "curated_subset", "method", "temperature", args.temperature, "--temperature")
    if args.row_id_field:
        ops["curated_subset"]["row_id_field"] = args.row_id_field
    if args.member_order:
        set_strategy_setting(ops, "curated_subset", "method", "member_order", args.member_order, "--member-order")
    if args.cap:
        set_strategy_setting(ops, "curated_subset", "method", "cap", args.cap, "--cap")
    if args.dedup is not None:
        ops["curated_subset"]["dedup_threshold"] = args.dedup
    if args.dedup_keep:
        ops["curated_subset"]["dedup_keep"] = args.dedup_keep
    if args.row_values is not None:
        ops["row_values"] = {"kinds": [k.strip() for k in args.row_values.split(",") if k.strip()]}
    if args.lm_model and "ifd" in ops.get("row_values", {}).get("kinds", []) + _needed_row_values(ops):
        ops.setdefault("row_values", {})["ifd"] = {"model": args.lm_model}
    for asset, path, value in args.set:
        apply_setting(ops, asset, path, value)
    needed = _needed_row_values(ops)
    if needed:  # what the chosen method, member order or near-duplicate rule reads is computed
        from shed_pipeline.assets.row_values import DEFAULT_KINDS

        kinds = ops.setdefault("row_values", {}).setdefault("kinds", list(DEFAULT_KINDS))
        kinds.extend(k for k in needed if k not in kinds)
    return {
        "ops": {k: {"config": v} for k, v in ops.items()},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }


# Exceptions whose message is the whole story for a user: printed without their class name.
USER_ERRORS = {
    "SourceError",
    "ValueError",
    "FileNotFoundError",
    "PermissionError",
    "AssetValueMismatch",
    "LineageError",
    "StoreLockedError",
    "ProjectBusy",
    "ProjectLockError",
    "CliError",
    "ObjectStoreError",
    "ObjectNotFound",
    "ObjectChanged",
    "RuntimeError",
}
INTERRUPTS = {"DagsterExecutionInterruptedError", "KeyboardInterrupt"}


def _no_space(text: str, step: str | None, storage: Path | str = "DAGSTER_HOME") -> str | None:
    """ "no space left on device while writing PATH (step X)" for a message that says the disk is full:
    an OSError naming its file, DuckDB naming its file, or SQLite under Dagster's own storage (whose
    "disk I/O error" means a full disk only when the disk is full: else it says what SQLite said)."""
    at = f" (step {step})" if step else ""
    found = re.search(r"No space left on device: '([^']+)'", text) or re.search(
        r'file "([^"]+)": No space left on device', text
    )
    if found:
        return f"no space left on device while writing {found.group(1)}{at}"
    if "No space left on device" in text:
        return f"no space left on device{at}"
    if "database or disk is full" in text or "disk I/O error" in text:
        try:
            full = shutil.disk_usage(storage).free < (1 << 20)
        except OSError:
            full = "database or disk is full" in text
        if full or "database or disk is full" in text:
            return f"no space left on device while writing Dagster's run storage in {storage}{at}"
        return f"cannot write Dagster's run storage in {storage} (SQLite: disk I/O error; a network filesystem's locking, or permissions){at}"
    return None


def _error_line(err) -> str:
    """One line for a step's error (a SerializableErrorInfo): the innermost user error's message,
    without its Python class path; the class name stays only for what is not a user error."""
    while err.cause is not None and err.cls_name in (
        "DagsterExecutionStepExecutionError",
        "DagsterUserCodeExecutionError",
    ):
        err = err.cause
    # Dagster's message is the exception as Python prints it: "package.module.ClassName: message".
    prefix = re.match(rf"(?:[A-Za-z_]\w*\.)*{re.escape(err.cls_name)}: ", err.message)
    text = (err.message[prefix.end() :] if prefix else err.message).strip()
    line = next((part for part in text.splitlines() if part.strip()), "") or err.cls_name
    return line if err.cls_name in USER_ERRORS else f"{err.cls_name}: {line}"


def run_events(instance, run_id: str) -> list:
    """The Dagster events of a run, from the instance's event log."""
    return [rec.dagster_event for rec in instance.all_logs(run_id) if rec.dagster_event is not None]


def _asset_of(step_key: str | None) -> str | None:
    """The asset a step belongs to: a graph-backed asset's steps are `<asset>.<op>[<share>]`."""
    return step_key.split(".", 1)[0] if step_key else step_key


def run_report(events) -> dict:
    """What a finished, failed or interrupted run did, from its Dagster events: the assets
    materialized, the step that failed and why, failed checks, and the evaluation arms done so far."""
    from dagster import DagsterEventType

    report: dict[str, Any] = {
        "done": [],
        "failed_step": None,
        "error": None,
        "error_classes": set(),
        "interrupted": False,
        "failed_checks": [],
        "arms": None,
    }
    for ev in events:
        if ev.event_type == DagsterEventType.ASSET_MATERIALIZATION and _asset_of(ev.step_key) not in report["done"]:
            report["done"].append(_asset_of(ev.step_key))
        elif ev.event_type == DagsterEventType.ASSET_OBSERVATION:
            meta = ev.event_specific_data.asset_observation.metadata
            if "arms_done" in meta:
                report["arms"] = (meta["arms_done"].value, meta["arms_total"].value)
        elif ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            check = ev.event_specific_data
            if not check.passed:
                report["failed_checks"].append(
                    f"{check.asset_key.to_user_string()}: check {check.check_name} failed: {check.description or ''}".rstrip(
                        ": "
                    )
                )
        elif ev.event_type == DagsterEventType.STEP_FAILURE and report["failed_step"] is None:
            report["failed_step"] = _asset_of(ev.step_key)
            err = ev.step_failure_data.error if ev.step_failure_data else None
            chain = err
            while chain is not None:  # the error and its causes, by class name (what the event keeps)
                report["error_classes"].add(chain.cls_name)
                chain = chain.cause
            report["interrupted"] = bool(report["error_classes"] & INTERRUPTS)
            report["error"] = _error_line(err) if err is not None else None
    return report


def failure_message(events) -> str:
    """The one line a failed run's events come down to."""
    return _failure_message(run_report(events))


def _failure_message(report: dict, storage: Path | str = "DAGSTER_HOME") -> str:
    if report["failed_checks"] and (
        report["error"] is None or "DagsterAssetCheckFailedError" in report["error_classes"]
    ):
        return report["failed_checks"][0]  # a blocking check stopped the run: its description says why
    if report["failed_step"]:
        step, error = report["failed_step"], report["error"] or "failed"
        return _no_space(error, step, storage) or f"{step}: {error}"
    if report["failed_checks"]:
        return report["failed_checks"][0]
    return "the run failed (see the Dagster UI for the event log)"


def _interrupted(instance, run_id: str) -> Interrupted:
    """The interrupt, saying what the run finished; if its event log cannot be read (a full disk),
    still the interrupt."""
    try:
        report = run_report(run_events(instance, run_id))
    except Exception:
        report = {"done": [], "failed_step": None, "arms": None}
    return Interrupted(_interrupted_message(report, run_id))


def _interrupted_message(report: dict, run_id: str) -> str:
    running = report["failed_step"] or next((a for a in ASSET_ORDER if a not in report["done"]), None)
    done = ", ".join(report["done"]) or "nothing"
    text = (
        f"interrupted during {running} (run {run_id}); finished: {done}" if running else f"interrupted (run {run_id})"
    )
    if report["arms"] is not None:
        arms_done, arms_total = report["arms"]
        text += f"; evaluation arms: {arms_done} of {arms_total} done, kept in the cache (the next run reuses them)"
    return text + "; cached embeddings and utility values are kept: run the same command again to resume"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a `kill`, a container stopping) ends the run like Ctrl-C: reported, not cut off."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _StorageErrorsInOneLine:
    """sys.stderr during a run, except that Dagster's own report of a failed event-log write (the
    SQLAlchemy error with its SQL and a dump of the event, many lines) becomes one line, said once:
    the run's final error line says what happened (a full disk, usually)."""

    PREFIX = "Exception while writing logger call to event log: "

    def __init__(self, stream):
        self.stream = stream
        self.said = False

    def write(self, text: str) -> int:
        if not text.startswith(self.PREFIX):
            return self.stream.write(text)
        if not self.said:
            self.said = True
            cause = (
                text[len(self.PREFIX) :].strip().splitlines()[0]
                if text[len(self.PREFIX) :].strip()
                else "unknown error"
            )
            self.stream.write(
                f"{time.strftime('%H:%M:%S')} run: Dagster could not write its event log ({printable(cause)})\n"
            )
        return len(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextmanager
def _quiet_storage_errors() -> Iterator[None]:
    previous = sys.stderr
    sys.stderr = _StorageErrorsInOneLine(previous)
    try:
        yield
    finally:
        sys.stderr = previous


def _dagster_storage() -> Path | str:
    """The Dagster instance folder this command uses, for a message about its disk."""
    try:
        return Settings.from_env().dagster_home_dir
    except ValueError:  # the environment is what failed
        return "DAGSTER_HOME"


def _quiet_progress_bars() -> None:
    """transformers' and huggingface_hub's own bars ("Loading weights") redraw a line many times;
    our progress lines suffice."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    disable_progress_bars()
    transformers_logging.disable_progress_bar()


def _stderr(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} run: {printable(message)}", file=sys.stderr, flush=True)


def _older_lineage_beside(out: Path, lineage: Path) -> str | None:
    """A hint when --out holds a lineage database that an older version wrote next to the results."""
    old = out / "lineage.duckdb"
    if old.is_file() and old.resolve() != lineage.resolve():
        return f"{old} is an older lineage database (earlier versions kept lineage next to the results); this project's is {lineage}: query the old one with `shed-pipeline lineage --db {old} runs`"
    return None


def _benchmarks_to_check(config: dict) -> list[str]:
    """The benchmark names a run's config asks for beyond the defaults (checked before any work).
    Only lists of names: a value of another type is left to Dagster's config check to refuse."""
    ops = config.get("ops", {})
    evaluation = ops.get("evaluation_metrics", {}).get("config", {})
    utility = ops.get("proxy_shapley_scores", {}).get("config", {}).get("utility")
    lm_utility = utility.get("lm") if isinstance(utility, dict) else None
    lists = [
        evaluation.get("benchmarks") if evaluation.get("lm", True) else None,
        lm_utility.get("benchmarks") if isinstance(lm_utility, dict) else None,
    ]
    return list(
        dict.fromkeys(name for names in lists if isinstance(names, list) for name in names if isinstance(name, str))
    )


def check_strategy_requirements(config: dict) -> None:
    """Each chosen strategy's requirements (an estimator's utility), checked before any work."""
    from shed_pipeline.core.strategies import StrategyError

    ops = config.get("ops", {})
    chosen = {}
    for (asset, field), registry in strategy_choices().items():
        value = ops.get(asset, {}).get("config", {}).get(field)
        if isinstance(value, dict) and len(value) == 1:
            chosen[registry.kind] = next(iter(value))
    try:
        for registry in strategy_choices().values():
            if registry.kind in chosen:
                registry.check_requirements(
                    chosen[registry.kind], **{k: v for k, v in chosen.items() if k != registry.kind}
                )
    except StrategyError as exc:
        raise CliError(str(exc)) from None


def _metadata(result, node: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mat in result.asset_materializations_for_node(node):
        for k, v in mat.metadata.items():
            val = getattr(v, "value", v)
            if (
                isinstance(val, (int, float, str, bool, dict, list)) or val is None
            ):  # dict/list: JSON metadata (quarantine reasons, ...)
                out[k] = val
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from shed_pipeline.core.benchmarks import check_benchmarks
    from shed_pipeline.core.objectstore import S3Uri, is_s3
    from shed_pipeline.core.project_lock import Holder, project_lock
    from shed_pipeline.core.shards import parse_shard_count
    from shed_pipeline.core.sources import PACKAGED_SOURCES
    from shed_pipeline.loggers import StepTracker
    from shed_pipeline.resources import adopt_legacy_lineage

    StepTracker.last_step = None  # a step named in an error is this run's
    settings = Settings.from_env()
    if (
        args.source
        and args.source not in PACKAGED_SOURCES
        and not is_s3(args.source)
        and not os.path.lexists(Path(args.source).expanduser())
    ):
        raise CliError(f"{args.source}: no such file or folder")
    run_config = _run_config(args)
    check_strategy_requirements(run_config)  # e.g. knn_exact with the probe utility fails now, not after embedding
    for asset in ("proxy_shapley_scores", "row_values"):  # the assets whose work fans out over workers
        workers = run_config.get("ops", {}).get(asset, {}).get("config", {}).get("workers", 1)
        if isinstance(workers, int) and workers > 1:
            _stderr(
                f"{asset}.workers={workers}: this command runs every step in one process, so the {workers} shares run one after another; launch shed_curation_job from the Dagster UI or `dagster job launch` to run them side by side"
            )
    wanted = _benchmarks_to_check(run_config)
    if wanted:  # a misspelt benchmark fails now, not after the whole pipeline ran
        check_benchmarks(wanted, settings.downloads, log=_stderr, archive=settings.bigbench_archive)
    # Results go to --out, else $SHED_PIPELINE_OUT, else .shed_pipeline/out; an s3:// location gets
    # them uploaded there, from a local copy under .shed_pipeline/out. Lineage is the project's one
    # database whatever --out is, so every run of the project is found in one place.
    target = args.out or settings.out or str(settings.home / "out")
    out = settings.home / "out" if is_s3(target) else Path(target).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    published = (lambda name: str(S3Uri.parse(target).child(name))) if is_s3(target) else (lambda name: str(out / name))
    settings = settings.replace(
        out=target if is_s3(target) else str(out.resolve()),
        device=args.device or settings.device,
        precision=args.precision or settings.precision,
        embedding_shards=(
            parse_shard_count(str(args.embedding_shards), where="--embedding-shards")
            if args.embedding_shards
            else settings.embedding_shards
        ),
    )
    _quiet_progress_bars()
    dagster_home = _ensure_dagster_home(settings)
    import warnings

    import dagster as dg

    # Content-based data versions (Output(data_version=...)) are what make refreshes incremental;
    # Dagster flags the parameter as beta on every materialization, which is noise to a CLI user.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)

    from shed_pipeline.definitions import build_definitions

    job = build_definitions(settings, concise_logs=True).resolve_job_def("shed_curation_job")
    run_id = str(uuid.uuid4())
    t0 = time.perf_counter()
    # execute_in_process runs without the job's executor, so the CLI takes the project lock itself.
    with (
        _sigterm_as_interrupt(),
        project_lock(settings.home, Holder(run_id=run_id, via="shed-pipeline run"), log=_stderr, wait=not args.no_wait),
        _dagster_instance(dagster_home) as instance,
    ):
        for line in filter(None, [adopt_legacy_lineage(settings), _older_lineage_beside(out, settings.lineage_path)]):
            _stderr(line)
        with _quiet_storage_errors():
            try:
                result = job.execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    raise_on_error=False,
                    run_id=run_id,
                    tags={"shed/launched_by": "shed-pipeline run"},
                )
            except dg.DagsterInvalidConfigError as exc:  # e.g. a misspelt --set key: name it, not the whole schema
                raise CliError(
                    "invalid config: " + "; ".join(e.message.split(" Expected")[0] for e in exc.errors)
                ) from None
            except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):  # Ctrl-C / SIGTERM
                raise _interrupted(instance, run_id) from None
        if not result.success:
            report = run_report(run_events(instance, run_id))
            if report["interrupted"]:
                raise Interrupted(_interrupted_message(report, run_id))
            raise CliError(_failure_message(report, dagster_home))
        lm_rows = _lm_summary(out / "evaluation.json")  # read while the project is still this run's
        comparison = _comparison_summary(out / "evaluation.json")
    wall = time.perf_counter() - t0
    meta = {node: _metadata(result, node) for node in ASSET_ORDER}
    summary = {
        "run_id": result.run_id,
        "success": True,
        "wall_seconds": round(wall, 3),
        "seconds": {n: meta[n].get("seconds") for n in ASSET_ORDER},
        "counts": {
            "rows_in": meta["raw_dataset"].get("rows_in"),
            "rows_ok": meta["raw_dataset"].get("rows_ok"),
            "rows_quarantined": meta["raw_dataset"].get("rows_quarantined"),
            "quarantine_reasons": meta["raw_dataset"].get("quarantine_reasons"),
            "rows_pool": meta["raw_dataset"].get("rows_pool"),
            "rows_validation": meta["raw_dataset"].get("rows_validation"),
            "rows_test": meta["raw_dataset"].get("rows_test"),
            "rows_embedded": meta["embeddings"].get("rows_embedded"),
            "rows_embedding_reused": meta["embeddings"].get("rows_reused"),
            "clusters": meta["clusters"].get("n_clusters"),
            "utility_evaluations": meta["proxy_shapley_scores"].get("utility_evaluations"),
            "selected": meta["curated_subset"].get("selected"),
        },
        "work": _work(meta),
        "assets": meta,
        "outputs": {
            "curated_jsonl": published("curated.jsonl"),
            "curated_parquet": published("curated.parquet"),
            "curated_manifest": published("curated.manifest.json"),
            "lineage_db": str(settings.lineage_path),
            "evaluation_json": published("evaluation.json"),
        },
        "dagster_home": str(dagster_home),
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    c, s, ev = summary["counts"], summary["seconds"], meta["evaluation_metrics"]
    w = summary["work"]
    print(f"\nshed-pipeline run {result.run_id}  ({wall:.1f}s)")
    print(_table(["asset", "work done", "work reused"], _work_rows(w)))
    print(
        _table(
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
    print(_table(["asset", "seconds"], [[n, f"{s[n]:.1f}" if s[n] is not None else "-"] for n in ASSET_ORDER]))
    if "utility_subset" in ev:
        print(
            _table(
                ["held-out utility", "value"],
                [
                    ["curated subset", f"{ev['utility_subset']:.4f}"],
                    ["random, same size (mean)", f"{ev.get('utility_random_mean', float('nan')):.4f}"],
                    ["full pool", f"{ev.get('utility_full_pool', float('nan')):.4f}"],
                ],
            )
        )
    if lm_rows:
        print(_table(*lm_rows))
    if comparison:
        header, rows = comparison
        print(
            _table(header, rows)
            + "paired differences to the random arms' mean over the same test rows / items: a 95% interval that holds 0, or |z| < 2, is no difference\n"
        )
    for k, v in summary["outputs"].items():
        print(f"{k:>16}: {printable(v)}")
    print(
        f"{'dagster_home':>16}: {printable(summary['dagster_home'])}  (DAGSTER_HOME for `dagster dev` to show this run)"
    )
    return 0


def _comparison_summary(path: Path) -> tuple[list[str], list[list[str]]] | None:
    """The arms against random (difference, 95% interval, z), from the run's evaluation report."""
    from shed_pipeline.core.comparison import summary_table

    try:
        comparisons = (json.loads(path.read_text()).get("lm") or {}).get("comparisons")
    except (OSError, ValueError):
        return None
    return summary_table(comparisons) if comparisons else None


def _lm_summary(path: Path) -> tuple[list[str], list[list[str]]] | None:
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


def _work(meta: dict[str, dict]) -> dict[str, dict]:
    """Per asset, the work this run did and the work it reused: what a refresh is judged by."""
    raw, emb, cl, sc = meta["raw_dataset"], meta["embeddings"], meta["clusters"], meta["proxy_shapley_scores"]
    return {
        "raw_dataset": {
            "rows_new": raw.get("rows_added"),
            "rows_removed": raw.get("rows_removed"),
            "rows_edited": raw.get("rows_edited"),
            "rows_unchanged": raw.get("rows_unchanged"),
            "previous_run": raw.get("previous_run"),
        },
        "embeddings": {
            "rows_embedded": emb.get("rows_embedded"),
            "rows_reused": emb.get("rows_reused"),
            "texts_encoded": emb.get("texts_encoded"),
            "texts_reused": emb.get("texts_reused"),
        },
        "clusters": {
            "full_refit": cl.get("full_refit"),
            "refit_reason": cl.get("refit_reason"),
            "clusters_affected": cl.get("clusters_affected"),
            "clusters_total": cl.get("clusters_total"),
            "rows_new": cl.get("rows_new"),
            "rows_removed": cl.get("rows_removed"),
        },
        "proxy_shapley_scores": {
            "players_new": sc.get("players_new"),
            "utility_evaluations": sc.get("utility_evaluations"),
            "utility_cache_hits": sc.get("utility_cache_hits"),
            "utility_cache_hits_earlier_runs": sc.get("utility_cache_hits_earlier_runs"),
            "coalitions": sc.get("coalitions"),
            "coalitions_with_new_players": sc.get("coalitions_with_new_players"),
        },
    }


def _work_rows(w: dict[str, dict]) -> list[list[str]]:
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[printable(h) for h in headers]] + [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))  # noqa: E731
    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *[line(r) for r in cells[1:]]]) + "\n"


def cmd_lineage(args: argparse.Namespace) -> int:
    from shed_pipeline.core.lineage import LineageStore

    settings = Settings.from_env()
    db = Path(args.db).expanduser() if args.db else settings.lineage_path
    if not args.db and not db.exists() and settings.legacy_lineage_path.is_file():
        db = settings.legacy_lineage_path  # not moved yet (the next run moves it): read it where it is
    store = LineageStore(db)
    if args.query == "runs":
        runs = store.runs()
        if args.json:
            print(json.dumps(runs, indent=2, default=str))
        elif not runs:
            print(f"no runs in {printable(db)}")
        else:
            print(
                _table(
                    [
                        "run_id",
                        "started",
                        "source",
                        "rows",
                        "quarantined",
                        "added",
                        "removed",
                        "clusters",
                        "affected",
                        "selected",
                        "method",
                    ],
                    [
                        [
                            r["run_id"],
                            str(r["started_at"])[:19],
                            r["source"] or "-",
                            r["rows_ok"],
                            r["rows_quarantined"],
                            r["rows_added"],
                            r["rows_removed"],
                            r["clusters"],
                            r["clusters_affected"],
                            r["selected"],
                            r["method"] or "-",
                        ]
                        for r in runs
                    ],
                )
            )
        return 0
    if args.query == "why":
        w = store.why(args.row_id, args.run)
        if args.json:
            print(json.dumps(w, indent=2, default=str))
        else:
            for k, v in w.items():
                print(f"{k:>16}: {printable(v)}")
        return 0
    d = store.diff(args.run_a, args.run_b)
    if args.json:
        print(json.dumps(d, indent=2, default=str))
    else:
        print(f"{d['run_a']} -> {d['run_b']}: {d['kept']} kept, {len(d['added'])} added, {len(d['removed'])} removed")
        for a in d["added"]:
            print(f"+ {a['row_id']}  {printable(a['reason'])}")
        for r in d["removed"]:
            print(f"- {r['row_id']}  {r['status_in_b']}: {printable(r['reason'])}")
    return 0


def cmd_benchmarks(args: argparse.Namespace) -> int:
    from shed_pipeline.core.benchmarks import DEFAULT_TASKS, choice_index

    settings = Settings.from_env()
    index = choice_index(settings.downloads, log=_stderr, archive=settings.bigbench_archive)
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
    print(_table(["benchmark", "items", "note"], sorted(rows)))
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
        print(_table([r.kind, "what it does", "settings (defaults)"], rows))
    print(
        "choose with --utility / --estimator / --method; settings with --set, e.g. --set curated_subset.method.qwcs.temperature=0.5"
    )
    return 0


COMMANDS = {"run": cmd_run, "lineage": cmd_lineage, "benchmarks": cmd_benchmarks, "strategies": cmd_strategies}


def _error_message(exc: BaseException) -> str:
    """One line for an exception that reached the command: its message, or for a full disk what was
    being written; the class name only when the error is not one a user caused."""
    from shed_pipeline.loggers import StepTracker

    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for e in chain:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            where = f" while writing {e.filename}" if e.filename else ""
            return f"no space left on device{where}" + (
                f" (step {StepTracker.last_step})" if StepTracker.last_step else ""
            )
        full = _no_space(str(e), StepTracker.last_step, _dagster_storage())
        if full:
            return full
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    return (
        text
        if type(exc).__name__ in USER_ERRORS or isinstance(exc, (CliError, ValueError, FileNotFoundError))
        else f"{type(exc).__name__}: {text}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"shed-pipeline: {printable(exc) if isinstance(exc, Interrupted) else 'interrupted'}", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback: the message names the file/flag and the reason
        print(f"shed-pipeline: error: {printable(_error_message(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
