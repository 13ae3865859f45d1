"""An arm's cached results are found again only for exactly the same model, budget, rows (in order),
scoring material and token limit."""

from pathlib import Path

from shed_pipeline.core.evaluation.arm_cache import arm_path, material_digest, read_arm, write_arm
from shed_pipeline.core.evaluation.benchmarks import ChoiceItem
from shed_pipeline.core.lm import FinetuneBudget

ITEMS = {"quiz": [ChoiceItem(prompt="2+2?", choices=("3", "4"), answer=1)]}
ROWS = [("say hi", "hi"), ("say bye", "bye")]


def path(tmp_path: Path, **changes) -> Path:
    args = {
        "model_key": "model-a",
        "budget": FinetuneBudget(steps=4),
        "rows": ROWS,
        "material": material_digest(["t1"], ["o1"], ITEMS),
        "choice_max_tokens": 256,
    } | changes
    return arm_path(tmp_path, **args)


def test_the_same_inputs_find_the_same_file_and_any_change_another(tmp_path):
    same = path(tmp_path)
    assert path(tmp_path) == same and same.parent == tmp_path and same.suffix == ".json"
    others = [
        path(tmp_path, model_key="model-b"),
        path(tmp_path, budget=FinetuneBudget(steps=5)),
        path(tmp_path, budget=None),
        path(tmp_path, rows=ROWS[::-1]),  # the order of the rows is the order of training
        path(tmp_path, rows=ROWS[:1]),
        path(tmp_path, material=material_digest(["t1"], ["o2"], ITEMS)),
        path(tmp_path, material=material_digest(["t1"], ["o1"], {})),
        path(tmp_path, choice_max_tokens=128),
    ]
    assert len({same, *others}) == len(others) + 1


def test_results_round_trip_and_a_missing_arm_reads_as_none(tmp_path):
    target = path(tmp_path)
    assert read_arm(target) is None
    results = [{"benchmark": "quiz", "metric": "accuracy", "value": 1.0, "scores": [1.0]}]
    write_arm(target, results)
    assert read_arm(target) == results
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left beside it
