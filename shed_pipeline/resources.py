"""Dagster resources: compute device, project paths, lineage store, and a Parquet IO manager.

`resources_for` builds them from `Settings`, so that the UI (`dagster dev`, settings from the
environment) and the CLI (`shed-pipeline run`, the environment plus its flags) load the same
definitions.
"""

import io
import os
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline.core.files import atomic_path
from shed_pipeline.core.lineage import LineageStore
from shed_pipeline.core.objectstore import CONTENT_TYPES, ObjectNotFound, ObjectStore, S3Uri, is_s3
from shed_pipeline.settings import ENVIRONMENTS, Settings


def adopt_legacy_lineage(settings: Settings) -> str | None:
    """Move a project's lineage from where older versions kept it (`<home>/out/lineage.duckdb`, and
    DuckDB's write-ahead log beside it) to `default_lineage_path`, once; the caller holds the project
    lock. Never overwrites: a project that already has its database keeps it. Says what it did."""
    if settings.lineage is not None:
        return None
    new, old = settings.lineage_path, settings.legacy_lineage_path
    if new.exists() or not old.is_file():
        return None
    moves = [(old, new)]
    wal = old.with_name(old.name + ".wal")
    if wal.is_file():
        moves.append((wal, new.with_name(new.name + ".wal")))
    for src, dst in moves:
        os.link(src, dst)  # fails rather than overwrite
    for src, _ in moves:
        src.unlink()
    return f"moved this project's lineage from {old} to {new} (one lineage database per project)"


class ComputeResource(dg.ConfigurableResource):
    """Where heavy steps run (embedding, k-means): CUDA when present unless told otherwise."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 32  # 32 is the fastest batch for MiniLM on a 2-core CPU (measured: batch 8 and 64 are no faster)
    precision: str = "auto"  # auto (fp16 on CUDA, bf16 on a CPU with AMX, else fp32) | fp32 | fp16 | bf16

    def torch_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"compute device {self.device!r} requested but CUDA is not available")
        return self.device

    def torch_precision(self) -> str:
        from shed_pipeline.core.embedding import PRECISIONS, auto_precision

        if self.precision == "auto":
            return auto_precision(self.torch_device())
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be auto, fp32, fp16 or bf16, not {self.precision!r}")
        return self.precision


class PathsResource(dg.ConfigurableResource):
    """Project folders: working data under `home`, results under `out_dir` (a folder or an s3://
    prefix), downloads under `cache_dir`."""

    home: str
    out_dir: str = ""  # default: <home>/out; an s3:// prefix publishes the results there
    cache_dir: str = ""  # default: Settings.downloads (SHED_PIPELINE_CACHE or ~/.cache/shed_pipeline)
    bigbench_archive: str = ""  # a local copy of the bigbench archive; default: downloaded into the cache
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

    def archive(self) -> Path | None:
        """A local copy of the bigbench archive (the packaged sources and benchmarks); None: download it."""
        return Path(self.bigbench_archive).expanduser() if self.bigbench_archive else None

    def cache(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else Settings.from_env().downloads

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


# Each stored asset value carries the id of the run that wrote it (Parquet key-value metadata), and a
# run checks it on load: a value that another run wrote meanwhile is refused with one line instead of
# being silently mixed into this run's results.
WRITTEN_BY_RUN = "shed_pipeline.written_by_run"


class AssetValueMismatch(Exception):
    """A stored asset value was written by another run than the one this run reads it from."""


# What Dagster names the run of an upstream output that this execution did not compute (an asset
# outside the selection, loaded from storage): no run at all.
_NO_RUN = "__EPHEMERAL_RUN_ID"


def _run_id_or_none(context) -> str | None:
    try:
        run_id = context.run_id
    except dg.DagsterInvariantViolationError:  # a context built without a run (tests, direct calls)
        return None
    return None if run_id == _NO_RUN else run_id


def expected_writer(context: dg.InputContext) -> tuple[str | None, bool]:
    """The run whose value of the upstream asset this input must read, and whether that run computed
    it in this execution (this run, or the parent of a re-execution); else the asset's latest
    materialization in this instance; (None, False) when the instance knows of none."""
    if context.upstream_output is not None and (run_id := _run_id_or_none(context.upstream_output)):
        return run_id, True
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:
        return None, False
    event = instance.get_latest_materialization_event(context.asset_key)
    return (event.run_id if event is not None else None), False


def latest_partition_run(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str) -> str | None:
    """The run of a partition's latest materialization in `instance`; None when it has none."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    return records[0].run_id if records else None


