"""Starting, waiting for and stopping a local server: an HTTP server that answers, one that exits
before it answers (the error carries its exit code and log), and one that ignores SIGTERM (killed)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from shed_pipeline.local_servers import free_port, reset_signals, stop, wait_for_http


def start(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen(
            [sys.executable, *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=reset_signals,
        )


def test_wait_for_an_http_server_then_stop_its_process_group(tmp_path: Path) -> None:
    port = free_port()
    proc = start(
        ["-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)], tmp_path / "log"
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", 30, proc, tmp_path / "log")
    finally:
        code = stop(proc)
    assert code == -15  # stopped by SIGTERM, not killed


def test_a_server_that_exits_before_answering_fails_with_its_exit_code_and_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = start(["-c", "import sys; print('cannot bind'); sys.exit(3)"], log)
    with pytest.raises(RuntimeError, match=r"exited with 3 before answering .*\ncannot bind"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/", 30, proc, log)


def test_waiting_for_a_port_nobody_serves_times_out(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="did not answer within 1s"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/", 1)


def test_a_server_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    proc = start(["-c", script], tmp_path / "log")
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stop(proc, timeout_s=0.5) == -9
