"""Settings: everything the environment says about a deployment, read in one place.

`Settings.from_env()` is the only reader of the `SHED_*` and `AWS_*` variables (and DAGSTER_HOME),
and owns every default path (`ProjectFolder`: what a project folder holds, where). The UI's definitions
(`shed_pipeline.definitions:defs`, built when Dagster loads them) read the environment; the CLI passes
its flags as overrides of the same variables and hands the result to `build_definitions`. Nothing writes
the environment back.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from shed_pipeline.core.objectstore import is_s3
from shed_pipeline.core.shards import parse_shard_count

ENVIRONMENTS = ("local", "prod")
EXECUTORS = ("multiprocess", "in_process", "k8s")
LINEAGE_FILE = "lineage.duckdb"


def default_downloads() -> Path:
    """Where downloads go unless SHED_PIPELINE_CACHE says otherwise: shared by every project of a user."""
    return Path.home() / ".cache" / "shed_pipeline"


@dataclasses.dataclass(frozen=True)
class ProjectFolder:
    """What a project folder (SHED_PIPELINE_HOME) holds, and where: the one place its layout is written."""

    root: Path  # expanded

    @property
    def out(self) -> Path:
        """Results, unless SHED_PIPELINE_OUT names a folder (with an s3:// one: the local staging copy)."""
        return self.root / "out"

    @property
    def lineage(self) -> Path:
        return self.root / LINEAGE_FILE

    @property
    def legacy_lineage(self) -> Path:
        """Where versions before one-lineage-per-project kept a project's lineage by default."""
        return self.out / LINEAGE_FILE

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def asset_values(self) -> Path:
        return self.root / "assets"

    @property
    def s3_mirror(self) -> Path:
        """Local copies of s3:// source objects (downloaded again only when an object's ETag changes)."""
        return self.root / "cache" / "s3_sources"

    @property
    def embedding_cache_db(self) -> Path:
        return self.root / "cache" / "embeddings.duckdb"

    @property
    def utility_cache_db(self) -> Path:
        return self.root / "cache" / "utility_evaluations.duckdb"

    @property
    def evaluation_cache(self) -> Path:
        """Results of evaluation arms (one JSON file per arm, named by a hash of its inputs)."""
        return self.root / "cache" / "evaluation_arms"

    @property
    def state(self) -> Path:
        """What incremental steps keep for the next run to refresh (the cluster anchors, ...)."""
        return self.root / "state"


@dataclasses.dataclass(frozen=True)
class S3Access:
    """How to reach S3: boto3's own variables, so the instance's S3 compute log manager reads the same
    ones. Without an access key in the environment, boto3's default chain applies (profile, IAM role
    for service accounts on EKS, instance role)."""

    endpoint_url: str | None = None  # AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (S3-compatible stores)
    region: str | None = None  # AWS_REGION, else AWS_DEFAULT_REGION
    access_key_in_env: bool = False  # AWS_ACCESS_KEY_ID (with AWS_SECRET_ACCESS_KEY) is set
    session_token_in_env: bool = False  # AWS_SESSION_TOKEN is set


@dataclasses.dataclass(frozen=True)
class Settings:
    """One deployment's settings. Paths are as given (`~` expanded where they are used)."""

    home: Path  # SHED_PIPELINE_HOME: caches, incremental state, asset values, lineage (./.shed_pipeline)
    env: str = "local"  # SHED_ENV: local | prod
    out: str = ""  # SHED_PIPELINE_OUT: results folder or s3:// prefix ("" = <home>/out)
    lineage: Path | None = None  # SHED_PIPELINE_LINEAGE (None = <home>/lineage.duckdb)
    io_prefix: str = ""  # SHED_PIPELINE_IO: where prod keeps asset values ("" = <out>/_assets)
    source: str = ""  # SHED_PIPELINE_SOURCE: the source runs read when they name none; sensors watch it
    cache_dir: Path | None = None  # SHED_PIPELINE_CACHE: downloads (None = ~/.cache/shed_pipeline)
    bigbench_archive: Path | None = None  # SHED_BIGBENCH_ARCHIVE: a local copy of the bigbench archive
    device: str = "auto"  # SHED_DEVICE: auto | cpu | cuda | cuda:N
    precision: str = "auto"  # SHED_PRECISION: auto | fp32 | fp16 | bf16
    embedding_shards: int = 1  # SHED_EMBEDDING_SHARDS: embeddings split into that many row-id shards
    executor: str = "multiprocess"  # SHED_EXECUTOR: multiprocess | in_process | k8s
    k8s_gpu_step: Path | None = None  # SHED_K8S_GPU_STEP: a YAML file replacing the GPU steps' pod config
    dagster_home: Path | None = None  # DAGSTER_HOME (None = <home>/dagster_home for the CLI's instance)
    s3: S3Access = S3Access()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, overrides: Mapping[str, str] | None = None
    ) -> Settings:
        """The settings the environment gives (`os.environ` unless `environ`), with `overrides` (the
        CLI's flags, as the variables they stand for) over it; a value that cannot be used fails here,
        in one line naming the variable."""
        e = {**(os.environ if environ is None else environ), **(overrides or {})}

        def get(name: str) -> str:
            return (e.get(name) or "").strip()

        def path(name: str) -> Path | None:
            return Path(get(name)) if get(name) else None

        env = (get("SHED_ENV") or "local").lower()
        if env not in ENVIRONMENTS:
            raise ValueError(f"SHED_ENV={env!r} is not an environment: use one of {', '.join(ENVIRONMENTS)}")
        executor = (get("SHED_EXECUTOR") or "multiprocess").lower()
        if executor not in EXECUTORS:
            raise ValueError(f"SHED_EXECUTOR={executor!r} is not an executor: use one of {', '.join(EXECUTORS)}")
        return cls(
            home=Path(e.get("SHED_PIPELINE_HOME") or Path.cwd() / ".shed_pipeline"),
            env=env,
            out=e.get("SHED_PIPELINE_OUT", ""),
            lineage=path("SHED_PIPELINE_LINEAGE"),
            io_prefix=get("SHED_PIPELINE_IO"),
            source=e.get("SHED_PIPELINE_SOURCE", ""),
            cache_dir=path("SHED_PIPELINE_CACHE"),
            bigbench_archive=path("SHED_BIGBENCH_ARCHIVE"),
            device=e.get("SHED_DEVICE", "auto"),
            precision=e.get("SHED_PRECISION", "auto"),
            embedding_shards=parse_shard_count(e.get("SHED_EMBEDDING_SHARDS")),
            executor=executor,
            k8s_gpu_step=path("SHED_K8S_GPU_STEP"),
            dagster_home=path("DAGSTER_HOME"),
            s3=S3Access(
                endpoint_url=get("AWS_ENDPOINT_URL_S3") or get("AWS_ENDPOINT_URL") or None,
                region=get("AWS_REGION") or get("AWS_DEFAULT_REGION") or None,
                access_key_in_env=bool(get("AWS_ACCESS_KEY_ID")),
                session_token_in_env=bool(get("AWS_SESSION_TOKEN")),
            ),
        )

    def replace(self, **changes) -> Settings:
        """A copy with `changes` (the CLI's flags over the environment's values)."""
        return dataclasses.replace(self, **changes)

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def lineage_path(self) -> Path:
        """The project's one lineage database: SHED_PIPELINE_LINEAGE, else `<home>/lineage.duckdb`,
        whatever folder the results go to, so that every run of a project is found in one place."""
        return self.lineage.expanduser() if self.lineage else self.folder.lineage

    @property
    def folder(self) -> ProjectFolder:
        return ProjectFolder(self.home_dir)

    @property
    def legacy_lineage_path(self) -> Path:
        return self.folder.legacy_lineage

    @property
    def downloads(self) -> Path:
        """Where downloaded models, archives and their extracts are kept."""
        return (self.cache_dir or default_downloads()).expanduser()

    @property
    def local_out(self) -> Path:
        """The local folder results are written to (with an s3:// `out`: the staging copy under home)."""
        return self.folder.out if not self.out or is_s3(self.out) else Path(self.out).expanduser()

    @property
    def dagster_home_dir(self) -> Path:
        """The Dagster instance's folder: DAGSTER_HOME, else `<home>/dagster_home`."""
        return (self.dagster_home or self.folder.dagster_home).expanduser()

    @property
    def asset_values(self) -> str:
        """Where asset values are stored: `<home>/assets` (local), or an s3:// prefix (prod)."""
        if self.env == "prod":
            from shed_pipeline.core.objectstore import S3Uri

            return self.io_prefix or str(S3Uri.parse(self.out).child("_assets"))
        return str(self.folder.asset_values)