def expected_partition_writer(context: dg.InputContext, partition: str) -> tuple[str | None, bool]:
    """The run whose value of one partition (shard) of the upstream asset this input must read: the
    partition's latest materialization in this instance (a shard may come from an earlier run than
    the others, e.g. one run per shard in a backfill), and whether that run is this one."""
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:
        return None, False
    run_id = latest_partition_run(instance, context.asset_key, partition)
    this_run = _run_id_or_none(context.upstream_output) if context.upstream_output is not None else None
    return run_id, run_id is not None and run_id == this_run


def _read_stamped(source, columns: list[str] | None = None) -> tuple[pl.DataFrame, str | None]:
    """A Parquet file (path or file object) as a frame (only `columns`, when given), and the run id
    stamped in it; schema and data come from one open file, so a writer replacing it meanwhile
    cannot mix two versions."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(source)
    return pl.from_arrow(pf.read(columns=columns)), _stamp(pf.metadata)


def _stamp_of(source) -> str | None:
    """The run id stamped in a Parquet file's metadata (its footer only)."""
    import pyarrow.parquet as pq

    return _stamp(pq.read_metadata(source))


def _stamp(file_metadata) -> str | None:
    """The run id in a Parquet footer's key-value metadata, None when it carries none."""
    stamp = (file_metadata.metadata or {}).get(WRITTEN_BY_RUN.encode())
    return stamp.decode() if stamp else None


def wants_lazy(context: dg.InputContext) -> bool:
    """An input annotated `pl.LazyFrame`: the asset selects the columns and rows it reads itself
    (a million rows' texts are gigabytes, and an asset often needs them for a few rows only)."""
    try:
        dagster_type = context.dagster_type
    except dg.DagsterInvariantViolationError:  # a context built without one (build_input_context)
        return False
    return getattr(dagster_type, "typing_type", None) is pl.LazyFrame


def input_columns(context: dg.InputContext) -> list[str] | None:
    """The columns an asset reads of an upstream frame, from its input's metadata ({"columns": [...]},
    as Dagster's own table IO managers take it); None: all of them."""
    columns = (context.definition_metadata or {}).get("columns")
    return list(columns) if columns else None


