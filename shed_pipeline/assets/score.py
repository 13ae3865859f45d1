"""proxy_shapley_scores: Shapley values of the cluster proxies under a pluggable utility and estimator."""

import time

import dagster as dg
import numpy as np
import polars as pl

from shed_pipeline.assets._common import CODE_VERSION, first_by_id, frame_version, gpu_step, input_runs, png_md, upstream_data_changed
from shed_pipeline.core import plots
from shed_pipeline.core.estimators import ESTIMATORS, estimate
from shed_pipeline.core.pins import pinned_validation
from shed_pipeline.core.removal import removal_curve
from shed_pipeline.core.utilities import UTILITIES, CountingUtility, EvaluationStore, KNNUtility, utility_key
from shed_pipeline.core.utilities.cache import fingerprint_arrays
from shed_pipeline.resources import ComputeResource, LineageResource, PathsResource

VALIDATION_PIN = "validation_snapshot.parquet"


class ProxyShapleyConfig(dg.Config):
    estimator: str = "knn_exact"  # knn_exact | shed_grouped | tmc | banzhaf_msr | ts_chains | exact (K <= 16)
    utility: str = "knn"
    k: int = 5  # neighbours of the knn utility
    permutations: int = 20  # shed_grouped / tmc; ts_chains: per chain (SHED's run.sh uses 20)
    group_size: int | None = None  # shed_grouped; default ceil(K / 50) (SHED: 60 for K = 3000)
    truncation_tolerance: float = 0.0  # tmc; 0 = never truncate
    samples: int = 1000  # banzhaf_msr: random coalitions, each updating every player
    chain_size: int | None = None  # ts_chains: players per chain (default 5% of K, at least 8)
    chain_rounds: int = 10  # ts_chains: partitions into chains; each player is valued in this many chains
    seed: int = 0
    # Score against the validation rows as of the last cluster fit (changes wait for the next fit), so
    # that a refresh can reuse cached utility values; false re-scores against the current rows.
    freeze_validation: bool = True
    # utility "lm": LoRA fine-tune of the target LM on the coalition's proxies, scored on validation rows.
    lm_model: str = "smollm2-135m-instruct"  # the packaged SmolLM2-135M-Instruct, or a local model folder
    lm_steps: int = 8
    lm_lr: float = 1e-3
    lm_rank: int = 8
    lm_batch_size: int = 8
    lm_max_tokens: int = 256
    lm_validation_rows: int = 64  # 0 = every validation row (each evaluation scores all of them)
    # SHED scores by multiple-choice accuracy (MMLU): add bigbench multiple-choice items to U(S) (their
    # accuracy is added to the log-likelihood). Items come from the other end of the order the
    # evaluation samples from, so the two never share items.
    lm_benchmarks: list[str] = []
    lm_benchmark_items: int = 32
    # utility "probe" (TS-DShapley): ridge regression from the LM's prompt to response representations.
    probe_dims: int = 16  # PCA components
    probe_ridge: float = 20.0
    probe_validation_rows: int = 256  # 0 = every validation row
    # TS-DShapley's removal-index rule (needed by curated_subset's auto_size): U after dropping the r
    # lowest-valued proxies, for r on a grid of this many points up to removal_max_fraction of K; the
    # best r is kept. 0 = off (each point is one utility evaluation: a fine-tune with the lm utility).
    removal_points: int = 0
    removal_max_fraction: float = 0.5


# What a validation snapshot keeps: enough for any utility (texts for a language model, vectors for knn).
# `messages` (a chat row's prompt turns, JSON) only where the rows have it: frames and snapshots
# written before it have none, and their rows are read as Alpaca rows (lm.messages_column).
VALIDATION_COLUMNS = ["row_id", "instruction", "input", "output", "messages", "embedding"]


def validation_rows(raw_dataset: pl.DataFrame, embeddings: pl.DataFrame) -> pl.DataFrame:
    """The current validation split with its vectors, in row order."""
    val = raw_dataset.filter(pl.col("split") == "validation").join(embeddings, on="row_id", how="inner", maintain_order="left")
    return val.select([c for c in VALIDATION_COLUMNS if c != "messages" or c in val.columns])


