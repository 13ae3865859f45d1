"""Asset values as Parquet objects under an s3:// prefix."""

import io

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource

from shed_pipeline.core.objectstore import CONTENT_TYPES, ObjectNotFound, S3Uri
from shed_pipeline.resources.parquet_io import ParquetIOManager, read_stamped
from shed_pipeline.resources.s3 import object_store


class S3ParquetIOManager(ParquetIOManager):
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
            return read_stamped(io.BytesIO(object_store(self.s3).read_bytes(uri)), columns)
        except ObjectNotFound as exc:
            raise FileNotFoundError(2, "no such object", str(uri)) from exc
