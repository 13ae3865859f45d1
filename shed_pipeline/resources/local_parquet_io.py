"""Asset values as Parquet files under a local folder."""

from pathlib import Path

import polars as pl

from shed_pipeline.core.files import atomic_path
from shed_pipeline.resources.parquet_io import ParquetIOManager, read_stamped, stamp_of


class PolarsParquetIOManager(ParquetIOManager):
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
                return read_stamped(fh, columns)
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
            stamp = stamp_of(path)
        except FileNotFoundError:
            raise FileNotFoundError(2, "no such file", str(path)) from None
        scan = pl.scan_parquet(path)
        return (scan.select(columns) if columns else scan), stamp
