"""The project folder's lock: one holder at a time, a waiter names the holder, a dead holder frees it."""

import multiprocessing
import os
import signal
import threading
import time

import pytest

from shed_pipeline.core.project_lock import Holder, ProjectBusy, current_holder, project_lock


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
    assert lines[0].startswith("waiting for run run-in-child (a test process, pid ") and f"pid {proc.pid} on " in lines[0]
    assert "runs on one project take turns" in lines[0] and lines[-1].startswith("project folder is free after ")
    assert 1 <= len([line for line in lines if line.startswith("waiting for")]) <= 6  # reported, not once per poll
    assert current_holder(tmp_path) is None  # released: the file no longer names a holder


def test_no_wait_fails_in_one_line_naming_the_holder(tmp_path, held_by_child):
    with pytest.raises(ProjectBusy) as exc:
        with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
            pytest.fail("entered a busy project")
    message = str(exc.value)
    assert message.startswith(f"project folder {tmp_path} is busy: run run-in-child (a test process, pid ") and len(message.splitlines()) == 1


def test_a_killed_holder_leaves_the_project_free(tmp_path, held_by_child):
    proc, _ = held_by_child
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
        assert current_holder(tmp_path).run_id == "run-b"


def test_the_holding_run_may_enter_again_but_another_run_in_the_same_process_waits(tmp_path):
    outer = Holder(run_id="run-a", via="test")
    with project_lock(tmp_path, outer, wait=False):
        with project_lock(tmp_path, outer, wait=False):  # the CLI around its own in-process execution
            pass
        with pytest.raises(ProjectBusy, match="busy: run run-a"):
            with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
                pass
        assert current_holder(tmp_path).run_id == "run-a"
    with project_lock(tmp_path, Holder(run_id="run-b", via="test"), wait=False):
        pass
