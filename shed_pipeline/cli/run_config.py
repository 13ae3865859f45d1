"""The run config of `shed-pipeline run`, built from its flags and `--set ASSET.KEY=VALUE` settings,
and the checks a run makes before any work (strategy requirements, benchmark names)."""

import argparse
from typing import Any, Sequence

from shed_pipeline.cli.errors import CliError
from shed_pipeline.core.valuation.preparation import default_estimator


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
            f"{asset}.{path[0]} is now {asset}.{moved} (settings live under the strategy they belong to; "
            "`shed-pipeline strategies` lists them)"
        )


def set_strategy_setting(ops: dict[str, dict], asset: str, field: str, *, setting: str, value: Any, flag: str) -> None:
    """A flag that is a setting of the chosen strategy (--temperature: qwcs's); naming the strategies
    it applies to when the chosen one has no such setting."""
    registry = strategy_choices()[(asset, field)]
    ((name, settings),) = ops[asset][field].items()
    if setting not in {f.name for f in registry[name].fields()}:
        users = [n for n in registry.names if setting in {f.name for f in registry[n].fields()}]
        raise CliError(
            f"{flag} is a setting of the {registry.kind} {' / '.join(users)}, not of {name} (--{registry.kind} "
            f"{users[0] if users else '...'})"
        )
    settings[setting] = value


def needed_row_values(ops: dict[str, dict]) -> list[str]:
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


def run_config_from_args(args: argparse.Namespace) -> dict:
    from shed_pipeline.core.selection import DEFAULT_METHOD, DEFAULT_METHOD_SETTINGS

    ops: dict[str, dict] = {
        "raw_dataset": {"seed": args.seed},
        "clusters": {"seed": args.seed, "full_refit": args.full_refit},
        "proxy_shapley_scores": {
            "utility": {args.utility: {}},
            "estimator": {args.estimator or default_estimator(args.utility): {}},
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
                ops,
                "proxy_shapley_scores",
                "estimator",
                setting=setting,
                value=getattr(args, flag),
                flag="--" + flag.replace("_", "-"),
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
        set_strategy_setting(
            ops, "curated_subset", "method", setting="temperature", value=args.temperature, flag="--temperature"
        )
    if args.row_id_field:
        ops["curated_subset"]["row_id_field"] = args.row_id_field
    if args.member_order:
        set_strategy_setting(
            ops, "curated_subset", "method", setting="member_order", value=args.member_order, flag="--member-order"
        )
    if args.cap:
        set_strategy_setting(ops, "curated_subset", "method", setting="cap", value=args.cap, flag="--cap")
    if args.dedup is not None:
        ops["curated_subset"]["dedup_threshold"] = args.dedup
    if args.dedup_keep:
        ops["curated_subset"]["dedup_keep"] = args.dedup_keep
    if args.row_values is not None:
        ops["row_values"] = {"kinds": [k.strip() for k in args.row_values.split(",") if k.strip()]}
    if args.lm_model and "ifd" in ops.get("row_values", {}).get("kinds", []) + needed_row_values(ops):
        ops.setdefault("row_values", {})["ifd"] = {"model": args.lm_model}
    for asset, path, value in args.set:
        apply_setting(ops, asset, path, value)
    needed = needed_row_values(ops)
    if needed:  # what the chosen method, member order or near-duplicate rule reads is computed
        from shed_pipeline.assets.row_values import DEFAULT_KINDS

        kinds = ops.setdefault("row_values", {}).setdefault("kinds", list(DEFAULT_KINDS))
        kinds.extend(k for k in needed if k not in kinds)
    return {
        "ops": {k: {"config": v} for k, v in ops.items()},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }


def benchmarks_to_check(config: dict) -> list[str]:
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
