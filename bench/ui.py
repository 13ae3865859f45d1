"""The UI against the CLI: time from "Materialize all" in the Dagster webserver to success, against
the same run through `shed-pipeline run`, and the memory of the webserver, daemon and code server
while idle and during the run.

Usage: python bench/ui.py [--rows N] [--lm-eval]
Each side runs in a fresh project folder (nothing reused but the downloaded archives). "Materialize
all" is what the UI's button sends: launchRun of the asset job with all six assets selected, with the
run config the CLI uses. Memory is the resident set (RSS) of each process under `dagster dev`.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shed_pipeline.asset_names import ASSET_NAMES  # noqa: E402
from shed_pipeline.local_servers import free_port, gql, reset_signals, stop, wait_for_http  # noqa: E402

ASSETS = list(ASSET_NAMES)
REPO = Path(__file__).resolve().parents[1]


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except OSError:
            pass
    return out


def role(cmdline: str) -> str:
    if "dagster-webserver" in cmdline or "dagster_webserver" in cmdline:
        return "webserver"
    if "dagster-daemon" in cmdline or "daemon run" in cmdline:
        return "daemon"
    if "grpc" in cmdline or "code-server" in cmdline or "code_server" in cmdline:
        return "code server"
    if "execute_run" in cmdline or "execute_step" in cmdline or "multiprocess" in cmdline:
        return "run workers"
    return "dagster dev"


def rss_by_role(pid: int) -> dict[str, float]:
    mb: dict[str, float] = {}
    for p in descendants(pid):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = next(
                int(line.split()[1])
                for line in Path(f"/proc/{p}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
        except (OSError, StopIteration):
            continue
        mb[role(cmd)] = mb.get(role(cmd), 0.0) + rss / 1024
    return mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--lm-eval", action="store_true", help="include the LM evaluation arms (minutes per arm on a CPU)")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shed_bench_ui_"))
    ops = {"raw_dataset": {"config": {"rows": a.rows}}, "evaluation_metrics": {"config": {"lm": a.lm_eval}}}

    # The CLI, in a fresh folder.
    cli_home = root / "cli"
    env = {
        **os.environ,
        "SHED_PIPELINE_HOME": str(cli_home),
        "DAGSTER_HOME": str(cli_home / "dagster_home"),
        "SHED_ENV": "local",
    }
    env.pop("SHED_PIPELINE_SOURCE", None)
    cmd = [
        sys.executable,
        "-m",
        "shed_pipeline.cli",
        "run",
        "--rows",
        str(a.rows),
        "--out",
        str(cli_home / "out"),
        "--json",
    ] + ([] if a.lm_eval else ["--no-lm-eval"])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    cli_wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stderr.strip().splitlines()[-1])
    cli = json.loads(proc.stdout)

    # The UI: dagster dev on 127.0.0.1, "Materialize all" through GraphQL.
    ui_home = root / "ui"
    (ui_home / "dagster_home").mkdir(parents=True)
    (ui_home / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **env,
        "SHED_PIPELINE_HOME": str(ui_home),
        "DAGSTER_HOME": str(ui_home / "dagster_home"),
        "SHED_PIPELINE_OUT": str(ui_home / "out"),
    }
    port = free_port()
    log = root / "dagster_dev.log"
    t_start = time.perf_counter()
    with log.open("w") as fh:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster")),
                "dev",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(REPO / "workspace.yaml"),
            ],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=reset_signals,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/server_info", 180, server, log)
        while not gql(url, "{ assetNodes { id } }")["assetNodes"]:
            time.sleep(0.5)
        startup = time.perf_counter() - t_start
        time.sleep(20)  # let the daemon's first ticks pass
        idle = rss_by_role(server.pid)
        params = {
            "selector": {
                "repositoryLocationName": "shed_pipeline",
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": [n]} for n in ASSETS],
            },
            "runConfigData": {"ops": ops},
            "mode": "default",
        }
        t0 = time.perf_counter()
        launched = gql(
            url,
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename ... on LaunchRunSuccess { "
            "run { runId } } ... on PythonError { message } } }",
            {"p": params},
        )["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            sys.exit(f"launch failed: {launched}")
        run_id = launched["run"]["runId"]
        peak: dict[str, float] = {}
        status = None
        while status not in ("SUCCESS", "FAILURE", "CANCELED"):
            time.sleep(0.5)
            for k, v in rss_by_role(server.pid).items():
                peak[k] = max(peak.get(k, 0.0), v)
            status = gql(url, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})[
                "runOrError"
            ]["status"]
        ui_wall = time.perf_counter() - t0
        steps = gql(
            url,
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { stepStats { stepKey startTime endTime } } } }",
            {"id": run_id},
        )["runOrError"]["stepStats"]
    finally:
        stop(server)
    if status != "SUCCESS":
        sys.exit(f"UI run ended {status}; log: {log}")
    # An asset's steps: its own, or a graph-backed asset's `<asset>.<op>[<share>]`; first start to last end.
    spans: dict[str, list[float]] = {}
    for st in steps:
        asset = st["stepKey"].split(".", 1)[0]
        span = spans.setdefault(asset, [st["startTime"], st["endTime"]])
        span[0], span[1] = min(span[0], st["startTime"]), max(span[1], st["endTime"])
    step_s = {asset: end - start for asset, (start, end) in spans.items()}
    print(
        f"\nUI vs CLI, {a.rows} Natural Instructions rows, LM arms {'on' if a.lm_eval else 'off'}, {os.cpu_count()} "
        f"CPUs ({platform.machine()}), fresh project folders under {root}\n"
    )
    print(f"{'asset':<22} {'CLI s':>8} {'UI s':>8}")
    for n in ASSETS:
        print(f"{n:<22} {cli['seconds'][n]:>8.1f} {step_s.get(n, float('nan')):>8.1f}")
    print(
        f"{'whole run (wall)':<22} {cli_wall:>8.1f} {ui_wall:>8.1f}   (CLI: process start to exit; UI: launch to "
        "SUCCESS)"
    )
    print(f"\nwebserver start to assets listed: {startup:.1f} s\n")
    print(f"{'process (RSS, MB)':<16} {'idle':>8} {'peak in run':>12}")
    for k in sorted(set(idle) | set(peak)):
        print(f"{k:<16} {idle.get(k, 0):>8.0f} {peak.get(k, 0):>12.0f}")
    print(f"{'total':<16} {sum(idle.values()):>8.0f} {'':>12}")


if __name__ == "__main__":
    main()
