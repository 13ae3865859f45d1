"""What the Parquet IO managers share: asset values as polars frames in Parquet (never pickle), each
stamped with the run that wrote it and checked against the run a reader expects."""

import dagster as dg
import polars as pl

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


def read_stamped(source, columns: list[str] | None = None) -> tuple[pl.DataFrame, str | None]:
    """A Parquet file (path or file object) as a frame (only `columns`, when given), and the run id
    stamped in it; schema and data come from one open file, so a writer replacing it meanwhile
    cannot mix two versions."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(source)
    return pl.from_arrow(pf.read(columns=columns)), _stamp(pf.metadata)


def stamp_of(source) -> str | None:
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


class ParquetIOManager(dg.ConfigurableIOManager):
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
                f"{asset}: a step over partitions {keys} must return one polars DataFrame per partition, keyed by "
                "partition"
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
                    f"{exc.filename}: partition {key} of upstream asset {asset} has not been materialized here "
                    "(materialize all of its partitions)"
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
                    f"{msg} whose value this run reads: another run wrote to this project folder meanwhile (runs on "
                    "one project folder must take turns); run again"
                )
            raise AssetValueMismatch(
                f"{msg}, this Dagster instance's latest materialization of it: another Dagster instance "
                f"(DAGSTER_HOME) wrote it; materialize {what} again"
            )
