"""Dagster resources: compute device, project paths, lineage store, and a Parquet IO manager.

`resources_for_env` picks them from environment variables so that the UI (`dagster dev`) and the
CLI (`shed-pipeline run`) load the same definitions: the CLI only sets the variables.
"""

import io
import os
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.lineage import LineageStore
from shed_pipeline.core.natural_instructions import default_cache_dir
from shed_pipeline.core.objectstore import CONTENT_TYPES, ObjectNotFound, ObjectStore, S3Uri, is_s3


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
    """Project folders: working data under `home`, results under `out_dir` (a folder or an s3://
    prefix), downloads under `cache_dir`."""

    home: str
    out_dir: str = ""  # default: <home>/out; an s3:// prefix publishes the results there
    cache_dir: str = ""  # default: $SHED_PIPELINE_CACHE or ~/.cache/shed_pipeline
    source: str = ""  # the project's source (file, folder or s3:// location) when a run does not name one; watched by source_change_sensor

    def out(self) -> Path:
        """The local folder results are written to (with an s3:// out_dir: the staging copy under home)."""
        if self.out_dir and not is_s3(self.out_dir):
            p = Path(self.out_dir).expanduser()
        else:
            p = Path(self.home).expanduser() / "out"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def out_location(self) -> str:
        """Where results are published: the s3:// prefix, else the local folder."""
        return self.out_dir if is_s3(self.out_dir) else str(self.out())

    def s3_mirror(self) -> Path:
        """Local copies of s3:// source objects (downloaded again only when an object's ETag changes)."""
        return Path(self.home).expanduser() / "cache" / "s3_sources"

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


class _ParquetIOManager(dg.ConfigurableIOManager):
    """Asset values are polars DataFrames stored as Parquet (never pickle), one file or object per
    asset; subclasses say where (`_put`, and `_get` raising FileNotFoundError when it is absent)."""

    def _put(self, context: dg.OutputContext, frame: pl.DataFrame) -> None:
        raise NotImplementedError

    def _get(self, context) -> pl.DataFrame:
        raise NotImplementedError

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj).__name__}")
        self._put(context, obj)

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        try:
            return self._get(context.upstream_output if context.upstream_output is not None else context)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{exc.filename}: upstream asset {context.asset_key.to_user_string()} has not been materialized here") from exc


class PolarsParquetIOManager(_ParquetIOManager):
    """Asset values as Parquet files under a local folder, each written atomically."""

    base_dir: str

    def _path(self, context) -> Path:
        return Path(self.base_dir).expanduser().joinpath(*context.asset_key.path).with_suffix(".parquet")

    def _put(self, context, frame: pl.DataFrame) -> None:
        with atomic_path(self._path(context)) as tmp:
            frame.write_parquet(tmp)

    def _get(self, context) -> pl.DataFrame:
        path = self._path(context)
        if not path.exists():
            raise FileNotFoundError(2, "no such file", str(path))
        return pl.read_parquet(path)


class S3ParquetIOManager(_ParquetIOManager):
    """Asset values as Parquet objects under an s3:// prefix (prod: step pods share no disk).
    One PUT per value, so a reader sees the previous value or the new one, never a part."""

    s3: dg.ResourceDependency[S3Resource]
    prefix: str  # s3://bucket/some/prefix

    def _uri(self, context) -> S3Uri:
        return S3Uri.parse(self.prefix).child("/".join(context.asset_key.path) + ".parquet")

    def _put(self, context, frame: pl.DataFrame) -> None:
        buf = io.BytesIO()
        frame.write_parquet(buf)
        object_store(self.s3).put_bytes(buf.getvalue(), self._uri(context), CONTENT_TYPES[".parquet"])

    def _get(self, context) -> pl.DataFrame:
        uri = self._uri(context)
        try:
            return pl.read_parquet(io.BytesIO(object_store(self.s3).read_bytes(uri)))
        except ObjectNotFound as exc:
            raise FileNotFoundError(2, "no such object", str(uri)) from exc


