"""One arm against others, head to head, from a `bench/evaluation.py` result (no new fine-tunes):
per benchmark the difference of their means over the same test rows and items, a 95% paired
bootstrap interval, and z against the random arms' seed-to-seed spread.

Usage: python bench/compare_arms.py HOME/bench_evaluation.json ARM OTHER [OTHER ...] [--bootstrap 2000]
e.g.   python bench/compare_arms.py /tmp/run/bench_evaluation.json knn:qwcs:knn_shapley stratified longest ifd full_pool
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("arm")
    ap.add_argument("others", nargs="+")
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    from shed_pipeline.core.evaluation import head_to_head

    try:
        records = json.loads(a.results.read_text())["records"]
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"{a.results}: not a bench/evaluation.py result ({exc})")
    rows = []
    for other in a.others:
        try:
            rows += head_to_head(records, a.arm, other, bootstrap=a.bootstrap, seed=a.seed)
        except ValueError as exc:
            sys.exit(str(exc))
    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    by = {(r["other"], r["benchmark"]): r for r in rows}
    print(f"{a.arm} minus each arm: difference [95% paired bootstrap interval], z against the random arms' spread\n")
    print("| versus | " + " | ".join(benches) + " |")
    print("|---" * (len(benches) + 1) + "|")
    for other in a.others:
        cells = []
        for b in benches:
            r = by.get((other, b))
            z = f", z {r['z']:+.1f}" if r and r["z"] is not None else ""
            cells.append(f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]{z}" if r else "-")
        print(f"| {other} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