def build_utility(config: ProxyShapleyConfig, raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, proxy_ids: list[str], validation: pl.DataFrame, device: str = "cpu", cache_dir=None, log=print, feature_cache=None):
    """The utility over the proxies, scored on the `validation` rows; its cache key and description;
    and each player's cache identity: row id and a digest of its vector, so that a value cached
    under other vectors (another embedding model) is never reused (for the LM utilities, also of a
    chat row's turns: lm.prompt_keys)."""
    if config.utility not in UTILITIES:
        raise ValueError(f"unknown utility {config.utility!r}; choose one of {', '.join(UTILITIES)}")
    if config.estimator == "knn_exact" and config.utility != "knn":
        raise ValueError(f"estimator knn_exact is the closed form of the knn utility; with utility {config.utility!r} choose banzhaf_msr, ts_chains, tmc, shed_grouped or exact")
    if validation.height == 0:
        raise ValueError("the validation split is empty: raise validation_fraction or add rows")
    rows = raw_dataset.join(embeddings, on="row_id", how="inner")
    proxies = pl.DataFrame({"row_id": proxy_ids}).join(rows, on="row_id", how="left", maintain_order="left")
    proxy_vecs = np.asarray(proxies["embedding"].to_numpy(), dtype=np.float32)
    identities = [f"{rid}:{fingerprint_arrays(v)[:16]}" for rid, v in zip(proxy_ids, proxy_vecs, strict=True)]
    if config.utility in ("lm", "probe"):  # a language model's values also depend on how a chat row's turns are prompted
        from shed_pipeline.core.lm import messages_column, prompt_keys

        identities = [f"{key}:{fingerprint_arrays(v)[:16]}" for key, v in zip(prompt_keys(proxy_ids, messages_column(proxies)), proxy_vecs, strict=True)]
    if config.utility == "lm":
        return _lm_utility(config, proxies, validation, device, cache_dir, log) + (identities,)
    if config.utility == "probe":
        return _probe_utility(config, proxies, validation, device, cache_dir, feature_cache, log) + (identities,)
    val_vecs = validation["embedding"].to_numpy()
    utility = KNNUtility(proxy_vecs, proxies["output"].to_list(), val_vecs, validation["output"].to_list(), k=config.k)
    # Everything U(S) depends on besides S: the settings and the validation rows (ids, vectors, answers).
    settings = {"k": config.k, "match": "token_f1/v1"}
    data = fingerprint_arrays(validation["row_id"].to_list(), np.asarray(val_vecs, dtype=np.float32), validation["output"].to_list())
    return utility, utility_key(config.utility, settings, data), {"utility": config.utility, "settings": settings, "validation_rows": validation.height, "validation_fingerprint": data}, identities


def _lm_utility(config: ProxyShapleyConfig, proxies: pl.DataFrame, validation: pl.DataFrame, device: str, cache_dir, log):
    from shed_pipeline.core import lm
    from shed_pipeline.core.utilities.lm import LMSettings, LMUtility

    path = lm.resolve_lm(config.lm_model, cache_dir, log)
    model, tok = lm.load_lm(path, device=device)
    # A fixed subset of the validation rows (the first by row id): each evaluation scores all of them.
    val = first_by_id(validation, config.lm_validation_rows)
    settings = LMSettings(steps=config.lm_steps, lr=config.lm_lr, rank=config.lm_rank, alpha=2 * config.lm_rank, batch_size=config.lm_batch_size, max_tokens=config.lm_max_tokens, seed=config.seed)
    items = []
    if config.lm_benchmarks:
        from shed_pipeline.core.benchmarks import load_choice_items

        raw = load_choice_items(config.lm_benchmarks, config.lm_benchmark_items, config.seed, cache_dir, log, from_end=True)  # never the evaluation's items
        items = [it for task in config.lm_benchmarks for it in lm.choice_items(tok, raw[task])]
    player_prompts = lm.prompt_texts(tok, proxies["instruction"], proxies["input"], lm.messages_column(proxies), log)
    val_prompts = lm.prompt_texts(tok, val["instruction"], val["input"], lm.messages_column(val), log)
    utility = LMUtility(model, tok, player_prompts, proxies["output"].to_list(), val_prompts, val["output"].to_list(), settings, items, log=log)
    # U(S) depends on the model's weights, the fine-tune settings, the device's arithmetic, the
    # validation rows (ids and texts; the ids are content hashes), how prompts are rendered (chat
    # rows' turns) and the multiple-choice items.
    key_settings = {"model": lm.model_fingerprint(path), **settings.as_dict(), "device": lm.device_signature(device), "prompt": lm.PROMPT_FORMAT, "score": "val_loglik_per_token/v1"}
    if items:
        key_settings["choice_items"] = fingerprint_arrays([f"{it.prompt}\x00{chr(31).join(it.choices)}\x00{it.answer}" for it in items])
    data = fingerprint_arrays(lm.prompt_keys(val["row_id"], lm.messages_column(val)))
    return utility, utility_key("lm", key_settings, data), {"utility": "lm", "settings": key_settings, "validation_rows": val.height, "validation_fingerprint": data, "model_path": str(path)}


