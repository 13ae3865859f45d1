"""The project as a user sees it in the Dagster UI: `dagster dev` started on 127.0.0.1 with the
project's workspace, its GraphQL API asked for the six assets and their dependencies, the whole
graph materialized through GraphQL on a tiny source, and the asset graph page rendered in headless
Chromium (a screenshot is kept under test-artifacts/). The server is stopped by the fixture."""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shed_pipeline.local_servers import free_port, gql, reset_signals, stop, wait_for_http
from shed_pipeline_tests.synthetic import make_rows, write_jsonl
from shed_pipeline_tests.test_definitions import ASSETS, DEPENDENCIES

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("SHED_TEST_ARTIFACTS", REPO / "test-artifacts"))
LOCATION = "shed_pipeline"  # workspace.yaml's location_name


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    root = tmp_path_factory.mktemp("webserver")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    source = write_jsonl(root / "src" / "data.jsonl", make_rows(120))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "SHED_ENV": "local",
        "SHED_PIPELINE_HOME": str(root / "home"),
        "SHED_PIPELINE_OUT": str(root / "out"),
        "SHED_PIPELINE_LINEAGE": str(root / "out" / "lineage.duckdb"),
        "SHED_PIPELINE_SOURCE": str(source),
        "SHED_DEVICE": "cpu",
        "TOKENIZERS_PARALLELISM": "false",
    }
    port = free_port()
    log = root / "dagster_dev.log"
    exe = Path(sys.executable).with_name("dagster")
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [str(exe), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=reset_signals,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/server_info", 120, proc, log)
        yield {"url": url, "out": root / "out", "log": log}
    finally:
        code = stop(proc)
        assert code is not None  # stopped, not left running


def test_graphql_lists_the_six_assets_and_their_dependencies(webserver):
    deadline = time.monotonic() + 120  # the code location loads after the server answers
    while True:
        nodes = gql(webserver["url"], "{ assetNodes { assetKey { path } dependencyKeys { path } groupName } }")[
            "assetNodes"
        ]
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)
    deps = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]} for n in nodes}
    assert deps == DEPENDENCIES


def test_materializing_the_whole_graph_through_graphql_succeeds(webserver):
    launched = gql(
        webserver["url"],
        """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
             __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
             ... on RunConfigValidationInvalid { errors { message } } } }""",
        {
            "p": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "jobName": "shed_curation_job",
                },
                "runConfigData": {
                    "ops": {"clusters": {"config": {"n_clusters": 6}}, "evaluation_metrics": {"config": {"lm": False}}}
                },
                "mode": "default",
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 400
    status = None
    while time.monotonic() < deadline:
        status = gql(
            webserver["url"], "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
        )["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    assert status == "SUCCESS", webserver["log"].read_text()[-4000:]
    records = gql(webserver["url"], "{ assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId } } }")[
        "assetNodes"
    ]
    assert {"/".join(n["assetKey"]["path"]): n["assetMaterializations"][0]["runId"] for n in records} == {
        a: run_id for a in ASSETS
    }
    assert (webserver["out"] / "curated.jsonl").read_text().count("\n") > 0


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver; .ci/run installs them)",
)
def test_the_asset_graph_page_renders_the_six_assets_in_chromium(webserver):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Flags that keep Chromium off the (closed) network and working as root in a container.
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        groups = ["ingest", "representation", "valuation", "selection", "evaluation"]
        expanded = ",".join(f"global@global:{g}" for g in groups)  # the page's own URL with every group expanded
        driver.get(f"{webserver['url']}/asset-groups?expanded={urllib.request.quote(expanded)}")
        # Long names are shortened in the middle on the graph ("proxy_shap…_scores").
        patterns = {
            a: re.compile(rf"^(?:{re.escape(a)}|{re.escape(a[:6])}\S*…\S*{re.escape(a[-4:])})$", re.M) for a in ASSETS
        }
        deadline = time.monotonic() + 90
        missing = ASSETS
        while time.monotonic() < deadline and missing:
            for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                button.click()  # the first-visit newsletter dialog
            text = driver.find_element(By.TAG_NAME, "body").text
            missing = [a for a, p in patterns.items() if not p.search(text)]
            time.sleep(0.5)
        settle = time.monotonic() + 6  # the first-visit dialog opens a few seconds in: close it before the screenshot
        while time.monotonic() < settle:
            for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                button.click()
                settle = 0
            time.sleep(0.3)
        time.sleep(0.5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "asset_graph.png"))
        assert driver.title == "Global asset lineage"
        assert missing == [], f"not on the asset graph page: {missing} (screenshot: {ARTIFACTS / 'asset_graph.png'})"
    finally:
        driver.quit()