class _ParquetIOManager(dg.ConfigurableIOManager):
    """Asset values are polars DataFrames stored as Parquet (never pickle), one file or object per
    asset (per partition for a partitioned asset: `<asset>/<key>.parquet`), stamped with the run
    that wrote it; subclasses say where (`_put`, and `_get` returning (frame, stamp) or raising
    FileNotFoundError when it is absent)."""

    def _put(
        self, context: dg.OutputContext, frame: pl.DataFrame, stamp: dict[str, str], partition: str | None = None
    ) -> None:
        raise NotImplementedError

    def _get(
        self, context, columns: list[str] | None = None, partition: str | None = None
    ) -> tuple[pl.DataFrame, str | None]:
        raise NotImplementedError

    def _where(self, context, partition: str | None = None) -> str:
        raise NotImplementedError

    def _scan(
        self, context, columns: list[str] | None = None, partition: str | None = None
    ) -> tuple[pl.LazyFrame, str | None]:
        """(lazy frame, stamp): by default the value read (its `columns`, when given) into memory; a
        local file is scanned instead. A lazy input's `columns` are the most it may read."""
        frame, stamp = self._get(context, columns, partition)
        return frame.lazy(), stamp

    @staticmethod
    def _relative(context, partition: str | None) -> list[str]:
        return [*context.asset_key.path, *([partition] if partition is not None else [])]

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | dict[str, pl.DataFrame]) -> None:
        asset = context.asset_key.to_user_string()
        run_id = _run_id_or_none(context)
        stamp = {WRITTEN_BY_RUN: run_id} if run_id else {}
        if not context.has_asset_partitions:
            if not isinstance(obj, pl.DataFrame):
                raise TypeError(f"{asset}: expected a polars DataFrame, got {type(obj).__name__}")
            self._put(context, obj, stamp)
            return
        # A step over several partitions hands {partition key: frame}; over one, the frame.
        keys = sorted(context.asset_partition_keys)
        frames = obj if isinstance(obj, dict) else {keys[0]: obj} if len(keys) == 1 else None
        if frames is None or sorted(frames) != keys or not all(isinstance(f, pl.DataFrame) for f in frames.values()):
            raise TypeError(
                f"{asset}: a step over partitions {keys} must return one polars DataFrame per partition, keyed by partition"
            )
        for key in keys:
            self._put(context, frames[key], stamp, key)

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        upstream = context.upstream_output if context.upstream_output is not None else context
        if context.has_asset_partitions:
            return self._load_partitions(context, upstream)
        asset = context.asset_key.to_user_string()
        read = self._scan if wants_lazy(context) else self._get
        try:
            frame, written_by = read(upstream, input_columns(context))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{exc.filename}: upstream asset {asset} has not been materialized here") from exc
        expected, in_this_execution = expected_writer(context)
        self._check_writer(asset, self._where(upstream), written_by, expected, in_this_execution)
        return frame

    def _load_partitions(self, context: dg.InputContext, upstream) -> pl.DataFrame | pl.LazyFrame:
        """The union of the partitions this input reads, in the partitions' own order, each checked
        against the run that last materialized it."""
        asset = context.asset_key.to_user_string()
        read = self._scan if wants_lazy(context) else self._get
        wanted = set(context.asset_partition_keys)
        keys = [k for k in context.asset_partitions_def.get_partition_keys() if k in wanted]
        frames = []
        for key in keys:
            try:
                frame, written_by = read(upstream, input_columns(context), key)
            except FileNotFoundError as exc:
                raise FileNotFoundError(
                    f"{exc.filename}: partition {key} of upstream asset {asset} has not been materialized here (materialize all of its partitions)"
                ) from exc
            expected, in_this_execution = expected_partition_writer(context, key)
            self._check_writer(
                f"{asset} partition {key}", self._where(upstream, key), written_by, expected, in_this_execution
            )
            frames.append(frame)
        return pl.concat(frames, how="vertical", rechunk=False)  # frames, or lazy frames

    @staticmethod
    def _check_writer(
        what: str, where: str, written_by: str | None, expected: str | None, in_this_execution: bool
    ) -> None:
        if written_by and expected and written_by != expected:
            msg = f"{what} at {where} was written by run {written_by}, not by run {expected}"
            if in_this_execution:
                raise AssetValueMismatch(
                    f"{msg} whose value this run reads: another run wrote to this project folder meanwhile (runs on one project folder must take turns); run again"
                )
            raise AssetValueMismatch(
                f"{msg}, this Dagster instance's latest materialization of it: another Dagster instance (DAGSTER_HOME) wrote it; materialize {what} again"
            )


class PolarsParquetIOManager(_ParquetIOManager):
    """Asset values as Parquet files under a local folder, each written atomically."""

    base_dir: str

    def _path(self, context, partition: str | None = None) -> Path:
        return Path(self.base_dir).expanduser().joinpath(*self._relative(context, partition)).with_suffix(".parquet")

    def _where(self, context, partition: str | None = None) -> str:
        return str(self._path(context, partition))

    def _put(self, context, frame: pl.DataFrame, stamp: dict[str, str], partition: str | None = None) -> None:
        with atomic_path(self._path(context, partition)) as tmp:
            frame.write_parquet(tmp, metadata=stamp or None)

    def _get(
        self, context, columns: list[str] | None = None, partition: str | None = None
    ) -> tuple[pl.DataFrame, str | None]:
        path = self._path(context, partition)
        try:
            with path.open("rb") as fh:
                return _read_stamped(fh, columns)
        except FileNotFoundError:
            raise FileNotFoundError(2, "no such file", str(path)) from None

    def _scan(
        self, context, columns: list[str] | None = None, partition: str | None = None
    ) -> tuple[pl.LazyFrame, str | None]:
        """A lazy scan of the file: only the columns and row groups a query needs are read. The
        stamp comes from the same file; writers of one project folder take turns (the project lock),
        so it is still that file when the query runs in this step."""
        path = self._path(context, partition)
        try:
            stamp = _stamp_of(path)
        except FileNotFoundError:
            raise FileNotFoundError(2, "no such file", str(path)) from None
        scan = pl.scan_parquet(path)
        return (scan.select(columns) if columns else scan), stamp


