"""The production instance: a run queued on PostgreSQL storage is started by a real dagster-daemon."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import build_registry_assets, registry_key
from family_pipeline.defs.resources import LakeResource, RegistrySourceResource
from family_pipeline.instance import instance_for
from family_pipeline_tests.processes import default_interrupts, stop_process_group

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CODES = ["gbd_fl", "zags_marriages"]
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
TIMEOUT_SECONDS = 90


@pytest.mark.postgres
def test_daemon_starts_a_queued_run_on_postgres(pg_dagster_home, postgres_db, small_country, tmp_path):
    data = tmp_path / "data"
    for code in CODES:
        shutil.copytree(small_country / "landing" / code, data / "landing" / code)
    shutil.copy(small_country / "landing" / "snapshot.json", data / "landing" / "snapshot.json")
    instance = instance_for(pg_dagster_home)
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

    # the extracts are ingested once in process, so the landing-zone sensor (running by default
    # in the daemon) has nothing to catch up and the only run the daemon starts is ours
    first = dg.materialize(build_registry_assets([catalog().registry(c) for c in CODES]), instance=instance,
                           resources={"lake": LakeResource(root=str(data)), "registry_source": RegistrySourceResource()})
    assert first.success

    env = {**os.environ, "FAMILY_PIPELINE_DATA": str(data)}
    marker = uuid.uuid4().hex
    launch = subprocess.run(
        [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "ingest_registries",
         "-o", ",".join(f"registries__{c}" for c in CODES), "--tags", json.dumps({"test_marker": marker})],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"test_marker": marker}))
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.QUEUED, "nothing runs before the daemon"
    run_id = runs[0].run_id

    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              preexec_fn=default_interrupts)  # noqa: PLW1509 (only resets a signal)
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            run = instance.get_run_by_id(run_id)
            if run.status in FINISHED or daemon.poll() is not None:
                break
            time.sleep(1)
        heartbeats = instance.get_daemon_heartbeats()
    finally:
        stopped_cleanly = stop_process_group(daemon)
        log.close()
    log_text = (tmp_path / "daemon.log").read_text()
    assert run.status == dg.DagsterRunStatus.SUCCESS, f"run {run_id} is {run.status}\n{log_text[-4000:]}"
    assert {"QUEUED_RUN_COORDINATOR", "SENSOR", "SCHEDULER"} <= set(heartbeats)
    assert stopped_cleanly, "dagster-daemon did not stop on SIGTERM to its process group"

    # read back from PostgreSQL: a fresh instance object, and the tables themselves
    again = instance_for(pg_dagster_home)
    for code in CODES:
        event = again.get_latest_materialization_event(registry_key(code))
        assert event is not None and event.run_id == run_id
    # the landing-zone sensor ticked against the lake and found nothing new: ours is the only queued run
    assert [r.run_id for r in again.get_runs() if r.run_id != first.run_id] == [run_id]
    _, url = postgres_db
    with sa.create_engine(url).connect() as con:
        status = con.execute(sa.text("select status from runs where run_id = :r"), {"r": run_id}).scalar()
        steps = con.execute(sa.text("select count(*) from event_logs where run_id = :r and dagster_event_type = "
                                    "'STEP_SUCCESS'"), {"r": run_id}).scalar()
    assert status == "SUCCESS" and steps == len(CODES)
