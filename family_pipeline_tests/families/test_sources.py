"""The crosswalk reader and the id-set helpers give what the plain pandas/numpy forms give."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from family_pipeline.families.sets import isin, setdiff, union, unique
from family_pipeline.families.sources import Crosswalk, person_rows
from family_pipeline.lib.lake import Lake


def _xref(rows: list[tuple]) -> pa.Table:
    registry, record, group, person = zip(*rows)
    return pa.table({"registry": pa.array(registry, pa.large_string()), "record_id": pa.array(record, pa.large_string()),
                     "group": pa.array(group, pa.large_string()), "person_id": pa.array(person, pa.int64())})


ROWS = [("b", "B1", "subject", 7), ("a", "A1", "subject", 1), ("a", "A2", "subject", 2),
        ("a", "A1", "mother", 3), ("a", "A1", "subject", 9),  # A1 again: the first reference counts
        ("b", "B2", "subject", 8), ("a", "A3", "subject", 4)]  # "a|subject" in two runs


@pytest.mark.parametrize("rows", [ROWS, sorted(ROWS, key=lambda r: (r[0], r[2]))])
def test_crosswalk_slices_and_lookups_match_a_merge(rows):
    walk = Crosswalk(_xref(rows))
    frame = pd.DataFrame(rows, columns=["registry", "record_id", "group", "person_id"])
    for (registry, group), part in frame.groupby(["registry", "group"]):
        expected = part[["record_id", "person_id"]].drop_duplicates("record_id").reset_index(drop=True)
        got = walk.slice(registry, group)
        assert got.record_id.tolist() == expected.record_id.tolist()
        assert got.person_id.tolist() == expected.person_id.tolist()
    records = ["A3", "A1", "Z9", "A1", "A2"]
    assert walk.person_ids("a", "subject", records).tolist() == [4, 1, -1, 1, 2]
    assert walk.person_ids("a", "mother", records).tolist() == [-1, 3, -1, 3, -1]
    assert walk.person_ids("c", "subject", records).tolist() == [-1] * 5
    assert walk.persons_of(["a"]).tolist() == [1, 2, 3, 4, 9]


def test_person_rows_keeps_registry_order_and_marks_the_unresolved(tmp_path):
    lake = Lake(tmp_path)
    lake.write("resolution", "person_xref", _xref(ROWS))
    lake.write("registries", "a", pa.table({"record_id": ["A2", "A9", "A1"], "amount": [1.0, 2.0, 3.0]}))
    rows = person_rows(lake, "a", ["amount", "missing"], crosswalk=Crosswalk.load(lake))
    assert rows.columns.tolist() == ["record_id", "amount", "missing", "person_id"]
    assert rows.record_id.tolist() == ["A2", "A9", "A1"] and rows.person_id.tolist() == [2, -1, 1]
    assert person_rows(lake, "absent", ["x"]).empty


def test_id_sets_match_numpy():
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 500):
        a, b = rng.integers(-3, 40, n), rng.integers(0, 50, n // 2 + 1)
        assert np.array_equal(unique(a), np.unique(a))
        assert np.array_equal(isin(a, b), np.isin(a, b))
        assert np.array_equal(union(a, b), np.union1d(a, b))
        assert np.array_equal(setdiff(a, b), np.setdiff1d(a, b))
    floats = np.array([1.0, np.nan, 6.0])
    assert isin(floats, [6]).tolist() == [False, False, True]
    assert isin(floats, [np.nan]).tolist() == np.isin(floats, [np.nan]).tolist()
    assert isin(np.array(["x", None], dtype=object), ["x"]).tolist() == [True, False]
