"""Literal lakes for the warehouse tests, built from the small country's truth (its persons have
real-looking IINs and names, which is what the privacy assertions need)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from family_pipeline.lib.lake import Lake
from family_pipeline.lib.pseudonym import pseudonym_ints
from family_pipeline.warehouse import Warehouse, embedded_url

ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def truth_persons(country: Path) -> pd.DataFrame:
    """The truth persons, their ``person_id`` made the way resolution makes it (a keyed hash of
    the IIN), so a leaked person id would be recognisable."""
    truth = pd.read_parquet(country / "truth" / "persons.parquet")
    truth["person_id"] = pseudonym_ints(("iin:" + truth.iin).tolist())
    return truth


def persons_table(truth: pd.DataFrame) -> pa.Table:
    """A golden-records table shaped like ``lake/resolution/persons.parquet``."""
    frame = truth[["person_id", "iin", "last_name", "first_name", "patronymic", "birth_date", "sex", "region",
                   "address", "death_date", "alive"]].copy()
    frame["birth_date"] = frame.birth_date.dt.date
    frame["death_date"] = frame.death_date.dt.date
    frame["iin_source"] = "gbd_fl"
    return pa.Table.from_pandas(frame, preserve_index=False)


def families_table(truth: pd.DataFrame) -> pa.Table:
    """A families table shaped like ``lake/families/families.parquet`` (the contract's columns)."""
    living = truth[truth.alive]
    heads = living[living.family_role.isin(["head", "single"])].drop_duplicates("family_id")
    members = living.groupby("family_id").size()
    frame = pd.DataFrame({
        "family_id": heads.family_id.to_numpy(np.int64),
        "region": heads.region.to_numpy(),
        "settlement_type": heads.settlement_type.to_numpy(),
        "members": members.reindex(heads.family_id).to_numpy(np.int64),
        "head_person_id": heads.person_id.to_numpy(np.int64),
        "family_type": np.where(members.reindex(heads.family_id).to_numpy() > 1, "couple_kids", "single"),
    })
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture
def lake(small_country, tmp_path) -> Lake:
    """A lake with resolution/persons and families/families from the small country."""
    store = Lake(tmp_path / "data")
    truth = truth_persons(small_country)
    store.write("resolution", "persons", persons_table(truth))
    store.write("families", "families", families_table(truth))
    return store


@pytest.fixture(params=ENGINES)
def warehouse(request, tmp_path):
    """An empty warehouse: embedded DuckDB, or a fresh PostgreSQL database."""
    if request.param == "duckdb":
        url = embedded_url(tmp_path / "warehouse.duckdb")
    else:
        url = request.getfixturevalue("postgres_db")[1]
    with Warehouse(url) as target:
        yield target