class S3ParquetIOManager(_ParquetIOManager):
    """Asset values as Parquet objects under an s3:// prefix (prod: step pods share no disk).
    One PUT per value, so a reader sees the previous value or the new one, never a part."""

    s3: dg.ResourceDependency[S3Resource]
    prefix: str  # s3://bucket/some/prefix

    def _uri(self, context, partition: str | None = None) -> S3Uri:
        return S3Uri.parse(self.prefix).child("/".join(self._relative(context, partition)) + ".parquet")

    def _where(self, context, partition: str | None = None) -> str:
        return str(self._uri(context, partition))

    def _put(self, context, frame: pl.DataFrame, stamp: dict[str, str], partition: str | None = None) -> None:
        buf = io.BytesIO()
        frame.write_parquet(buf, metadata=stamp or None)
        object_store(self.s3).put_bytes(buf.getvalue(), self._uri(context, partition), CONTENT_TYPES[".parquet"])

    def _get(
        self, context, columns: list[str] | None = None, partition: str | None = None
    ) -> tuple[pl.DataFrame, str | None]:
        uri = self._uri(context, partition)
        try:
            return _read_stamped(io.BytesIO(object_store(self.s3).read_bytes(uri)), columns)
        except ObjectNotFound as exc:
            raise FileNotFoundError(2, "no such object", str(uri)) from exc


def object_store(s3: S3Resource, log=None, attempts: int = 5) -> ObjectStore:
    """The pure-core S3 wrapper (retries with backoff, clear errors) around dagster-aws's client."""
    return ObjectStore(s3.get_client(), attempts=attempts, log=log)


def s3_resource(settings: Settings) -> S3Resource:
    """dagster-aws's S3Resource for `settings.s3`. Credentials are passed as `EnvVar`s (the UI shows
    the variable's name, never its value); without AWS_ACCESS_KEY_ID, boto3's default chain applies
    (profile, IAM role for service accounts on EKS, instance role)."""
    keys = {}
    if settings.s3.access_key_in_env:
        keys = {
            "aws_access_key_id": dg.EnvVar("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
        }
        if settings.s3.session_token_in_env:
            keys["aws_session_token"] = dg.EnvVar("AWS_SESSION_TOKEN")
    return S3Resource(
        endpoint_url=settings.s3.endpoint_url,
        region_name=settings.s3.region,
        # One retry layer: ObjectStore retries with logged backoff and classifies errors; botocore
        # retrying inside each of its attempts as well would multiply the wait (5 x 5 tries).
        # (botocore counts retries here: 0 = one send per ObjectStore attempt.)
        max_attempts=0,
        **keys,
    )


def resources_for(settings: Settings) -> dict:
    """The resources of one environment (`settings.env`: `local` by default, or `prod`); the same
    definitions serve both, so switching needs no code change.

    local: everything under a project folder (`settings.home`): caches, incremental state, asset
    values, the lineage DuckDB file; results under `settings.out` (default <home>/out; an s3://
    prefix also works).

    prod: results and asset values in S3 (step pods share no disk): `settings.out` must be an s3://
    prefix; asset values go under `settings.io_prefix` (default <out>/_assets). The home folder is a
    persistent volume for caches, incremental state and the lineage file. Compute logs go to S3
    through the instance's dagster.yaml (deploy/dagster.yaml, deploy/values.yaml)."""
    if settings.env not in ENVIRONMENTS:
        raise ValueError(f"SHED_ENV={settings.env!r} is not an environment: use one of {', '.join(ENVIRONMENTS)}")
    home, out = str(settings.home), settings.out
    if settings.env == "prod" and not is_s3(out):
        raise ValueError(
            f"SHED_ENV=prod needs SHED_PIPELINE_OUT=s3://bucket/prefix (results and asset values live in S3), got {out!r}"
        )
    s3 = s3_resource(settings)
    if settings.env == "prod":
        io_manager = S3ParquetIOManager(s3=s3, prefix=settings.asset_values)
    else:
        io_manager = PolarsParquetIOManager(base_dir=settings.asset_values)
    return {
        "compute": ComputeResource(device=settings.device, precision=settings.precision),
        "paths": PathsResource(
            home=home,
            out_dir=out,
            cache_dir=str(settings.downloads),
            source=settings.source,
            bigbench_archive=str(settings.bigbench_archive or ""),
        ),
        "lineage": LineageResource(path=str(settings.lineage_path)),
        "s3": s3,
        "io_manager": io_manager,
    }
