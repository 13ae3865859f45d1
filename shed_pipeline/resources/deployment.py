"""The resources of a deployment, built from its Settings."""

from shed_pipeline.core.objectstore import is_s3
from shed_pipeline.resources.compute import ComputeResource
from shed_pipeline.resources.lineage import LineageResource
from shed_pipeline.resources.local_parquet_io import PolarsParquetIOManager
from shed_pipeline.resources.paths import PathsResource
from shed_pipeline.resources.s3 import s3_resource
from shed_pipeline.resources.s3_parquet_io import S3ParquetIOManager
from shed_pipeline.settings import ENVIRONMENTS, Settings


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
            "SHED_ENV=prod needs SHED_PIPELINE_OUT=s3://bucket/prefix (results and asset values live in S3), got "
            f"{out!r}"
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
