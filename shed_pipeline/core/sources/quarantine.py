"""Quarantined units and what a read kept: `QuarantineEntry` (where, why, an excerpt), `ReadResult`
(rows kept, entries quarantined, counts that balance, per file) and the lines that sum them up."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Sequence

from shed_pipeline.core.sources.reasons import Problem
from shed_pipeline.core.sources.rows import Row
from shed_pipeline.core.sources.units import RawUnit, clean


@dataclass
class QuarantineEntry:
    source_file: str
    source_locator: int
    reason: str
    detail: str
    _: KW_ONLY
    row_id: str | None = None
    excerpt: str = ""


def _excerpt(payload: Any, limit: int = 200) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
    return clean(text)[:limit]


def quarantine_entry(unit: RawUnit, problem: Problem, row_id: str | None = None) -> QuarantineEntry:
    """The entry for a unit quarantined for `problem`; its detail ends with the unit's note, if any."""
    reason, detail = problem
    detail = f"{detail} ({unit.note})" if unit.note else detail
    return QuarantineEntry(
        clean(unit.source_file),
        unit.locator,
        reason,
        clean(detail),
        row_id=row_id,
        excerpt=_excerpt(unit.payload),
    )


def quarantine_summary(entries: Sequence[QuarantineEntry]) -> str:
    """Reasons by count, most first, with the first detail of the top one:
    "missing_field 1,200 (field ...), wrong_type 3"."""
    counts = Counter(e.reason for e in entries)
    first: dict[str, str] = {}
    for e in entries:
        first.setdefault(e.reason, e.detail)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(
        f"{reason} {n:,}" + (f" ({first[reason]})" if i == 0 else "") for i, (reason, n) in enumerate(ordered)
    )


def all_quarantined_message(file_name: str, entries: Sequence[QuarantineEntry]) -> str:
    """The line for a file (or source) none of whose units made a row, e.g. "all 1,200 rows of FILE
    quarantined: missing_field 1,200 (field 'instruction' is missing; record fields: ...)"."""
    n = len(entries)
    return clean(f"all {n:,} row{'s' if n != 1 else ''} of {file_name} quarantined: {quarantine_summary(entries)}")


@dataclass
class ReadResult:
    rows: list[Row] = field(default_factory=list)  # rows kept and not yet handed to validate_units' sink
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    turns_after_last_assistant: int = 0  # over the chat rows kept: turns after their last assistant turn
    turns_other_roles: int = 0  # over the chat rows kept: tool (or other non-chat role) turns before it
    # File -> rows kept and already handed to the sink.
    rows_handed_over: dict[str, int] = field(default_factory=dict)

    @property
    def rows_kept(self) -> int:
        return len(self.rows) + sum(self.rows_handed_over.values())

    @property
    def rows_in(self) -> int:
        return self.rows_kept + len(self.quarantine)

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.quarantine:
            counts[q.reason] = counts.get(q.reason, 0) + 1
        return dict(sorted(counts.items()))

    def file_counts(self) -> dict[str, tuple[int, int]]:
        """file -> (rows ok, rows quarantined), files in order of first appearance."""
        counts: dict[str, list[int]] = {f: [n, 0] for f, n in self.rows_handed_over.items()}
        for r in self.rows:
            counts.setdefault(r.source_file, [0, 0])[0] += 1
        for q in self.quarantine:
            counts.setdefault(q.source_file, [0, 0])[1] += 1
        return {f: (ok, bad) for f, (ok, bad) in counts.items()}

    def all_quarantined_files(self) -> list[str]:
        """One line per file every unit of which was quarantined (see `all_quarantined_message`)."""
        ok = {r.source_file for r in self.rows} | set(self.rows_handed_over)
        by_file: dict[str, list[QuarantineEntry]] = {}
        for q in self.quarantine:
            if q.source_file not in ok:
                by_file.setdefault(q.source_file, []).append(q)
        return [all_quarantined_message(f, entries) for f, entries in by_file.items()]

    def all_quarantined_message(self, label: str) -> str | None:
        """When no unit of the whole source made a row: one line saying why, naming the file when the
        source has one, else the source and its number of files; None when some unit made a row."""
        if self.rows_kept or not self.quarantine:
            return None
        files = {q.source_file for q in self.quarantine}
        return all_quarantined_message(
            next(iter(files)) if len(files) == 1 else f"{label} ({len(files):,} files)", self.quarantine
        )
