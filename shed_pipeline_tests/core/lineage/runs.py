"""Two-cluster runs written through LineageStore, for the lineage tests."""

import polars as pl

from shed_pipeline.core.lineage import LineageStore


def fill(store: LineageStore, run: str, selected: list[str], pool=("a", "b", "c", "d"), quarantined=("q",)):
    store.record_asset(run, "raw_dataset", "0.1", {"seed": 0}, {}, source="src", source_fingerprint="fp-" + run)
    store.write_table(
        "rows",
        run,
        pl.DataFrame(
            {
                "row_id": [*pool, "v"],
                "split": ["pool"] * len(pool) + ["validation"],
                "task": None,
                "source_file": "f",
                "source_locator": list(range(len(pool) + 1)),
            }
        ),
    )
    store.write_table(
        "quarantine",
        run,
        pl.DataFrame(
            {
                "source_file": ["f"],
                "source_locator": [9],
                "row_id": list(quarantined),
                "reason": ["duplicate"],
                "detail": ["same as f:1"],
                "excerpt": [""],
            }
        ),
    )
    store.write_table(
        "clusters",
        run,
        pl.DataFrame(
            {
                "cluster_id": [0, 1],
                "size": [2, len(pool) - 2],
                "proxy_row_id": [pool[0], pool[2]],
                "inertia": [0.1, 0.2],
            }
        ),
    )
    store.write_table(
        "memberships",
        run,
        pl.DataFrame(
            {"row_id": list(pool), "cluster_id": [0, 0] + [1] * (len(pool) - 2), "sq_distance": [0.0] * len(pool)}
        ),
    )
    store.write_table(
        "scores",
        run,
        pl.DataFrame(
            {
                "cluster_id": [0, 1],
                "proxy_row_id": [pool[0], pool[2]],
                "score": [0.9, 0.1],
                "stderr": [None, None],
                "rank": [1, 2],
                "estimator": "knn_exact",
                "utility": "knn",
            }
        ),
    )
    store.write_table(
        "selections",
        run,
        pl.DataFrame(
            {
                "row_id": selected,
                "cluster_id": [0] * len(selected),
                "method": "qocs",
                "draw_order": list(range(len(selected))),
                "score": [0.9] * len(selected),
                "reason": [f"qocs rule for {r}" for r in selected],
            }
        ),
    )
    store.record_asset(
        run,
        "curated_subset",
        "0.1",
        {"method": "qocs"},
        {},
        inputs={"raw_dataset": run, "clusters": run, "proxy_shapley_scores": run},
    )
