"""core/valuation/shares.py: an estimation evaluated in shares apart gives the serial values, each
coalition evaluated once; estimations that choose coalitions from the values are not split."""

import dataclasses

import numpy as np
import pytest

from shed_pipeline.core.utilities import EvaluationStore
from shed_pipeline.core.valuation import estimate as estimate_valuation
from shed_pipeline.core.valuation import evaluate_share, prepare_valuation, validation_rows
from shed_pipeline_tests.core.valuation.helpers import pool, run


class CountingKNN:
    """The knn utility, counting the coalitions it evaluates (each coalition's sorted positions)."""

    def __init__(self, inner):
        self.inner, self.n_players, self.asked = inner, inner.n_players, []

    def value(self, members):
        self.asked.append(tuple(np.flatnonzero(members)))
        return self.inner.value(members)


@pytest.mark.parametrize(
    ("estimator", "settings"),
    [
        ("banzhaf_msr", {"samples": 40}),
        ("ts_chains", {"chain_size": 3, "chain_rounds": 2, "permutations": 3}),
        ("tmc", {"permutations": 4}),
        ("shed_grouped", {"permutations": 3, "group_size": 2}),
    ],
)
def test_shares_evaluated_apart_give_the_serial_values_each_coalition_evaluated_once(tmp_path, estimator, settings):
    raw, emb, clusters = pool()
    serial = run(tmp_path / "serial", estimator=estimator, e_settings=settings, frames=(raw, emb, clusters), seed=3)
    store, shares = tmp_path / "shared" / "evals.duckdb", 3
    store.parent.mkdir()
    counted = []
    for share in range(shares):  # each share builds its own utility, as a worker process does
        prepared = prepare_valuation(
            "knn",
            None,
            estimator,
            settings,
            clusters=clusters,
            raw_dataset=raw,
            embeddings=emb,
            validation=validation_rows(raw, emb),
            seed=3,
        )
        assert prepared.fans_out
        prepared = dataclasses.replace(
            prepared, built=dataclasses.replace(prepared.built, utility=CountingKNN(prepared.built.utility))
        )
        counts = evaluate_share(prepared, store, share, shares, seed=3)
        assert counts["share"] == share and counts["utility_evaluations"] == len(prepared.built.utility.asked)
        assert (
            counts["coalitions"]
            == counts["utility_evaluations"] + counts["utility_cache_hits"] + counts["coalitions_of_other_shares"]
        )
        counted.append(prepared.built.utility.asked)
    evaluated = [c for asked in counted for c in asked]
    assert len(evaluated) == len(set(evaluated))  # no coalition evaluated by two shares
    # The serial run's coalitions (and U(all)), each evaluated by exactly one share.
    assert len(evaluated) == serial.counts["utility_evaluations"] == EvaluationStore(store).count(serial.built.key)
    assert all(len(asked) > 0 for asked in counted)  # the work is spread
    final = estimate_valuation(
        prepare_valuation(
            "knn",
            None,
            estimator,
            settings,
            clusters=clusters,
            raw_dataset=raw,
            embeddings=emb,
            validation=validation_rows(raw, emb),
            seed=3,
        ),
        clusters,
        store,
        seed=3,
    )
    assert (
        final.counts["utility_evaluations"] == 0
        and final.counts["utility_cache_hits_earlier_runs"] == final.counts["coalitions"]
    )
    assert final.scores.equals(serial.scores) and final.full == serial.full


def test_estimations_that_choose_coalitions_from_values_are_not_split(tmp_path):
    raw, emb, clusters = pool()
    for estimator, settings in [("tmc", {"permutations": 2, "truncation_tolerance": 0.1}), ("knn_exact", None)]:
        prepared = prepare_valuation(
            "knn",
            None,
            estimator,
            settings,
            clusters=clusters,
            raw_dataset=raw,
            embeddings=emb,
            validation=validation_rows(raw, emb),
        )
        assert not prepared.fans_out
        with pytest.raises(ValueError, match=f"estimator {estimator} .* cannot be split into shares"):
            evaluate_share(prepared, tmp_path / "e.duckdb", 0, 2)
    prepared = prepare_valuation(
        "knn",
        None,
        "banzhaf_msr",
        {"samples": 4},
        clusters=clusters,
        raw_dataset=raw,
        embeddings=emb,
        validation=validation_rows(raw, emb),
    )
    with pytest.raises(ValueError, match="share 2 of 2 does not exist"):
        evaluate_share(prepared, tmp_path / "e.duckdb", 2, 2)
