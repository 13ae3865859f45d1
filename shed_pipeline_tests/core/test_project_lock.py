"""The project folder's lock: one holder at a time, a waiter names the holder, a dead holder frees it."""

import json
import multiprocessing
import os
import signal
import threading
import time

import pytest

from shed_pipeline.core.project_lock import (
    Holder,
    ProjectBusy,
    ProjectLockError,
    current_holder,
    project_lock,
    shared_holders_dir,
)


def _hold(home, ready, release):
    with project_lock(home, Holder(run_id="run-in-child", via="a test process")):
        ready.set()
        release.wait(30)


@pytest.fixture
def held_by_child(tmp_path):
    """The lock held by another process until the test releases (or kills) it."""
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    proc.start()
    assert ready.wait(30)
    yield proc, release
    if proc.is_alive():  # a killed child may have died holding the event's lock: never touch it then
        release.set()
        proc.join(30)


def test_a_second_run_waits_naming_the_holder_then_runs(tmp_path, held_by_child):
    proc, release = held_by_child
    lines, entered = [], []
    threading.Timer(1.0, release.set).start()
    with project_lock(tmp_path, Holder(run_id="run-b", via="test"), log=lines.append, poll_s=0.05, report_every_s=0.3):
        entered.append(time.monotonic())
        assert current_holder(tmp_path).run_id == "run-b"
    assert (
        lines[0].startswith("waiting for run run-in-child (a test process, pid ") and f"pid {proc.pid} on " in lines[0]
    )
    assert "runs on one project take turns" in lines[0] and lines[-1].startswith("project folder is free after ")
    assert 1 <= len([line for line in lines if line.startswith("waiting for")]) <= 6  # reported, not once per poll
    assert current_holder(tmp_path) is None  # released: the file no longer names a holder


def test_no_wait_fails_in_one_line_naming_the_holder(tmp_path, held_by_child):
    with pytest.raises(ProjectBusy) as exc:
        with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
            pytest.fail("entered a busy project")
    message = str(exc.value)
    assert (
        message.startswith(f"project folder {tmp_path} is busy: run run-in-child (a test process, pid ")
        and len(message.splitlines()) == 1
    )


def test_a_killed_holder_leaves_the_project_free(tmp_path, held_by_child):
    proc, _ = held_by_child
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
        assert current_holder(tmp_path).run_id == "run-b"


def test_a_second_holder_in_the_same_process_waits_too(tmp_path):
    """flock locks belong to the open file, not the process: two runs in one process take turns."""
    with project_lock(tmp_path, Holder(run_id="run-a", via="test"), wait=False):
        with pytest.raises(ProjectBusy, match="busy: run run-a"):
            with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
                pass
        assert current_holder(tmp_path).run_id == "run-a"
    with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
        pass


def test_the_holder_is_described_from_when_it_got_the_lock_not_when_it_began_to_wait(tmp_path, held_by_child):
    _, release = held_by_child
    early = Holder(run_id="run-b", via="test", since="2000-01-01 00:00:00 UTC")
    threading.Timer(0.3, release.set).start()
    with project_lock(tmp_path, early, log=lambda _: None, poll_s=0.05):
        assert current_holder(tmp_path).since != early.since


def test_a_waiting_run_can_be_interrupted(tmp_path, held_by_child):
    """Dagster captures Ctrl-C / terminate as a flag: the wait checks it on every poll."""
    polls = []

    def interrupted():
        polls.append(1)
        if len(polls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with project_lock(
            tmp_path, Holder(run_id="run-b", via="test"), log=lambda _: None, poll_s=0.01, check_interrupt=interrupted
        ):
            pytest.fail("entered a busy project")
    assert len(polls) == 3


def test_a_folder_that_cannot_hold_the_lock_fails_in_one_line(tmp_path):
    (tmp_path / "project.lock").mkdir()  # not a file: cannot be opened for locking
    with pytest.raises(ProjectLockError, match=r"project.lock: cannot open the project lock \(Is a directory\)"):
        with project_lock(tmp_path, Holder(run_id="run-a", via="test")):
            pass


def _hold_shared(home, ready, release):
    with project_lock(home, Holder(run_id="shard-run-in-child", via="a test process"), shared=True):
        ready.set()
        release.wait(30)


def test_shard_runs_share_the_folder_and_a_whole_run_waits_for_them(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_shared, args=(tmp_path, ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        # Another shard run gets in at once, alongside the child.
        with project_lock(tmp_path, Holder(run_id="shard-run-2", via="test"), wait=False, shared=True):
            described = {json.loads(f.read_text())["run_id"] for f in shared_holders_dir(tmp_path).glob("*.json")}
            assert described == {"shard-run-in-child", "shard-run-2"}  # each shared holder describes itself
            assert current_holder(tmp_path).run_id in described
        assert [json.loads(f.read_text())["run_id"] for f in shared_holders_dir(tmp_path).glob("*.json")] == [
            "shard-run-in-child"
        ]
        # A whole run does not, while a shard run holds the folder.
        with pytest.raises(ProjectBusy, match="is busy: run shard-run-in-child"):
            with project_lock(tmp_path, Holder(run_id="whole-run", via="test"), wait=False):
                pass
        release.set()
        proc.join(30)
        with project_lock(tmp_path, Holder(run_id="whole-run", via="test"), wait=False):
            # ... and while it holds the folder, a shard run waits in turn.
            with pytest.raises(ProjectBusy, match="is busy: run whole-run"):
                with project_lock(tmp_path, Holder(run_id="shard-run-3", via="test"), wait=False, shared=True):
                    pass
    finally:
        release.set()
        proc.join(30)
