"""The project folders resource: working data, results, downloads, state."""

from pathlib import Path

import dagster as dg

from shed_pipeline.core.objectstore import is_s3
from shed_pipeline.settings import ProjectFolder, default_downloads


class PathsResource(dg.ConfigurableResource):
    """Project folders: working data under `home`, results under `out_dir` (a folder or an s3://
    prefix), downloads under `cache_dir`."""

    home: str
    out_dir: str = ""  # default: <home>/out; an s3:// prefix publishes the results there
    cache_dir: str = ""  # default: ~/.cache/shed_pipeline (deployments pass Settings.downloads)
    bigbench_archive: str = ""  # a local copy of the bigbench archive; default: downloaded into the cache
    # The project's source (file, folder or s3:// location) when a run does not name one; watched by
    # source_change_sensor.
    source: str = ""

    def folder(self) -> ProjectFolder:
        return ProjectFolder(Path(self.home).expanduser())

    def out(self) -> Path:
        """The local folder results are written to (with an s3:// out_dir: the staging copy under home)."""
        if self.out_dir and not is_s3(self.out_dir):
            p = Path(self.out_dir).expanduser()
        else:
            p = self.folder().out
        p.mkdir(parents=True, exist_ok=True)
        return p

    def out_location(self) -> str:
        """Where results are published: the s3:// prefix, else the local folder."""
        return self.out_dir if is_s3(self.out_dir) else str(self.out())

    def s3_mirror(self) -> Path:
        return self.folder().s3_mirror

    def archive(self) -> Path | None:
        """A local copy of the bigbench archive (the packaged sources and benchmarks); None: download it."""
        return Path(self.bigbench_archive).expanduser() if self.bigbench_archive else None

    def cache(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_downloads()

    def embedding_cache_db(self) -> Path:
        return self.folder().embedding_cache_db

    def utility_cache_db(self) -> Path:
        return self.folder().utility_cache_db

    def evaluation_cache(self) -> Path:
        return self.folder().evaluation_cache

    def state(self, name: str) -> Path:
        """Where an incremental step keeps what the next run refreshes (the cluster anchors, ...)."""
        p = self.folder().state
        p.mkdir(parents=True, exist_ok=True)
        return p / name
