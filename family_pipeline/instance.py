"""The Dagster instance the CLI runs on: ``$DAGSTER_HOME`` with the repository's dagster.yaml,
or the production PostgreSQL one when ``DAGSTER_PG_HOST`` is set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "dagster.yaml"
POSTGRES_CONFIG = REPO / "deploy" / "postgres" / "dagster.yaml"
#: first line of a dagster.yaml this module wrote (and may therefore replace)
MARK = "# written by family_pipeline.instance from "


def config_source() -> Path:
    return POSTGRES_CONFIG if os.environ.get("DAGSTER_PG_HOST") else DEFAULT_CONFIG


def prepare_dagster_home(home: Path | None = None) -> Path:
    """Make ``$DAGSTER_HOME`` (default ``./.dagster_home``) hold the right dagster.yaml.

    A dagster.yaml the user wrote there is left alone; one this function wrote is replaced, so
    switching between SQLite and PostgreSQL is a matter of setting ``DAGSTER_PG_HOST``.
    """
    home = Path(home or os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    source = config_source()
    if not target.exists() or target.read_text(encoding="utf-8").startswith(MARK):
        text = source.read_text(encoding="utf-8")
        tmp = target.with_suffix(".yaml.tmp")
        tmp.write_text(f"{MARK}{source.relative_to(REPO)}\n{text}", encoding="utf-8")
        shutil.move(tmp, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def instance_for(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))
