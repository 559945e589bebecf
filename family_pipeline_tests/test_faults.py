"""Faults: an unreachable registry database fails only its asset, after the retries its policy
allows; a run killed midway and run again leaves the same lake as a run never interrupted."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import (
    DATABASE_RETRY,
    build_registry_assets,
    registry_key,
)
from family_pipeline.defs.resources import LakeResource, RegistrySourceResource
from family_pipeline.instance import instance_for
from family_pipeline_tests.conftest import copy_country, run_on_instance

BIN = Path(sys.executable).parent
DATABASE_REGISTRY = "otbasy_housing_queue"
FILE_REGISTRIES = ["gbd_fl", "zags_marriages"]
#: a run small enough to repeat three times: some registries and person resolution on them
KILL_REGISTRIES = ["gbd_fl", "zags_births", "zags_marriages", "zags_deaths", "cbdi_disability"]
RESOLUTION = ["person_mentions", "persons", "person_xref", "person_review_pairs", "person_candidate_pairs"]
COMPARED_STAGES = ["registries", "quarantine", "resolution"]


def closed_port() -> int:
    """A local TCP port nobody listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_registry_database_fails_only_its_asset_after_retries(small_country, tmp_path, dagster_home):
    assert catalog().registry(DATABASE_REGISTRY).source.location == "database"
    data = copy_country(small_country, tmp_path / "data")
    url = f"postgresql+psycopg2://registry_reader:secret-password@127.0.0.1:{closed_port()}/registries"
    specs = [catalog().registry(c) for c in [DATABASE_REGISTRY, *FILE_REGISTRIES]]
    instance = instance_for(dagster_home)
    result = dg.materialize(build_registry_assets(specs), instance=instance, raise_on_error=False,
                            resources={"lake": LakeResource(root=str(data)),
                                       "registry_source": RegistrySourceResource(database_url=url)})
    assert not result.success

    step = f"registries__{DATABASE_REGISTRY}"
    events = [e for e in result.all_events if e.step_key == step]
    kinds = [e.event_type for e in events]
    assert kinds.count(dg.DagsterEventType.STEP_UP_FOR_RETRY) == DATABASE_RETRY.max_retries
    assert kinds.count(dg.DagsterEventType.STEP_RESTARTED) == DATABASE_RETRY.max_retries
    assert kinds.count(dg.DagsterEventType.STEP_FAILURE) == 1
    # each retry waited the policy's backoff (exponential: 2, 6, 14 s) before the step restarted
    logged = [(e.dagster_event.event_type, e.timestamp) for e in instance.all_logs(result.run_id)
              if e.dagster_event is not None and e.dagster_event.step_key == step]
    ups = [t for kind, t in logged if kind == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    restarts = [t for kind, t in logged if kind == dg.DagsterEventType.STEP_RESTARTED]
    for attempt, (up, restart) in enumerate(zip(ups, restarts), start=1):
        assert restart - up >= DATABASE_RETRY.calculate_delay(attempt) - 0.5, (attempt, restart - up)
    failure = next(e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    text = str(failure.event_specific_data.error)
    assert "database unreachable" in text and "secret-password" not in text
    assert not data.joinpath("lake", "registries", f"{DATABASE_REGISTRY}.parquet").exists()

    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {registry_key(c) for c in FILE_REGISTRIES}, "the other registries are not held back"
    for code in FILE_REGISTRIES:
        assert data.joinpath("lake", "registries", f"{code}.parquet").exists()


def lake_hashes(root: Path) -> dict[str, str]:
    out = {}
    for stage in COMPARED_STAGES:
        for path in sorted((root / "lake" / stage).glob("*.parquet")):
            out[f"{stage}/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def materialize_command(data: Path) -> list[str]:
    keys = [f"registries/{c}" for c in KILL_REGISTRIES] + [f"resolution/{n}" for n in RESOLUTION]
    return [str(BIN / "family-pipeline"), "materialize", "--data", str(data), "--select", *keys]


def test_a_run_killed_midway_and_rerun_leaves_the_same_lake(small_country, tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_PG_HOST", raising=False)
    # the reference: one uninterrupted run (in process: the CLI runs the same job the same way)
    started = time.monotonic()
    reference = copy_country(small_country, tmp_path / "reference")
    keys = [dg.AssetKey.from_user_string(k) for k in materialize_command(reference)[5:]]
    result, _ = run_on_instance(reference, tmp_path / "reference_home", "family_map", keys)
    assert result.success
    expected = lake_hashes(reference)
    print(f"reference run {time.monotonic() - started:.1f} s")
    assert {f"resolution/{n}.parquet" for n in RESOLUTION} <= set(expected)
    assert sum(k.startswith("registries/") for k in expected) == len(KILL_REGISTRIES)

    # the same run through the CLI, killed (SIGKILL, no chance to clean up) once some registries are written
    data = copy_country(small_country, tmp_path / "data")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_PG_HOST", None)
    registries_dir = data / "lake" / "registries"
    proc = subprocess.Popen(materialize_command(data), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if registries_dir.exists() and len(list(registries_dir.glob("*.parquet"))) >= 2:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    written = len(list(registries_dir.glob("*.parquet")))
    assert 2 <= written < len(KILL_REGISTRIES)
    assert not (data / "lake" / "resolution" / "persons.parquet").exists()

    # run again on the same instance and lake
    rerun = subprocess.run(materialize_command(data), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert lake_hashes(data) == expected

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    instance = instance_for(tmp_path / "home")
    statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["STARTED", "SUCCESS"], "the killed run stays unfinished; the rerun succeeds"
