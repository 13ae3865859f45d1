"""The persistent utility-evaluation cache: keys, reuse across runs, and resuming an interrupted run."""

import numpy as np
import pytest

from shed_pipeline.core.estimators import shed_grouped, tmc_shapley
from shed_pipeline.core.utilities import CachedUtility, EvaluationStore, KNNUtility, utility_key
from shed_pipeline.core.utilities.cache import coalition_key, fingerprint_arrays


def knn_game(n=12, v=9, seed=0):
    rng = np.random.default_rng(seed)
    return KNNUtility.from_matrices(np.argsort(rng.random((v, n)), axis=1), rng.random((v, n)), 3)


class Counting:
    """Counts calls of the raw utility; optionally fails after `fail_after` calls (a crash mid-run)."""

    def __init__(self, inner, fail_after=None):
        self.inner, self.n_players, self.calls, self.fail_after = inner, inner.n_players, 0, fail_after

    def value(self, mask):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed mid-Shapley")
        self.calls += 1
        return self.inner.value(mask)


IDS = [f"proxy{i:02d}" for i in range(12)]
KEY = utility_key("knn", {"k": 3}, "validation-v1")


def test_coalition_key_depends_on_the_member_ids_only():
    mask = np.array([1, 0, 1] + [0] * 9, dtype=bool)
    assert coalition_key(IDS, mask) == coalition_key(IDS[::-1], mask[::-1])  # order of players is irrelevant
    assert coalition_key(IDS, mask) != coalition_key(IDS, ~mask)
    assert utility_key("knn", {"k": 3}, "a") != utility_key("knn", {"k": 5}, "a") != utility_key("knn", {"k": 5}, "b")
    assert fingerprint_arrays(["a", "b"], np.zeros(2, np.float32)) != fingerprint_arrays(
        ["ab"], np.zeros(2, np.float32)
    )
    assert fingerprint_arrays(["a"], np.zeros(2, np.float32)) != fingerprint_arrays(["a"], np.zeros(2, np.float64))


def test_second_run_evaluates_nothing_and_gets_identical_values(tmp_path):
    store = EvaluationStore(tmp_path / "u.duckdb")
    raw = Counting(knn_game())
    with store.session(KEY, {"utility": "knn"}) as s:
        u1 = CachedUtility(raw, IDS, s)
        first = shed_grouped(u1, permutations=5, seed=3, group_size=2)
    assert u1.evaluations == raw.calls > 0 and store.count(KEY) == u1.evaluations
    raw2 = Counting(knn_game())
    with store.session(KEY, {"utility": "knn"}) as s:
        u2 = CachedUtility(raw2, IDS, s)
        second = shed_grouped(u2, permutations=5, seed=3, group_size=2)
    assert raw2.calls == 0 and u2.evaluations == 0 and u2.stored_hits == u1.evaluations
    np.testing.assert_array_equal(first.values, second.values)
    # Another utility key (other settings or validation data) shares nothing.
    raw3 = Counting(knn_game())
    with store.session(utility_key("knn", {"k": 5}, "validation-v1"), {}) as s:
        shed_grouped(CachedUtility(raw3, IDS, s), permutations=5, seed=3, group_size=2)
    assert raw3.calls == raw.calls


def test_interrupted_estimation_keeps_its_work_and_the_rerun_equals_an_uninterrupted_run(tmp_path):
    clean = tmc_shapley(CachedUtility(Counting(knn_game())), permutations=6, seed=1)
    total = CachedUtility(Counting(knn_game()))
    tmc_shapley(total, permutations=6, seed=1)
    store = EvaluationStore(tmp_path / "u.duckdb", flush_every=1000, flush_seconds=1e9)  # only the exit flush saves
    crashing = Counting(knn_game(), fail_after=25)
    with pytest.raises(KeyboardInterrupt), store.session(KEY, {}) as s:
        tmc_shapley(CachedUtility(crashing, IDS, s), permutations=6, seed=1)
    assert store.count(KEY) == 25
    resumed_raw = Counting(knn_game())
    with store.session(KEY, {}) as s:
        resumed = CachedUtility(resumed_raw, IDS, s)
        res = tmc_shapley(resumed, permutations=6, seed=1)
    assert resumed_raw.calls == total.evaluations - 25 and resumed.stored_hits == 25
    np.testing.assert_array_equal(res.values, clean.values)
    np.testing.assert_array_equal(res.stderr, clean.stderr)


def test_counting_utility_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="needs the players' row ids"):
        with EvaluationStore(tmp_path / "u.duckdb").session(KEY, {}) as s:
            CachedUtility(knn_game(), None, s)
    with pytest.raises(ValueError, match="3 player ids for 12 players"):
        CachedUtility(knn_game(), IDS[:3])
    with pytest.raises(ValueError, match="shape"):
        CachedUtility(knn_game()).value(np.ones(3, dtype=bool))


KILL_SCRIPT = """
import sys, time
import numpy as np
from shed_pipeline.core.estimators import tmc_shapley
from shed_pipeline.core.utilities import CachedUtility, EvaluationStore
from shed_pipeline_tests.core.utilities.test_cache import IDS, KEY, knn_game

class Slow:
    def __init__(self, inner):
        self.inner, self.n_players, self.calls = inner, inner.n_players, 0
    def value(self, mask):
        time.sleep(0.05)
        self.calls += 1
        print(self.calls, flush=True)
        return self.inner.value(mask)

with EvaluationStore(sys.argv[1], flush_seconds=0.1).session(KEY, {}) as s:
    tmc_shapley(CachedUtility(Slow(knn_game()), IDS, s), permutations=6, seed=1)
"""


def test_a_process_killed_mid_shapley_keeps_what_it_had_flushed(tmp_path):
    """SIGKILL: no finally block runs; the periodic flushes are what survives."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    db = tmp_path / "u.duckdb"
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(db)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if int(line) >= 20:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    store = EvaluationStore(db)
    kept = store.count(KEY)
    total = CachedUtility(Counting(knn_game()))
    clean = tmc_shapley(total, permutations=6, seed=1)
    assert 10 <= kept < total.evaluations  # flushed about every 2 evaluations; the rest was lost
    raw = Counting(knn_game())
    with store.session(KEY, {}) as s:
        res = tmc_shapley(CachedUtility(raw, IDS, s), permutations=6, seed=1)
    assert raw.calls == total.evaluations - kept
    np.testing.assert_array_equal(res.values, clean.values)


CONCURRENT_SCRIPT = """
import sys
from shed_pipeline.core.utilities import EvaluationStore
with EvaluationStore(sys.argv[1], lock_timeout_s=10).session("other-key", {}) as s:
    for i in range(5):
        s.put(f"c{i}", float(i))
"""


def test_two_processes_can_score_at_the_same_time(tmp_path):
    """A long estimation must not lock the cache file for its whole duration."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    db = tmp_path / "u.duckdb"
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    store = EvaluationStore(db)
    with store.session(KEY, {}) as mine:
        mine.put("a", 1.0)
        mine.flush()
        done = subprocess.run(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(db)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        mine.put("b", 2.0)
    assert store.count(KEY) == 2 and store.count("other-key") == 5
