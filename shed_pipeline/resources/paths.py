"""The project folders resource: working data, results, downloads, state."""

from pathlib import Path

import dagster as dg

from shed_pipeline.core.objectstore import is_s3
from shed_pipeline.settings import Settings


class PathsResource(dg.ConfigurableResource):
    """Project folders: working data under `home`, results under `out_dir` (a folder or an s3://
    prefix), downloads under `cache_dir`."""

    home: str
    out_dir: str = ""  # default: <home>/out; an s3:// prefix publishes the results there
    cache_dir: str = ""  # default: Settings.downloads (SHED_PIPELINE_CACHE or ~/.cache/shed_pipeline)
    bigbench_archive: str = ""  # a local copy of the bigbench archive; default: downloaded into the cache
    # The project's source (file, folder or s3:// location) when a run does not name one; watched by
    # source_change_sensor.
    source: str = ""

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
