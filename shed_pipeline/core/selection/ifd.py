"""ifd: Superfiltering (Li et al. 2024): the rows whose instruction helps the model most.

IFD = PPL(response | instruction) / PPL(response), per row, from a small LM (the `ifd` row values).
Rule: keep the highest IFD among rows with IFD < 1 (an IFD of 1 or more means the instruction does
not help predict the response: likely misaligned). If fewer than n rows have IFD < 1, the rest of the
subset is the rows with IFD >= 1, lowest first, then rows without a value, in source order; their
reasons say so. Ties keep source order.
"""

from __future__ import annotations

from dataclasses import dataclass

from shed_pipeline.core.selection.base import Selection, SelectionInputs, best_first
from shed_pipeline.core.strategies import Strategy


@dataclass(frozen=True)
class IfdSettings:
    pass


def run(inputs: SelectionInputs, settings: IfdSettings) -> list[Selection]:
    values = inputs.values("ifd")
    order = best_first(inputs.row_ids, "ifd", values)[: inputs.n]
    below = sum(1 for r in inputs.row_ids if values.get(r) is not None and values[r] < 1)
    out: list[Selection] = []
    for d, rid in enumerate(order):
        v = values.get(rid)
        if v is not None and v < 1:
            reason = (
                f"ifd: IFD {v:.4g} < 1, rank {d + 1} of the {below} rows below 1 (Superfiltering: highest IFD below 1)"
            )
        elif v is not None and v == v:
            reason = (
                f"ifd: only {below} rows have IFD < 1 for a target of {inputs.n}; filled with IFD {v:.4g} >= 1, "
                "lowest first"
            )
        else:
            reason = (
                f"ifd: only {below} rows have IFD < 1 for a target of {inputs.n}; filled with a row without an IFD "
                "value, in source order"
            )
        out.append(Selection(rid, int(inputs.cluster_of.get(rid, -1)), d, reason))
    return out


STRATEGY = Strategy(
    "ifd",
    "Superfiltering: the highest IFD among rows with IFD < 1 (needs the ifd row values)",
    IfdSettings,
    run,
    requires={"row_values": ("ifd",)},
)
