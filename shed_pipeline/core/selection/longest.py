"""longest: the rows with the longest responses ("Long Is More for Alignment", Zhao et al. 2024).

A response's length is its number of characters (Unicode code points) of the row's output; ties go
to the lower row id, so the choice does not depend on the source's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shed_pipeline.core.selection.base import Selection, SelectionInputs
from shed_pipeline.core.strategies import Strategy


@dataclass(frozen=True)
class LongestSettings:
    pass


def run(inputs: SelectionInputs, settings: LongestSettings) -> list[Selection]:
    lengths = np.fromiter((len(o or "") for o in inputs.outputs), dtype=np.int64, count=len(inputs.outputs))
    ids = np.asarray(inputs.row_ids, dtype=object)
    order = np.lexsort((ids, -lengths))[: inputs.n]  # last key first: by length, then row id
    pool = len(inputs.row_ids)
    return [
        Selection(
            inputs.row_ids[i],
            int(inputs.cluster_of.get(inputs.row_ids[i], -1)),
            d,
            f"longest: response of {int(lengths[i])} characters, rank {d + 1} of {pool} by length",
        )
        for d, i in enumerate(order)
    ]


STRATEGY = Strategy(
    "longest", "the rows with the longest responses, by characters (ties: lower row id)", LongestSettings, run
)
