"""The validation rows a valuation scores against, pinned between full cluster fits.

Every utility value U(S) is measured on the validation rows, so a new validation row would change
every cached value. Between full fits the yardstick therefore stays fixed: rows that joined the
validation split since are used from the next fit on (the clusters' fit id changes whenever the
validation rows did, see assets/cluster.py), and pinned rows that left the source are dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence


def pinned_validation(path: str | Path, fit_id: str, current_ids: Sequence[str]) -> tuple[list[str], bool]:
    """The validation ids to use, in the order of `current_ids`, and whether the pin was renewed."""
    path = Path(path)
    pin = None
    if path.exists():
        try:
            pin = json.loads(path.read_text())
        except (OSError, ValueError):
            pin = None  # a damaged pin only costs cache hits
    if pin is not None and pin.get("fit_id") == fit_id:
        keep = set(pin["validation_row_ids"])
        return [r for r in current_ids if r in keep], False
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps({"fit_id": fit_id, "validation_row_ids": sorted(current_ids)}))
    tmp.replace(path)
    return list(current_ids), True
