"""The Dagster instance: SQLite by default, PostgreSQL in production, and the code location."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import build_registry_assets, registry_key
from family_pipeline.defs.resources import LakeResource, RegistrySourceResource
from family_pipeline.instance import DEFAULT_CONFIG, MARK, POSTGRES_CONFIG, instance_for, prepare_dagster_home
from family_pipeline.instance_storage import SqliteEventLogStorage

REPO = Path(__file__).resolve().parents[1]


def test_default_home_gets_the_sqlite_config(dagster_home):
    text = (dagster_home / "dagster.yaml").read_text()
    assert text.startswith(MARK)
    config = yaml.safe_load(text)
    assert config["storage"]["custom"]["class"] == "SqliteStorage" and config["telemetry"] == {"enabled": False}
    instance = instance_for(dagster_home)
    assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    assert isinstance(instance.event_log_storage, SqliteEventLogStorage)


def test_postgres_config_is_chosen_when_dagster_pg_host_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_HOST", "db.example")
    home = prepare_dagster_home(tmp_path / "h")
    assert "postgres_db" in (home / "dagster.yaml").read_text()
    monkeypatch.delenv("DAGSTER_PG_HOST")
    prepare_dagster_home(home)  # a file this module wrote is replaced when the setting changes
    assert "postgres_db" not in (home / "dagster.yaml").read_text()


def test_a_users_own_dagster_yaml_is_never_overwritten(tmp_path, monkeypatch):
    home = tmp_path / "h"
    home.mkdir()
    mine = "telemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(mine)
    monkeypatch.setenv("DAGSTER_PG_HOST", "db.example")
    prepare_dagster_home(home)
    assert (home / "dagster.yaml").read_text() == mine


@pytest.mark.postgres
def test_registry_assets_materialize_on_postgres_instance_storage(pg_dagster_home, postgres_db, small_country):
    """Runs and events of real registry assets land in PostgreSQL and are read back from it."""
    codes = ["gbd_fl", "zags_marriages", "cbdi_disability"]
    assets = build_registry_assets([catalog().registry(c) for c in codes])
    instance = instance_for(pg_dagster_home)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    result = dg.materialize(assets, instance=instance, resources={
        "lake": LakeResource(root=str(_copy_country(small_country, pg_dagster_home.parent / "data"))),
        "registry_source": RegistrySourceResource(),
    })
    assert result.success

    again = instance_for(pg_dagster_home)  # a second instance object reads the same storage
    run = again.get_run_by_id(result.run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    for code in codes:
        event = again.get_latest_materialization_event(registry_key(code))
        assert event is not None and event.run_id == result.run_id
        md = event.asset_materialization.metadata
        assert md["rows_read"].value == md["rows_clean"].value + md["rows_quarantined"].value

    _, url = postgres_db
    with sa.create_engine(url).connect() as con:
        assert con.execute(sa.text("select count(*) from runs where run_id = :r"), {"r": result.run_id}).scalar() == 1


def _copy_country(src: Path, dst: Path) -> Path:
    shutil.copytree(src / "landing", dst / "landing")
    return dst


def test_code_location_loads_with_every_registry():
    from family_pipeline.definitions import defs

    d = defs()
    keys = d.resolve_asset_graph().get_all_asset_keys()
    assert {registry_key(s.code) for s in catalog().registries} <= set(keys)
    assert d.resolve_job_def("family_map") is not None


def test_dagster_definitions_validate_passes_on_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home(tmp_path / "h"))}
    env.pop("DAGSTER_PG_HOST", None)
    proc = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_config_files_are_where_the_readme_says():
    assert DEFAULT_CONFIG == REPO / "dagster.yaml" and POSTGRES_CONFIG.exists()
