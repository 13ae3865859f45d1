"""Multiple-choice items read from a bigbench-shaped archive built in the test."""

import io
import json
import tarfile

import pytest

from shed_pipeline.core.evaluation.benchmarks import check_benchmarks, choice_index, load_choice_items


def write_archive(path, tasks):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in tasks.items():
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(f"bigbench-1.0.0/bigbench/benchmark_tasks/{name}/task.json")
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    return path


def quiz(n):
    return {
        "task_prefix": "Answer.",
        "examples": [
            {"input": f"q{i}", "target_scores": {"no": 0, "yes": 1} if i % 2 else {"red": 1, "blue": 0, "green": 0}}
            for i in range(n)
        ]
        + [{"input": "free text", "target": "not a choice item"}],
    }


def test_items_are_read_once_sampled_by_seed_and_answers_are_the_top_score(tmp_path):
    archive = write_archive(tmp_path / "bigbench.tar.gz", {"quiz": quiz(20), "other": quiz(3)})
    cache = tmp_path / "cache"
    items = load_choice_items(["quiz"], 5, seed=0, cache_dir=cache, log=lambda m: None, archive=archive)["quiz"]
    assert len(items) == 5
    for prefix, inp, choices, answer in items:
        i = int(inp[1:])
        assert prefix == "Answer." and choices == (("no", "yes") if i % 2 else ("red", "blue", "green"))
        assert choices[answer] == ("yes" if i % 2 else "red")
    archive.unlink()  # the extract is cached: the archive is not needed again
    assert load_choice_items(["quiz"], 5, seed=0, cache_dir=cache, archive=archive)["quiz"] == items
    assert load_choice_items(["quiz"], 5, seed=1, cache_dir=cache, archive=archive)["quiz"] != items
    assert (
        len(load_choice_items(["quiz"], 0, seed=0, cache_dir=cache, archive=archive)["quiz"]) == 20
    )  # free-text items skipped


def test_unknown_task_names_what_exists(tmp_path):
    archive = write_archive(tmp_path / "b.tar.gz", {"quiz": quiz(2)})
    with pytest.raises(
        ValueError,
        match=r"unknown benchmark 'nosuch': bigbench has no multiple-choice task of that name "
        r"\(1 tasks: `shed-pipeline benchmarks` lists them\)",
    ):
        load_choice_items(
            ["quiz", "nosuch"], 2, seed=0, cache_dir=tmp_path / "cache", log=lambda m: None, archive=archive
        )
    with pytest.raises(ValueError, match="did you mean quiz"):
        check_benchmarks(["quzi"], tmp_path / "cache", log=lambda m: None, archive=archive)


def test_a_parent_task_takes_all_its_subtasks_and_free_text_tasks_are_not_benchmarks(tmp_path):
    """Parents such as hhh_alignment hold their items in subtasks; a generative task has none."""
    free_text = {"task_prefix": "Write.", "examples": [{"input": "a", "target": "b"}]}
    archive = write_archive(
        tmp_path / "b.tar.gz", {"hhh/harmless": quiz(4), "hhh/honest": quiz(6), "story": free_text, "quiz": quiz(3)}
    )
    cache = tmp_path / "cache"
    assert choice_index(cache, log=lambda m: None, archive=archive) == {"hhh/harmless": 4, "hhh/honest": 6, "quiz": 3}
    assert check_benchmarks(["hhh", "hhh/honest", "quiz"], cache, log=lambda m: None, archive=archive) == {
        "hhh": ["hhh/harmless", "hhh/honest"],
        "hhh/honest": ["hhh/honest"],
        "quiz": ["quiz"],
    }
    with pytest.raises(ValueError, match="unknown benchmark 'story'"):
        check_benchmarks(["story"], cache, log=lambda m: None, archive=archive)
    items = load_choice_items(["hhh"], 0, seed=0, cache_dir=cache, log=lambda m: None, archive=archive)["hhh"]
    assert len(items) == 10  # both subtasks' items, one benchmark
    parts = load_choice_items(["hhh/harmless", "hhh/honest"], 0, seed=0, cache_dir=cache, archive=archive)
    assert sorted(items) == sorted(parts["hhh/harmless"] + parts["hhh/honest"])


def test_utility_items_come_from_the_other_end_and_ties_are_skipped(tmp_path):
    data = quiz(20)
    data["examples"].append({"input": "tie", "target_scores": {"a": 1, "b": 1, "c": 0}})
    archive = write_archive(tmp_path / "b.tar.gz", {"quiz": data})
    evaluation = load_choice_items(
        ["quiz"], 10, seed=0, cache_dir=tmp_path / "cache", log=lambda m: None, archive=archive
    )["quiz"]
    utility = load_choice_items(["quiz"], 10, seed=0, cache_dir=tmp_path / "cache", from_end=True, archive=archive)[
        "quiz"
    ]
    assert not {i for _, i, _, _ in evaluation} & {i for _, i, _, _ in utility}  # disjoint while 2 x 10 <= 20
    assert "tie" not in {i for _, i, _, _ in evaluation + utility}
    with pytest.raises(ValueError, match=">= 0"):
        load_choice_items(["quiz"], -1, seed=0, cache_dir=tmp_path / "cache", archive=archive)