def object_store(s3: S3Resource, log=None, attempts: int = 5) -> ObjectStore:
    """The pure-core S3 wrapper (retries with backoff, clear errors) around dagster-aws's client."""
    return ObjectStore(s3.get_client(), attempts=attempts, log=log)


def s3_resource_from_env() -> S3Resource:
    """dagster-aws's S3Resource from the environment. Credentials are passed as `EnvVar`s (the UI shows
    the variable's name, never its value); without AWS_ACCESS_KEY_ID, boto3's default chain applies
    (profile, IAM role for service accounts on EKS, instance role)."""
    keys = {}
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        keys = {"aws_access_key_id": dg.EnvVar("AWS_ACCESS_KEY_ID"), "aws_secret_access_key": dg.EnvVar("AWS_SECRET_ACCESS_KEY")}
        if os.environ.get("AWS_SESSION_TOKEN"):
            keys["aws_session_token"] = dg.EnvVar("AWS_SESSION_TOKEN")
    return S3Resource(
        # boto3's own variables, so the instance's S3 compute log manager reads the same ones.
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
        # One retry layer: ObjectStore retries with logged backoff and classifies errors; botocore
        # retrying inside each of its attempts as well would multiply the wait (5 x 5 tries).
        # (botocore counts retries here: 0 = one send per ObjectStore attempt.)
        max_attempts=0,
        **keys,
    )


ENVIRONMENTS = ("local", "prod")


def resources_for_env(env: str | None = None) -> dict:
    """The resources of one environment, picked by SHED_ENV (`local` by default, or `prod`); the
    same definitions serve both, so switching needs no code change.

    local: everything under a project folder. SHED_PIPELINE_HOME (default ./.shed_pipeline: caches,
    incremental state, asset values), SHED_PIPELINE_OUT (default <home>/out; an s3:// prefix also
    works), SHED_PIPELINE_LINEAGE (default <home>/out/lineage.duckdb), SHED_DEVICE (default auto),
    SHED_PIPELINE_SOURCE (the source runs use when they name none, and the sensor watches; a file,
    folder or s3:// location).

    prod: results and asset values in S3 (step pods share no disk). SHED_PIPELINE_OUT must be an
    s3:// prefix; asset values go under SHED_PIPELINE_IO (default <out>/_assets). SHED_PIPELINE_HOME
    is a persistent volume for caches, incremental state and the lineage DuckDB file. S3 access for
    both: AWS_ENDPOINT_URL_S3 (S3-compatible stores), AWS_REGION, AWS_ACCESS_KEY_ID /
    AWS_SECRET_ACCESS_KEY (or the default AWS chain). Compute logs go to S3 through the instance's
    dagster.yaml (deploy/dagster.yaml, deploy/values.yaml)."""
    env = (env or os.environ.get("SHED_ENV") or "local").strip().lower()
    if env not in ENVIRONMENTS:
        raise ValueError(f"SHED_ENV={env!r} is not an environment: use one of {', '.join(ENVIRONMENTS)}")
    home = default_home()
    out = os.environ.get("SHED_PIPELINE_OUT", "")
    if env == "prod" and not is_s3(out):
        raise ValueError(f"SHED_ENV=prod needs SHED_PIPELINE_OUT=s3://bucket/prefix (results and asset values live in S3), got {out!r}")
    local_out = out if out and not is_s3(out) else str(Path(home) / "out")
    lineage = os.environ.get("SHED_PIPELINE_LINEAGE", str(Path(local_out) / "lineage.duckdb"))
    s3 = s3_resource_from_env()
    if env == "prod":
        io_manager = S3ParquetIOManager(s3=s3, prefix=os.environ.get("SHED_PIPELINE_IO") or str(S3Uri.parse(out).child("_assets")))
    else:
        io_manager = PolarsParquetIOManager(base_dir=str(Path(home) / "assets"))
    return {
        "compute": ComputeResource(device=os.environ.get("SHED_DEVICE", "auto")),
        "paths": PathsResource(home=home, out_dir=out, source=os.environ.get("SHED_PIPELINE_SOURCE", "")),
        "lineage": LineageResource(path=lineage),
        "s3": s3,
        "io_manager": io_manager,
    }
