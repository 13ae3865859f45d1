"""A fanned-out estimation's shares: each worker evaluates its share of the coalitions the estimation
will ask for into the evaluation cache, where the final pass (`estimation.estimate`) finds them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shed_pipeline.core.progress import Log, silent
from shed_pipeline.core.utilities import CachedUtility, EvaluationStore
from shed_pipeline.core.valuation.preparation import PreparedValuation


def evaluate_share(
    prepared: PreparedValuation, evaluation_store: Path, share: int, shares: int, *, seed: int = 0, log: Log = silent
) -> dict[str, int]:
    """Evaluate one share (0 .. shares-1) of the coalitions the estimation will ask for, into the
    evaluation cache, where the final pass (`estimate`) finds them. The union of the shares is every
    coalition of the estimation and U(all proxies), each evaluated by one share."""
    if not prepared.fans_out:
        raise ValueError(
            f"estimator {prepared.estimator.name} with these settings chooses its coalitions from the values: "
            "it cannot be split into shares"
        )
    if not 0 <= share < shares:
        raise ValueError(f"share {share} of {shares} does not exist")
    with EvaluationStore(evaluation_store).session(prepared.built.key, prepared.built.description) as session:
        progress = prepared.progress(log, f", share {share + 1} of {shares}")
        answered = CachedUtility(
            prepared.built.utility, prepared.built.identities, session, progress=progress, share=(share, shares)
        )
        prepared.estimator.run(answered, prepared.estimator_settings, seed, prepared.cluster_ids)
        answered.progress = None
        answered.value(np.ones(len(prepared.proxy_ids), dtype=bool))
        if progress is not None:
            progress.finish()
    return {
        "share": share,
        "shares": shares,
        "coalitions": answered.coalitions,
        "utility_evaluations": answered.evaluations,
        "utility_cache_hits": answered.stored_hits,
        "coalitions_of_other_shares": answered.left_to_others,
    }
