"""Dagster resources: compute device, project paths, lineage store, and a Parquet IO manager.

`resources_for_env` picks them from environment variables so that the UI (`dagster dev`) and the
CLI (`shed-pipeline run`) load the same definitions: the CLI only sets the variables.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import polars as pl

from shed_pipeline.core.lineage import LineageStore
from shed_pipeline.core.natural_instructions import default_cache_dir


def default_home() -> str:
    return os.environ.get("SHED_PIPELINE_HOME", str(Path.cwd() / ".shed_pipeline"))


class ComputeResource(dg.ConfigurableResource):
    """Where heavy steps run (embedding, k-means): CUDA when present unless told otherwise."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 32  # 32 is the fastest batch for MiniLM on a 2-core CPU (REFERENCE.md)
    precision: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp32 | fp16 | bf16

    def torch_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"compute device {self.device!r} requested but CUDA is not available")
        return self.device

    def torch_precision(self) -> str:
        if self.precision == "auto":
            return "fp16" if self.torch_device().startswith("cuda") else "fp32"
        if self.precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be auto, fp32, fp16 or bf16, not {self.precision!r}")
        return self.precision


class PathsResource(dg.ConfigurableResource):
    """Project folders: working data under `home`, results under `out_dir`, downloads under `cache_dir`."""

    home: str
    out_dir: str = ""  # default: <home>/out
    cache_dir: str = ""  # default: $SHED_PIPELINE_CACHE or ~/.cache/shed_pipeline
    source: str = ""  # the project's source (file or folder) when a run does not name one; watched by source_change_sensor

    def out(self) -> Path:
        p = Path(self.out_dir).expanduser() if self.out_dir else Path(self.home).expanduser() / "out"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def cache(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()

    def embedding_cache_db(self) -> Path:
        return Path(self.home).expanduser() / "cache" / "embeddings.duckdb"

    def utility_cache_db(self) -> Path:
        return Path(self.home).expanduser() / "cache" / "utility_evaluations.duckdb"

    def evaluation_cache(self) -> Path:
        """Results of evaluation arms (one JSON file per arm, named by a hash of its inputs)."""
        return Path(self.home).expanduser() / "cache" / "evaluation_arms"

    def state(self, name: str) -> Path:
        """Where an incremental step keeps what the next run refreshes (the cluster anchors, ...)."""
        p = Path(self.home).expanduser() / "state"
        p.mkdir(parents=True, exist_ok=True)
        return p / name


class LineageResource(dg.ConfigurableResource):
    """The lineage DuckDB file. DuckDB allows one writing process: writers take the file lock with
    retry (`duckdb_files.connect`), and write in short transactions, so concurrent runs wait for each
    other's writes. Steps that use the compute device (embeddings, clusters, proxy_shapley_scores,
    evaluation_metrics) run in the `gpu` pool instead, so one GPU serves one step at a time; the
    others (raw_dataset, curated_subset) in the `duckdb` pool."""

    path: str

    def store(self) -> LineageStore:
        return LineageStore(self.path)


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    """Asset values are polars DataFrames stored as Parquet (never pickle), one file per asset."""

    base_dir: str

    def _path(self, context) -> Path:
        return Path(self.base_dir).expanduser().joinpath(*context.asset_key.path).with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj).__name__}")
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.partial")
        obj.write_parquet(tmp)
        tmp.replace(path)  # readers never see a half-written file

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        path = self._path(context.upstream_output if context.upstream_output is not None else context)
        if not path.exists():
            raise FileNotFoundError(f"{path}: upstream asset {context.asset_key.to_user_string()} has not been materialized here")
        return pl.read_parquet(path)


def resources_for_env(env: str | None = None) -> dict:
    """Resources for `SHED_ENV` (only `local` so far). Paths come from environment variables:
    SHED_PIPELINE_HOME (default ./.shed_pipeline), SHED_PIPELINE_OUT (default <home>/out),
    SHED_PIPELINE_LINEAGE (default <out>/lineage.duckdb), SHED_DEVICE (default auto), and
    SHED_PIPELINE_SOURCE (the source runs use when they name none, and the sensor watches)."""
    env = env or os.environ.get("SHED_ENV", "local")
    if env != "local":
        raise ValueError(f"SHED_ENV={env!r} is not supported yet (only 'local')")
    home = default_home()
    out = os.environ.get("SHED_PIPELINE_OUT", str(Path(home) / "out"))
    lineage = os.environ.get("SHED_PIPELINE_LINEAGE", str(Path(out) / "lineage.duckdb"))
    return {
        "compute": ComputeResource(device=os.environ.get("SHED_DEVICE", "auto")),
        "paths": PathsResource(home=home, out_dir=out, source=os.environ.get("SHED_PIPELINE_SOURCE", "")),
        "lineage": LineageResource(path=lineage),
        "io_manager": PolarsParquetIOManager(base_dir=str(Path(home) / "assets")),
    }
