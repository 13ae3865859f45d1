"""atomic_path: the destination holds the old content or the new, never a part, and no temporary
is left behind either way."""

import pytest

from shed_pipeline.core.files import atomic_path, write_text_atomic


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_a_completed_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    dest = tmp_path / "sub" / "out.txt"
    write_text_atomic(dest, "old")
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.name.startswith(".") and not tmp.exists()
        tmp.write_text("new")
        assert dest.read_text() == "old"  # not visible until the block completes
    assert dest.read_text() == "new"
    assert leftovers(dest.parent) == []


def test_a_failed_write_keeps_the_old_content_and_removes_the_temporary(tmp_path):
    dest = write_text_atomic(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert dest.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_a_folder_is_replaced_whole(tmp_path):
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "stale.bin").write_bytes(b"x")
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")
    assert sorted(p.name for p in dest.iterdir()) == ["config.json"]
    assert leftovers(tmp_path) == []


def test_a_writer_that_writes_nothing_is_an_error_not_an_empty_result(tmp_path):
    dest = write_text_atomic(tmp_path / "out.txt", "old")
    with pytest.raises(FileNotFoundError, match="the writer produced nothing"):
        with atomic_path(dest):
            pass
    assert dest.read_text() == "old"


def test_two_writers_of_one_file_never_share_a_temporary(tmp_path):
    # Pods on a shared volume all run as pid 1: the pid alone would give both the same name.
    dest = tmp_path / "out.txt"
    with atomic_path(dest) as a, atomic_path(dest) as b:
        assert a != b
        a.write_text("first")
        b.write_text("second")
    assert dest.read_text() == "first"  # the outer block completes last
    assert leftovers(tmp_path) == []
