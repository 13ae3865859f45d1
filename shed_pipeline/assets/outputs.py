"""What an asset shows and publishes besides its value: plots in the UI, result files (uploaded when
the results go to S3)."""

import base64
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from shed_pipeline.core.objectstore import is_s3, publish
from shed_pipeline.resources import PathsResource, object_store


def png_md(png: bytes, alt: str) -> dg.MetadataValue:
    # Dagster has no image metadata type; an inline data URI renders in the UI's markdown.
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def publish_outputs(paths: PathsResource, s3: S3Resource, files: list[Path], log) -> dict[str, dg.MetadataValue]:
    """Result files written under paths.out(): with an s3:// out_dir, also uploaded there (one
    atomic PUT each). Metadata pointing at where a user finds each file."""
    if not is_s3(paths.out_dir):
        return {f.name: dg.MetadataValue.path(str(f)) for f in files}
    locations = publish(object_store(s3, log), files, paths.out_dir)
    return {f.name: dg.MetadataValue.url(loc) for f, loc in zip(files, locations, strict=True)}
