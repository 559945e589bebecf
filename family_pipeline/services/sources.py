"""Read what the services need from the lake: registry rows with the resolved ``person_id`` of
the person they name, the golden persons, and the families when that stage has run.

Registry rows are joined to ``resolution/person_xref`` by the families stage's ``person_rows``
(one crosswalk reader for every stage after resolution).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from family_pipeline.families.sources import person_rows
from family_pipeline.lib.lake import Lake

__all__ = ["as_days", "family_members", "golden_persons", "registry_persons", "years_before"]


def as_days(values) -> np.ndarray:
    """Dates (date objects, strings, datetime64, None) as int64 days since 1970; missing = NaT."""
    return pd.to_datetime(pd.Series(values), errors="coerce").to_numpy().astype("datetime64[D]")


def years_before(day: dt.date, years: int) -> np.datetime64:
    """The same calendar day ``years`` earlier (29 February falls back to the 28th)."""
    try:
        back = day.replace(year=day.year - years)
    except ValueError:
        back = day.replace(year=day.year - years, day=28)
    return np.datetime64(back, "D")


def registry_persons(lake: Lake, registry: str, columns: list[str], group: str = "subject") -> pd.DataFrame:
    """The clean rows of ``registry`` (``record_id`` + ``columns``) with the ``person_id`` of the
    person the ``group`` reference names; rows whose person is unknown are dropped. A registry
    that was never materialized gives an empty frame."""
    rows = person_rows(lake, registry, columns, group)
    return rows[rows.person_id >= 0].sort_values(["person_id", "record_id"], kind="stable")


def golden_persons(lake: Lake) -> pd.DataFrame:
    """person_id, birth_date, sex, region, death_date (as datetime64[D])."""
    persons = lake.read("resolution", "persons", columns=["person_id", "birth_date", "sex", "region", "death_date"]).to_pandas()
    persons["birth_date"] = as_days(persons.birth_date)
    persons["death_date"] = as_days(persons.death_date)
    return persons


def family_members(lake: Lake) -> pd.DataFrame | None:
    """``families/family_members`` (person_id, family_id, role) when the families stage has run."""
    path = lake.table("families", "family_members")
    if not path.exists():
        return None
    return pq.read_table(path, columns=["person_id", "family_id", "role"]).to_pandas()


def lookup_ids(keys: np.ndarray, index: np.ndarray, values: np.ndarray, missing: int = -1) -> np.ndarray:
    """``values[index == key]`` for every key, as exact int64 (ids above 2**53 survive: no float
    round trip), ``missing`` where the key is absent. ``index`` must be unique."""
    pos = pd.Index(index).get_indexer(keys)
    return np.where(pos >= 0, np.asarray(values, np.int64)[np.maximum(pos, 0)], missing).astype(np.int64)
