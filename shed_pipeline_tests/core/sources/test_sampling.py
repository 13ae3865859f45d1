"""The deterministic, stratified sample of a source's units."""

from collections import Counter

from shed_pipeline.core.sources.load import read_units
from shed_pipeline.core.sources.sampling import sample_units
from shed_pipeline_tests.synthetic import make_rows, write_jsonl


def test_sample_is_deterministic_stratified_and_position_independent(tmp_path):
    rows = make_rows(400)
    units = read_units(write_jsonl(tmp_path / "a.jsonl", rows))
    s1 = sample_units(units, 40, seed=3, stratify="task")
    s2 = sample_units(units, 40, seed=3, stratify="task")
    assert [u.payload for u in s1] == [u.payload for u in s2]
    assert Counter(u.payload["task"] for u in s1) == {
        t: 10 for t in ("digits_to_words", "first_colour", "animal_class", "addition")
    }
    assert [u.payload for u in sample_units(units, 40, seed=4, stratify="task")] != [u.payload for u in s1]
    # Reordering the source does not change which records are chosen.
    units_rev = read_units(write_jsonl(tmp_path / "b.jsonl", rows[::-1]))
    fp = lambda us: sorted(u.fingerprint() for u in us)  # noqa: E731
    assert fp(sample_units(units_rev, 40, seed=3, stratify="task")) == fp(s1)


def test_sample_gives_a_small_stratum_all_it_has_and_the_rest_to_others(tmp_path):
    rows = [{"instruction": "a", "input": str(i), "output": "x", "task": "small"} for i in range(3)]
    rows += [{"instruction": "b", "input": str(i), "output": "x", "task": "big"} for i in range(100)]
    units = read_units(write_jsonl(tmp_path / "a.jsonl", rows))
    s = sample_units(units, 20, seed=0, stratify="task")
    assert Counter(u.payload["task"] for u in s) == {"small": 3, "big": 17}