def _prompt_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's prompt key (lm.prompt_keys) and the texts its prompt and target are built from;
    `messages` null where the frame has none (a snapshot written before it)."""
    from shed_pipeline.core import lm

    messages = pl.col("messages").cast(pl.Utf8) if "messages" in frame.columns else pl.lit(None, pl.Utf8).alias("messages")
    rows = frame.select("row_id", "instruction", "input", "output", messages)
    return rows.with_columns(pl.Series("key", lm.prompt_keys(rows["row_id"], rows["messages"]), dtype=pl.Utf8))


def _probe_utility(config: ProxyShapleyConfig, proxies: pl.DataFrame, validation: pl.DataFrame, device: str, cache_dir, feature_cache, log):
    from shed_pipeline.core import lm
    from shed_pipeline.core.embedding import EmbeddingCache
    from shed_pipeline.core.progress import Progress
    from shed_pipeline.core.utilities.probe import ProbeSettings, ProbeUtility

    path = lm.resolve_lm(config.lm_model, cache_dir, log)
    fingerprint = lm.model_fingerprint(path)
    val = first_by_id(validation, config.probe_validation_rows)
    # The LM's features are cached by prompt key (row id, and a chat row's turns) like embeddings: a
    # refresh computes new rows only.
    feature_id = f"lm-penultimate/v1:{fingerprint}:{config.lm_max_tokens}:{lm.device_signature(device)}"
    proxy_rows, val_rows = _prompt_rows(proxies), _prompt_rows(val)
    rows = pl.concat([proxy_rows, val_rows]).unique("key", keep="first", maintain_order=True)
    cache = EmbeddingCache(feature_cache)
    missing = set(cache.missing(feature_id, rows["key"].to_list()))
    if missing:
        todo = rows.filter(pl.col("key").is_in(list(missing)))
        log(f"probe: LM features for {todo.height} rows ({rows.height - todo.height} cached)")
        model, tok = lm.load_lm(path, device=device)
        prompts, outputs, ids = lm.prompt_texts(tok, todo["instruction"], todo["input"], todo["messages"], log), todo["output"].to_list(), todo["key"].to_list()
        progress = Progress(todo.height, "probe features", log, unit="rows")
        for s in range(0, todo.height, 256):  # cached chunk by chunk: an interrupted run keeps its work
            xs, ys = lm.penultimate_features(model, tok, prompts[s : s + 256], outputs[s : s + 256], batch_size=config.lm_batch_size, max_tokens=config.lm_max_tokens, progress=progress)
            cache.put(feature_id, ids[s : s + 256], np.hstack([xs, ys]))
    feats = lambda ids: cache.get(feature_id, ids)  # noqa: E731
    p, v = feats(proxy_rows["key"].to_list()), feats(val_rows["key"].to_list())
    h = p.shape[1] // 2
    settings = ProbeSettings(dims=config.probe_dims, ridge=config.probe_ridge)
    utility = ProbeUtility(p[:, :h], p[:, h:], v[:, :h], v[:, h:], settings)
    key_settings = {"features": feature_id, **settings.as_dict(), "score": "ridge_r2/v1"}
    data = fingerprint_arrays(val_rows["key"].to_list())
    return utility, utility_key("probe", key_settings, data), {"utility": "probe", "settings": key_settings, "validation_rows": val.height, "validation_fingerprint": data, "model_path": str(path)}


@dg.asset(group_name="valuation", code_version=CODE_VERSION, kinds={"python", "duckdb"}, **gpu_step(), automation_condition=upstream_data_changed())
def proxy_shapley_scores(context: dg.AssetExecutionContext, config: ProxyShapleyConfig, raw_dataset: pl.DataFrame, embeddings: pl.DataFrame, clusters: pl.DataFrame, compute: ComputeResource, paths: PathsResource, lineage: LineageResource) -> dg.Output[pl.DataFrame]:
    """One Shapley value per cluster proxy (players = proxies, utility measured on the validation
    split), with its rank (1 = most valuable) and, for sampling estimators, a standard error.
    Every utility evaluation is cached in DuckDB by (utility, validation data, coalition's proxy
    identities: row id and vector digest): a refresh evaluates only coalitions it has never seen, and permutations are drawn by
    cluster id so that unchanged coalitions recur."""
    if config.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {config.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    t0 = time.perf_counter()
    proxy_ids = clusters["proxy_row_id"].to_list()
    current_val = validation_rows(raw_dataset, embeddings)
    fit_id = clusters["fit_id"][0] if clusters.height else ""
    others = raw_dataset.filter(pl.col("split") != "validation")["row_id"].to_list()
    pin = pinned_validation(paths.state(VALIDATION_PIN), fit_id, current_val, others, freeze=config.freeze_validation)
    inner, key, description, identities = build_utility(config, raw_dataset, embeddings, proxy_ids, pin.rows, compute.torch_device(), paths.cache(), context.log.info, paths.embedding_cache_db())
    store = lineage.store()
    before = store.previous_proxies(context.run.run_id)
    changed = np.array([before is None or p not in before for p in proxy_ids], dtype=bool)
    with EvaluationStore(paths.utility_cache_db()).session(key, description) as session:
        utility = CountingUtility(inner, identities, session, changed=changed)
        res = estimate(
            config.estimator, utility if config.estimator != "knn_exact" else inner, permutations=config.permutations, group_size=config.group_size,
            truncation_tolerance=config.truncation_tolerance, samples=config.samples, seed=config.seed, player_keys=clusters["cluster_id"].to_numpy(),
            chain_size=config.chain_size, chain_rounds=config.chain_rounds,
        )
        full = utility.value(np.ones(len(proxy_ids), dtype=bool))
        values = np.asarray(res.values, dtype=np.float64)
        curve = removal_curve(utility, values, clusters["cluster_id"].to_numpy(), config.removal_max_fraction, config.removal_points) if config.removal_points else None
    order = sorted(range(len(values)), key=lambda i: (-values[i], int(clusters["cluster_id"][i])))
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(1, len(values) + 1)
    df = pl.DataFrame(
        {
            "cluster_id": clusters["cluster_id"],
            "proxy_row_id": proxy_ids,
            "score": values,
            "stderr": res.stderr if res.stderr is not None else [None] * len(values),
            "rank": rank,
            "estimator": [config.estimator] * len(values),
            "utility": [config.utility] * len(values),
            "dropped_by_removal_rule": curve.dropped if curve is not None else [None] * len(values),
        },
        schema={"cluster_id": pl.Int64, "proxy_row_id": pl.Utf8, "score": pl.Float64, "stderr": pl.Float64, "rank": pl.Int64, "estimator": pl.Utf8, "utility": pl.Utf8, "dropped_by_removal_rule": pl.Boolean},
    )
    meta: dict = {
        "estimator": config.estimator,
        "utility": config.utility,
        "players": len(values),
        "players_new": int(changed.sum()),  # proxies not scored by the previous run
        "utility_evaluations": utility.evaluations,
        "utility_cache_hits": utility.cache_hits,
        "utility_cache_hits_earlier_runs": utility.stored_hits,
        "coalitions": utility.coalitions,
        "coalitions_with_new_players": utility.coalitions_changed,
        "utility_key": key,
        "validation_rows": description["validation_rows"],
        "validation_rows_in_split": current_val.height,
        "validation_snapshot_renewed": pin.renewed,  # taken at this run, else kept from the last fit
        "validation_snapshot_reason": pin.reason,
        "validation_rows_waiting": pin.rows_waiting,  # joined the split since the fit: used from the next fit
        "validation_rows_gone": pin.rows_gone,  # left the split since the fit: still in the snapshot until then
        "utility_all_proxies": full,
        "sum_of_values": float(values.sum()),
        "score_min": float(values.min()),
        "score_max": float(values.max()),
        **{f"estimator_{k}": v for k, v in res.info.items()},
    }
    if curve is not None:
        meta["removal_best"] = curve.best  # proxies (clusters) the removal-index rule drops
        meta["removal_utility_kept"] = curve.utility[curve.removed.index(curve.best)]
        meta["removal_utility_none_dropped"] = curve.utility[0]
    store.write_table("scores", context.run.run_id, df)
    if curve is not None:
        store.write_table("removal_curve", context.run.run_id, pl.DataFrame({"removed": curve.removed, "utility": curve.utility, "chosen": [r == curve.best for r in curve.removed]}))
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    store.record_asset(context.run.run_id, "proxy_shapley_scores", CODE_VERSION, config.model_dump(), meta, inputs=input_runs(context, ["raw_dataset", "embeddings", "clusters"]))
    top = df.sort("rank").head(10).join(clusters.select("cluster_id", "size"), on="cluster_id", maintain_order="left")
    meta["top_clusters"] = dg.MetadataValue.md("| rank | cluster | size | score | proxy |\n|---|---|---|---|---|\n" + "\n".join(f"| {r['rank']} | {r['cluster_id']} | {r['size']} | {r['score']:.6g} | {r['proxy_row_id'][:12]} |" for r in top.iter_rows(named=True)))
    if curve is not None:
        meta["removal_curve"] = png_md(plots.line(curve.removed, curve.utility, f"removal-index rule: best = drop {curve.best}", "lowest-valued proxies removed", "utility of the rest", mark=curve.best), "removal curve")
    meta["score_distribution"] = png_md(plots.histogram(values, f"{config.estimator} values of {len(values)} proxies", "Shapley value"), "scores")
    return dg.Output(df, data_version=frame_version(df), metadata=meta)
