"""Pieces of the graph-backed assets (proxy_shapley_scores, row_values): one config for all their
ops, op inputs, and the dynamic steps that split their work over workers."""

import re
from typing import Iterator, Sequence

import dagster as dg


def one_config(config_class: type[dg.Config], ops: Sequence[str]) -> dg.ConfigMapping:
    """One config for every op of a graph asset: run config and the launchpad read as for a one-op asset."""
    return dg.ConfigMapping(
        config_fn=lambda cfg: {op: {"config": cfg} for op in ops}, config_schema=config_class.to_config_schema()
    )


def graph_ins(columns: Sequence[str], *after: str) -> dict[str, dg.In]:
    """Inputs of a graph asset's op: raw_dataset read for `columns` at most, and Nothing inputs named
    `after` that only order the op after others (the shares it waits for)."""
    return {"raw_dataset": dg.In(metadata={"columns": list(columns)}), **{name: dg.In(dg.Nothing) for name in after}}


def worker_parts(kind: str, workers: int, output_name: str) -> Iterator[dg.DynamicOutput]:
    """One dynamic output per worker, keyed `<kind>_<i>_of_<workers>` (see `worker_part`)."""
    for i in range(workers):
        yield dg.DynamicOutput(None, mapping_key=f"{kind}_{i}_of_{workers}", output_name=output_name)


def worker_part(context: dg.OpExecutionContext) -> tuple[int, int]:
    """(i, workers) of a mapped step, from its key `<kind>_<i>_of_<workers>`."""
    i, workers = re.fullmatch(r"[a-z]+_(\d+)_of_(\d+)", context.get_mapping_key() or "").groups()
    return int(i), int(workers)
