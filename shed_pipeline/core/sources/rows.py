"""A validated row (`Row`) and its id (`row_id_for`): a hash of its content, so equal content has an
equal id wherever and whenever it is read."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# One encoder for every row: json.dumps with arguments builds a new one per call (a tenth of reading).
_canonical_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def row_id_for(instruction: str, input_: str, output: str) -> str:
    """Content hash of a row: equal content, equal id; never keyed by text position or repeatable text alone."""
    canon = _canonical_json([instruction, input_, output])
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:24]


@dataclass(kw_only=True)
class Row:
    row_id: str
    instruction: str
    input: str
    output: str
    task: str | None
    source_file: str
    source_locator: int
    source_order: int  # position in the (sorted) source: "file order" for QOCS
    record: str  # the original record as JSON, so outputs keep the input's own schema
    messages: str | None = None  # chat rows: the prompt turns kept, as a JSON list of {role, content}
    turns_dropped: int = 0  # chat rows: turns after the last assistant turn + tool/other-role turns
