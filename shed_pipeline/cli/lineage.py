"""`shed-pipeline lineage`: runs, why a row is (not) in a curated set, and the diff of two runs."""

import argparse
import json
from pathlib import Path

from shed_pipeline.cli.render import table
from shed_pipeline.core.terminal_text import printable
from shed_pipeline.settings import Settings


def cmd_lineage(args: argparse.Namespace) -> int:
    from shed_pipeline.core.lineage import LineageStore

    settings = Settings.from_env()
    db = Path(args.db).expanduser() if args.db else settings.lineage_path
    if not args.db and not db.exists() and settings.legacy_lineage_path.is_file():
        db = settings.legacy_lineage_path  # not moved yet (the next run moves it): read it where it is
    store = LineageStore(db)
    if args.query == "runs":
        runs = store.runs()
        if args.json:
            print(json.dumps([r.as_dict() for r in runs], indent=2, default=str))
        elif not runs:
            print(f"no runs in {printable(db)}")
        else:
            print(
                table(
                    [
                        "run_id",
                        "started",
                        "source",
                        "rows",
                        "quarantined",
                        "added",
                        "removed",
                        "clusters",
                        "affected",
                        "selected",
                        "method",
                    ],
                    [
                        [
                            r.run_id,
                            str(r.started_at)[:19],
                            r.source or "-",
                            r.rows_ok,
                            r.rows_quarantined,
                            r.rows_added,
                            r.rows_removed,
                            r.clusters,
                            r.clusters_affected,
                            r.selected,
                            r.method or "-",
                        ]
                        for r in runs
                    ],
                )
            )
        return 0
    if args.query == "why":
        w = store.explain(args.row_id, args.run).as_dict()
        if args.json:
            print(json.dumps(w, indent=2, default=str))
        else:
            for k, v in w.items():
                print(f"{k:>16}: {printable(v)}")
        return 0
    d = store.diff(args.run_a, args.run_b)
    if args.json:
        print(json.dumps(d.as_dict(), indent=2, default=str))
    else:
        print(f"{d.run_a} -> {d.run_b}: {d.kept} kept, {len(d.added)} added, {len(d.removed)} removed")
        for a in d.added:
            print(f"+ {a.row_id}  {printable(a.reason)}")
        for r in d.removed:
            print(f"- {r.row_id}  {r.status_in_b}: {printable(r.reason)}")
    return 0
