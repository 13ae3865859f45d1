import hashlib
import io
import json
import random
import tarfile

import polars as pl
import pytest

from shed_pipeline.core.sources import BIGBENCH_CHAT, FieldMapping, load_source, source_label
from shed_pipeline.core.sources.packaged import bigbench_chat as bc

ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks"


def write_archive(path, tasks: dict[str, dict], extra: dict[str, bytes] | None = None):
    """A tar.gz laid out like bigbench-1.0.0.tar.gz: `tasks` maps a task folder to its task.json."""
    with tarfile.open(path, "w:gz") as tf:

        def add(name, data: bytes):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))

        for name, obj in tasks.items():
            add(f"{ROOT}/{name}/task.json", json.dumps(obj).encode())
        for name, data in (extra or {}).items():
            add(f"{ROOT}/{name}", data)
    return path


def fake_tasks() -> dict[str, dict]:
    return {
        # The default source's tasks: never here.
        "natural_instructions/subtask001_x": {
            "task_prefix": "Do x.",
            "examples": [{"input": "ni in", "target": ["ni out"]}],
        },
        # Multiple choice (what the evaluation scores), also when it has text targets besides.
        "social_iqa": {
            "description": "Social questions",
            "examples": [{"input": "q", "target": "a", "target_scores": {"a": 1, "b": 0}}],
        },
        # A family with a multiple-choice subtask: its free-text sibling goes too.
        "mixed/choice": {"description": "pick", "examples": [{"input": "q", "target_scores": {"a": 1, "b": 0}}]},
        "mixed/freetext": {"description": "write", "examples": [{"input": "q2", "target": "free answer"}]},
        # Generative, with a prefix (the system turn) and declared input/output prefixes; one empty
        # target, one too long, one repeated example.
        "gen": {
            "description": "A task that is described.",
            "task_prefix": "Answer the question.\n",
            "example_input_prefix": "\nQuestion: ",
            "example_output_prefix": "\nAnswer: ",
            "examples": [
                {"input": "What is 2+2?", "target": "4"},
                {"input": "Capital of France?", "target": " Paris "},
                {"input": "Nothing to say?", "target": ""},
                {"input": "x" * 300, "target": "long"},
                {"input": "What is 2+2?", "target": "4"},
            ],
        },
        # Generative, no prefix (the description is the system turn), list targets: the first one.
        "listy": {
            "description": "Name the colour.",
            "examples": [
                {"input": "sky", "target": ["blue", "azure"]},
                {"input": "grass", "target": ["green"]},
                {"input": "void", "target": []},
            ],
        },
        # A parent's task.json holds no examples (they are in its subtasks): not a task.
        "parent": {"description": "a parent", "examples": []},
        "parent/sub": {
            "description": "Name the colour.",
            "examples": [{"input": "sky", "target": "blue"}, {"input": "snow", "target": "white"}],
        },
    }


def extract(tmp_path, tasks=None, per_task=bc.PER_TASK, max_chars=200, name="bb.tar.gz"):
    arch = write_archive(tmp_path / name, tasks or fake_tasks(), extra={"taskpy_only/task.py": b"print('not read')\n"})
    out = tmp_path / f"{name}.parquet"
    summary = bc.extract_bigbench_chat(arch, out, per_task=per_task, max_chars=max_chars, log=lambda m: None)
    return out, summary


def turns(system, user, assistant):
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user},
        {"role": "assistant", "content": assistant},
    ]


def test_extract_keeps_exactly_the_generative_tasks_rendered_as_turns(tmp_path):
    out, summary = extract(tmp_path)
    df = pl.read_parquet(out)
    got = [(r["task"], r["family"], r["example_index"], r["messages"]) for r in df.iter_rows(named=True)]
    assert got == [
        ("gen", "gen", 0, turns("Answer the question.", "Question: What is 2+2?\nAnswer:", "4")),
        ("gen", "gen", 1, turns("Answer the question.", "Question: Capital of France?\nAnswer:", "Paris")),
        ("listy", "listy", 0, turns("Name the colour.", "sky", "blue")),
        ("listy", "listy", 1, turns("Name the colour.", "grass", "green")),
        # ("Name the colour.", "sky", "blue") is listy's row already
        ("parent/sub", "parent", 1, turns("Name the colour.", "snow", "white")),
    ]
    assert summary["tasks"] == 3 and summary["families"] == 3 and summary["rows"] == 5
    assert summary["dropped"] == {
        "duplicate": 1,
        "duplicate_of_other_task": 1,
        "empty": 2,
        "over_per_task": 0,
        "too_long": 1,
    }
    # Why each task that has examples was left out; NI and Python-only tasks are not read at all.
    assert summary["left_out"] == {
        "mixed/choice": "multiple_choice",
        "mixed/freetext": "multiple_choice_family",
        "social_iqa": "multiple_choice",
    }
    assert json.loads(out.with_suffix(".json").read_text()) == summary


def test_no_system_turn_when_the_task_has_neither_prefix_nor_description():
    assert bc.render({}, {"input": "hi", "target": ["hello", "hey"]}) == turns("", "hi", "hello")
    assert bc.render({"description": "d", "task_prefix": "  "}, {"input": "i", "target": "t"}) == turns("d", "i", "t")


