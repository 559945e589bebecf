"""Shared fixtures: a small synthetic country, a fresh PostgreSQL database, Dagster homes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from family_pipeline.instance import POSTGRES_CONFIG, prepare_dagster_home

PG_HOST = os.environ.get("FAMILY_PIPELINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FAMILY_PIPELINE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FAMILY_PIPELINE_TEST_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("FAMILY_PIPELINE_TEST_PG_PASSWORD", "")
#: a small country shared by the tests of every stage (generated once per session)
COUNTRY_PERSONS = 3_000
COUNTRY_SEED = 11


def _admin_connection():
    import psycopg2

    try:
        con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD,
                               dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:
        message = f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    con.autocommit = True
    return con


@pytest.fixture
def postgres_db():
    """A fresh database (name, SQLAlchemy URL); dropped afterwards."""
    name = f"fp_test_{uuid.uuid4().hex[:10]}"
    con = _admin_connection()
    with con.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    auth = PG_USER + (f":{PG_PASSWORD}" if PG_PASSWORD else "")
    try:
        yield name, f"postgresql+psycopg2://{auth}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with con.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        con.close()


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    """A SQLite Dagster instance home with the repository's dagster.yaml."""
    monkeypatch.delenv("DAGSTER_PG_HOST", raising=False)
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return prepare_dagster_home(home)


@pytest.fixture
def pg_dagster_home(tmp_path, monkeypatch, postgres_db):
    """A Dagster home with the production PostgreSQL config pointing at a fresh database."""
    name, _ = postgres_db
    for key, value in {"DAGSTER_PG_HOST": PG_HOST, "DAGSTER_PG_PORT": str(PG_PORT), "DAGSTER_PG_USERNAME": PG_USER,
                       "DAGSTER_PG_PASSWORD": PG_PASSWORD, "DAGSTER_PG_DB": name}.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "pg_dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert POSTGRES_CONFIG.exists()
    return prepare_dagster_home(home)


@pytest.fixture(scope="session")
def small_country(tmp_path_factory) -> Path:
    """A generated country (landing zone + truth) shared read-only by the tests."""
    from family_pipeline.synth import generate_country

    out = tmp_path_factory.mktemp("small_country")
    generate_country(out, persons=COUNTRY_PERSONS, seed=COUNTRY_SEED, progress=False)
    return out


@pytest.fixture(scope="session")
def family_map_run(small_country, tmp_path_factory) -> dict:
    """The whole ``family_map`` job, once per session, on a writable copy of the small country.

    Tests that only read what the job produced share it (the end-to-end run of every stage is
    the slowest thing in the suite); a test that changes the landing zone or the lake makes its
    own copy instead. Keys: root, lake, home, result, instance."""
    from family_pipeline.lib.lake import Lake

    root = copy_country(small_country, tmp_path_factory.mktemp("family_map") / "country")
    home = tmp_path_factory.mktemp("family_map_home")
    result, instance = run_on_instance(root, home, "family_map")
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return {"root": root, "lake": Lake(root), "home": home, "result": result, "instance": instance}


def copy_country(src: Path, dst: Path) -> Path:
    """A writable copy of a generated country's landing zone; the truth is linked, not copied."""
    import shutil

    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "landing", dst / "landing")
    (dst / "truth").symlink_to(src / "truth", target_is_directory=True)
    return dst


def run_job(data_dir: Path, job: str, selection: list | None = None):
    """Execute a job of the real definitions in process on the current ``$DAGSTER_HOME``."""
    import dagster as dg

    from family_pipeline.definitions import defs

    os.environ["FAMILY_PIPELINE_DATA"] = str(data_dir)
    try:
        job_def = defs().resolve_job_def(job)
        return job_def.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False,
                                          asset_selection=selection)
    finally:
        del os.environ["FAMILY_PIPELINE_DATA"]


def run_on_instance(root: Path, home: Path, job: str = "family_map", selection: list | None = None):
    """Run ``job`` on a fresh SQLite instance in ``home``; returns (result, instance)."""
    import dagster as dg

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_PG_HOST", raising=False)
        mp.setenv("DAGSTER_HOME", str(home))
        prepare_dagster_home(home)
        result = run_job(root, job, selection)
        return result, dg.DagsterInstance.get()
