"""The `probe` utility (TS-DShapley's transfer path): a simple model on the target LM's own
representations stands in for fine-tuning the LM.

Each row is represented by the LM's penultimate-layer hidden states, mean-pooled over its prompt
tokens (x) and over its response tokens (y, which see the prompt), both reduced with PCA. The simple
model is a ridge regression from x to y without intercept (both are centred on the validation rows'
means by the PCA, so with few rows the prediction shrinks to the mean response instead of copying
one row's response everywhere): it learns which response a prompt calls for. A coalition's value is
how well the regression fitted on its rows predicts the validation rows' responses:

    U(S)     = 1 - sum_v |y_v - f_S(x_v)|^2 / sum_v |y_v - mean_y|^2      (an R^2 on validation)
    U(empty) = 0: with no rows the best guess is the mean response (a real value, not a placeholder)

A row whose response does not answer its prompt (another task's output, a truncated answer) teaches
the wrong map and lowers U: that is how the probe finds harmful rows. Evaluations take microseconds,
so estimators can afford thousands of them.

The PCA bases are fitted on the validation rows only, so U(S) depends only on S and the validation
rows: cached values stay valid when other players join or leave.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from shed_pipeline.core.strategies import Strategy
from shed_pipeline.core.utilities.cache import fingerprint_arrays, utility_key
from shed_pipeline.core.utilities.inputs import BuiltUtility, UtilityInputs, first_by_id, prompt_identities, prompt_rows


@dataclass(frozen=True)
class ProbeSettings:
    # Measured on 2,000 Natural Instructions rows with 10% wrong outputs (bench/noise.py): 16 / 20
    # separate corrupted proxies best (AUC ~0.74 with ts_chains); 32+ dims or a weak ridge overfit.
    dims: int = 16  # PCA components kept for prompts and for responses
    ridge: float = 20.0  # L2 penalty of the regression, on whitened features (about 20 rows' worth)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PCABasis:
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (d, k), orthonormal columns
    scale: np.ndarray  # (k,) standard deviation along each component (whitening)

    @classmethod
    def fit(cls, x: np.ndarray, dims: int) -> "PCABasis":
        """Principal components of x (rows = samples), signs fixed so that each component's
        largest-magnitude entry is positive: the same data always gives the same basis."""
        x = np.asarray(x, dtype=np.float64)
        if len(x) < 2:
            raise ValueError("PCA needs at least two rows")
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        # Keep only directions the data really spans (centred data has rank <= n - 1): a direction
        # with no variance is arbitrary (it depends on the LAPACK build) and whitening would blow it up.
        rank = int((s > s[0] * max(x.shape) * np.finfo(np.float64).eps).sum()) if s[0] > 0 else 0
        k = max(1, min(dims, rank))
        comps = vt[:k].T
        signs = np.sign(comps[np.abs(comps).argmax(0), np.arange(k)])
        comps = comps * np.where(signs == 0, 1.0, signs)
        scale = s[:k] / np.sqrt(len(x) - 1)
        return cls(mean, comps, np.where(scale > 1e-12, scale, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean) @ self.components) / self.scale


def ridge_fit(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """W of the ridge regression y ~ x W (no intercept)."""
    return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)


class ProbeUtility:
    """U(S) of the module docstring, over players given by their (x, y) representations."""

    def __init__(
        self,
        player_x: np.ndarray,
        player_y: np.ndarray,
        val_x: np.ndarray,
        val_y: np.ndarray,
        settings: ProbeSettings = ProbeSettings(),
    ):
        if len(player_x) != len(player_y) or len(val_x) != len(val_y):
            raise ValueError("prompt and response representations differ in count")
        if len(val_x) < 2:
            raise ValueError("the probe utility needs at least two validation rows (its PCA is fitted on them)")
        if settings.ridge <= 0:
            raise ValueError(f"ridge must be positive, got {settings.ridge}")
        self.settings = settings
        bx, by = PCABasis.fit(val_x, settings.dims), PCABasis.fit(val_y, settings.dims)
        self.px, self.py = bx.transform(player_x), by.transform(player_y)
        self.vx, self.vy = bx.transform(val_x), by.transform(val_y)
        self.n_players = len(self.px)
        # The validation responses are centred by their own PCA: predicting the mean is predicting 0.
        self._total = float((self.vy**2).sum())

    def value(self, members: np.ndarray) -> float:
        mask = np.asarray(members, dtype=bool)
        if mask.shape != (self.n_players,):
            raise ValueError(f"coalition mask must have shape ({self.n_players},), got {mask.shape}")
        if not mask.any() or self._total == 0.0:
            return 0.0
        pred = self.vx @ ridge_fit(self.px[mask], self.py[mask], self.settings.ridge)
        return 1.0 - float(((self.vy - pred) ** 2).sum()) / self._total


@dataclass(frozen=True)
class ProbeUtilitySettings:
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={
            "help": (
                "the LM whose representations the probe reads: the packaged SmolLM2-135M-Instruct, or a local model "
                "folder"
            )
        },
    )
    dims: int = field(default=16, metadata={"help": "PCA components kept of prompt and of response representations"})
    ridge: float = field(default=20.0, metadata={"help": "L2 penalty of the ridge regression (on whitened features)"})
    validation_rows: int = field(
        default=256, metadata={"help": "validation rows U is measured on (the first by row id); 0 = all"}
    )
    max_tokens: int = field(default=256, metadata={"help": "tokens kept per row when computing the LM's features"})
    batch_size: int = field(default=8, metadata={"help": "rows per LM forward pass when computing features"})


FEATURE_CHUNK = 256  # rows per feature computation and cache write: an interrupted run keeps its work


def build(settings: ProbeUtilitySettings, inputs: UtilityInputs) -> BuiltUtility:
    from shed_pipeline.core import lm
    from shed_pipeline.core.embedding import EmbeddingCache
    from shed_pipeline.core.progress import Progress

    log, device = inputs.log, inputs.device
    path = lm.resolve_lm(settings.model, inputs.cache_dir, log)
    val = first_by_id(inputs.validation, settings.validation_rows)
    # The LM's features are cached by prompt key (row id, and a chat row's turns) like embeddings: a
    # refresh computes new rows only.
    feature_id = f"lm-penultimate/v1:{lm.model_fingerprint(path)}:{settings.max_tokens}:{lm.device_signature(device)}"
    proxy_rows, val_rows = prompt_rows(inputs.proxies), prompt_rows(val)
    rows = pl.concat([proxy_rows, val_rows]).unique("key", keep="first", maintain_order=True)
    cache = EmbeddingCache(inputs.feature_cache)
    missing = set(cache.missing(feature_id, rows["key"].to_list()))
    if missing:
        todo = rows.filter(pl.col("key").is_in(list(missing)))
        log(f"probe: LM features for {todo.height} rows ({rows.height - todo.height} cached)")
        model, tok = lm.load_lm(path, device=device)
        prompts, outputs, ids = (
            lm.prompt_texts(tok, todo["instruction"], todo["input"], todo["messages"], log),
            todo["output"].to_list(),
            todo["key"].to_list(),
        )
        progress = Progress(todo.height, "probe features", log, unit="rows")
        with cache.buffered(feature_id) as saved:  # few transactions, at most half a minute of work unsaved
            for s in range(0, todo.height, FEATURE_CHUNK):
                chunk = slice(s, s + FEATURE_CHUNK)
                xs, ys = lm.penultimate_features(
                    model,
                    tok,
                    prompts[chunk],
                    outputs[chunk],
                    batch_size=settings.batch_size,
                    max_tokens=settings.max_tokens,
                    progress=progress,
                )
                saved.add(ids[chunk], np.hstack([xs, ys]))
    p, v = cache.get(feature_id, proxy_rows["key"].to_list()), cache.get(feature_id, val_rows["key"].to_list())
    h = p.shape[1] // 2
    probe = ProbeSettings(dims=settings.dims, ridge=settings.ridge)
    utility = ProbeUtility(p[:, :h], p[:, h:], v[:, :h], v[:, h:], probe)
    key_settings = {"features": feature_id, **probe.as_dict(), "score": "ridge_r2/v1"}
    data = fingerprint_arrays(val_rows["key"].to_list())
    description = {
        "utility": STRATEGY.name,
        "settings": key_settings,
        "validation_rows": val.height,
        "validation_fingerprint": data,
        "model_path": str(path),
    }
    return BuiltUtility(
        utility, utility_key(STRATEGY.name, key_settings, data), description, prompt_identities(inputs.proxies)
    )


STRATEGY = Strategy(
    name="probe",
    summary=(
        "TS-DShapley's transfer path: ridge regression from the target LM's prompt to response representations, R^2 "
        "on validation (fast after one feature pass)"
    ),
    settings=ProbeUtilitySettings,
    run=build,
)
