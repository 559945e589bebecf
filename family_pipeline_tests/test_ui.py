"""The UI: `dagster dev` on an instance with materialized registries serves the asset graph with
the registry assets and their check results, seen through GraphQL and through headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import build_registry_assets, registry_key
from family_pipeline.defs.resources import LakeResource, RegistrySourceResource
from family_pipeline.instance import instance_for
from family_pipeline_tests.processes import default_interrupts, stop_process_group

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "ui"
BIN = Path(sys.executable).parent
#: materialized before the UI starts; the group graph (at WINDOW size) shows these nodes first
CODES = ["athletes_lifelong_payments", "birth_grants"]
#: the registry whose checks page is opened
CHECKS_PAGE = "birth_grants"
WINDOW = "1600,1000"
STARTUP_SECONDS = 120

ASSET_QUERY = """
{ assetNodes(group: {groupName: "registries", repositoryName: "__repository__",
                     repositoryLocationName: "family_pipeline"}) {
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
} }
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "headless Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the UI test")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster dev did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    assert "errors" not in body, body
    return body["data"]


def render(browser: str, url: str, screenshot: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, as visible text; and a screenshot of it."""
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={WINDOW}",
            "--virtual-time-budget=30000", "--hide-scrollbars"]
    screenshot.unlink(missing_ok=True)
    dom = subprocess.run([*args, f"--screenshot={screenshot}", "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert screenshot.exists(), "Chromium wrote no screenshot"
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def render_until(browser: str, url: str, screenshot: Path, profile: Path, pattern: str, seconds: float = 240) -> str:
    """Render until the page shows ``pattern``, for up to ``seconds``: a cold webserver on a busy
    machine may still be loading the nodes' live data when Chromium's virtual time runs out (four
    attempts back to back were not always enough while the rest of the suite ran)."""
    deadline = time.monotonic() + seconds
    while True:
        text = render(browser, url, screenshot, profile)
        if re.search(pattern, text) or time.monotonic() > deadline:
            return text
        time.sleep(2)


def test_dagster_dev_shows_the_registry_graph_with_check_results(small_country, tmp_path, dagster_home):
    browser = chromium()
    # a lake whose landing zone holds only the materialized registries: the landing-zone sensor and
    # the automation sensor (running by default under dagster dev) have nothing to start
    data = tmp_path / "data"
    for code in CODES:
        shutil.copytree(small_country / "landing" / code, data / "landing" / code)
    shutil.copy(small_country / "landing" / "snapshot.json", data / "landing" / "snapshot.json")
    instance = instance_for(dagster_home)
    result = dg.materialize(build_registry_assets([catalog().registry(c) for c in CODES]), instance=instance,
                            resources={"lake": LakeResource(root=str(data)), "registry_source": RegistrySourceResource()})
    assert result.success
    expected = {(e.asset_key.path[-1], e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert expected and not all(expected.values()), "the small country has defects some checks catch"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "dagster_dev.log"
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "FAMILY_PIPELINE_DATA": str(data)}
    with log.open("w") as out:
        dev = subprocess.Popen([str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=default_interrupts)  # noqa: PLW1509 (only resets a signal)
    try:
        info = wait_for_server(url, dev, log)
        assert info["dagster_version"] == dg.__version__

        # the webserver's view: every registry of the catalog, with the checks and their results
        nodes = graphql(url, ASSET_QUERY)["assetNodes"]
        assert {tuple(n["assetKey"]["path"]) for n in nodes} == {tuple(registry_key(s.code).path)
                                                                 for s in catalog().registries}
        shown, checks_per_registry = {}, {}
        for node in nodes:
            checks_per_registry[node["assetKey"]["path"][-1]] = len(node["assetChecksOrError"]["checks"])
            for check in node["assetChecksOrError"]["checks"]:
                execution = check["executionForLatestMaterialization"]
                if execution is not None:
                    shown[(node["assetKey"]["path"][-1], check["name"])] = execution["status"]
        assert shown == {key: "SUCCEEDED" if passed else "FAILED" for key, passed in expected.items()}

        # the browser's view: the registries group graph, and the checks page of one registry
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        graph_text = render_until(browser, f"{url}/locations/family_pipeline/asset-groups/registries/lineage",
                                  ARTIFACTS / "asset_graph.png", tmp_path / "chromium", r"Asset checks \d+ / \d+")
        assert "registries" in graph_text and "Asset checks" in graph_text, graph_text[:2000]
        names_on_graph = [s.code for s in catalog().registries if re.search(rf"\b{s.code}\b", graph_text)]
        assert len(names_on_graph) >= 3, graph_text[:2000]
        # a node reads "<name> Latest event … Asset checks <passed> / <all> Passed" (cross-registry checks
        # have not run here, so they count in <all> only)
        passed = {c: sum(ok for (code, _), ok in expected.items() if code == c) for c in CODES}
        on_graph = [c for c in CODES if re.search(rf"\b{c} Latest event .{{0,40}}? Asset checks {passed[c]} / "
                                                   rf"{checks_per_registry[c]} Passed", graph_text)]
        assert on_graph, graph_text[:2000]

        checks_text = render_until(browser, f"{url}/assets/registries/{CHECKS_PAGE}?view=checks",
                                   ARTIFACTS / f"{CHECKS_PAGE}_checks.png", tmp_path / "chromium", r"(Succeeded|Failed)")
        for (code, check), ok in expected.items():
            if code == CHECKS_PAGE:
                assert re.search(rf"\b{check} {check} {'Succeeded' if ok else 'Failed'}\b", checks_text), (check, checks_text[:3000])
        assert (ARTIFACTS / "asset_graph.png").stat().st_size > 10_000
    finally:
        stopped_cleanly = stop_process_group(dev)
    assert stopped_cleanly, "dagster dev did not stop on SIGTERM to its process group"
