"""Dagster resources and IO managers, one module each, and `resources_for`, which builds a
deployment's set from its `Settings` so that the UI (`dagster dev`, settings from the environment)
and the CLI (`shed-pipeline run`, the environment plus its flags) load the same definitions."""

from shed_pipeline.resources.compute import ComputeResource
from shed_pipeline.resources.deployment import resources_for
from shed_pipeline.resources.lineage import LineageResource, adopt_legacy_lineage
from shed_pipeline.resources.local_parquet_io import PolarsParquetIOManager
from shed_pipeline.resources.parquet_io import AssetValueMismatch, latest_partition_run
from shed_pipeline.resources.paths import PathsResource
from shed_pipeline.resources.s3 import object_store, s3_resource
from shed_pipeline.resources.s3_parquet_io import S3ParquetIOManager

__all__ = [
    "AssetValueMismatch",
    "ComputeResource",
    "LineageResource",
    "PathsResource",
    "PolarsParquetIOManager",
    "S3ParquetIOManager",
    "adopt_legacy_lineage",
    "latest_partition_run",
    "object_store",
    "resources_for",
    "s3_resource",
]