def test_no_task_the_evaluation_can_name_is_extracted(tmp_path):
    # Every multiple-choice task, and every task of a family that has one, stays out, whatever
    # the file order in the archive.
    tasks = fake_tasks()
    order = list(tasks)
    random.Random(3).shuffle(order)
    out, _ = extract(tmp_path, {k: tasks[k] for k in order})
    names = set(pl.read_parquet(out)["task"])
    assert names == {"gen", "listy", "parent/sub"}


def test_per_task_sample_is_the_smallest_content_hashes_whatever_the_order(tmp_path):
    task = {"description": "Echo.", "examples": [{"input": f"word {i}", "target": f"echo {i}"} for i in range(12)]}
    out, summary = extract(tmp_path, {"echo": task}, per_task=4)
    kept = pl.read_parquet(out)["example_index"].to_list()

    def rank(i):  # brute force: the hash of (task, the row's turns as compact JSON)
        key = json.dumps(turns("Echo.", f"word {i}", f"echo {i}"), separators=(",", ":"))
        return hashlib.sha256(f"echo\n{key}".encode()).hexdigest()

    assert kept == sorted(sorted(range(12), key=rank)[:4])
    assert summary["dropped"]["over_per_task"] == 8
    # The same examples in another order: the same rows are chosen.
    shuffled = dict(task, examples=list(reversed(task["examples"])))
    out2, _ = extract(tmp_path, {"echo": shuffled}, per_task=4, name="bb2.tar.gz")
    messages = lambda p: sorted(json.dumps(m) for m in pl.read_parquet(p)["messages"].to_list())  # noqa: E731
    assert messages(out2) == messages(out)


def test_extraction_is_deterministic(tmp_path):
    a, _ = extract(tmp_path, name="a.tar.gz")
    b, _ = extract(tmp_path, name="b.tar.gz")
    assert a.read_bytes() == b.read_bytes()


def test_cache_is_written_once_and_read_afterwards(tmp_path):
    arch = write_archive(tmp_path / "bb.tar.gz", fake_tasks())
    cache = tmp_path / "cache"
    path = bc.bigbench_chat_parquet(cache, log=lambda m: None, archive=arch)
    assert path == cache / "bigbench_chat_v1" / "bigbench_chat_v1.parquet" and path.with_suffix(".json").is_file()
    first = path.read_bytes()
    # The archive is not needed any more: the extracted file is read as it is.
    assert bc.bigbench_chat_parquet(cache, log=lambda m: None, archive=tmp_path / "gone.tar.gz") == path
    assert path.read_bytes() == first
    assert {p.name for p in path.parent.iterdir()} == {path.name, path.with_suffix(".json").name}  # no temporaries left


def test_source_reads_as_validated_chat_rows(tmp_path):
    tasks = {
        f"t{k}": {
            "description": f"Task {k}.",
            "examples": [{"input": f"in {k} {i}", "target": f"out {k} {i}"} for i in range(10)],
        }
        for k in range(4)
    }
    tasks["fam/a"] = {"description": "A.", "examples": [{"input": f"a {i}", "target": "x"} for i in range(10)]}
    tasks["fam/b"] = {"description": "B.", "examples": [{"input": f"b {i}", "target": "y"} for i in range(10)]}
    archive = write_archive(tmp_path / "bb.tar.gz", tasks)
    cache = tmp_path / "cache"
    # The user's field names are for their own files; the packaged source's columns are fixed.
    mapping = FieldMapping(format="alpaca", instruction="prompt", output="answer")
    loaded = load_source(
        BIGBENCH_CHAT,
        mapping,
        rows=24,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=cache,
        log=lambda m: None,
        bigbench_archive=archive,
    )
    assert loaded.label == source_label(BIGBENCH_CHAT) == "bigbench-chat"
    assert loaded.units_available == 60 and loaded.quarantine.height == 0
    rows = loaded.rows
    assert rows.height == 24 and sorted(rows.group_by("task").len()["len"].to_list()) == [4] * 6  # spread over tasks
    row = rows.filter(pl.col("task") == "t2").row(0, named=True)
    i = int(row["output"].split()[-1])
    assert json.loads(row["messages"]) == [
        {"role": "system", "content": "Task 2."},
        {"role": "user", "content": f"in 2 {i}"},
    ]
    assert (
        row["output"] == f"out 2 {i}"
        and row["instruction"] == f"system: Task 2.\n\nuser: in 2 {i}"
        and row["turns_dropped"] == 0
    )
    # Grouped by family instead of task when the task field says so.
    by_family = load_source(
        BIGBENCH_CHAT,
        FieldMapping(task="family"),
        rows=25,
        seed=0,
        max_chars=32_000,
        validation_fraction=0.1,
        test_fraction=0.1,
        cache_dir=cache,
        log=lambda m: None,
    ).rows
    assert sorted(by_family.group_by("task").len()["len"].to_list()) == [5] * 5


def test_unreadable_archive_fails_with_its_name(tmp_path):
    bad = tmp_path / "bb.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(RuntimeError, match="bb.tar.gz: cannot read"):
        bc.extract_bigbench_chat(bad, tmp_path / "o.parquet", log=lambda m: None)


def test_archive_without_generative_tasks_is_an_error(tmp_path):
    arch = write_archive(tmp_path / "bb.tar.gz", {"social_iqa": fake_tasks()["social_iqa"]})
    with pytest.raises(RuntimeError, match="no generative bigbench tasks"):
        bc.extract_bigbench_chat(arch, tmp_path / "o.parquet", log=lambda m: None)
    assert not (tmp_path / "o.parquet").exists()
