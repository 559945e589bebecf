"""ParquetRuns: a registry's references read from the row groups that hold them, the same rows
as a filter on the registry gives."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from family_pipeline.lib.parquet_columns import ParquetRuns


@pytest.fixture
def crosswalk(tmp_path):
    # runs of 1, 333, 4,000 and 57 rows, row groups of 700 rows: runs start and end inside groups
    # and span them; "scattered" comes back after another registry, "spare" has a null group
    runs = [("zags_births", 1), ("gbd_fl", 333), ("address_register", 4000), ("scattered", 57), ("kandas", 20),
            ("scattered", 5), ("spare", 3)]
    registry, group = [], []
    for name, n in runs:
        registry += [name] * n
        group += [("subject" if i % 3 else "owner") for i in range(n)]
    group[-1] = None
    n = len(registry)
    table = pa.table({"registry": registry, "record_id": [f"r{i}" for i in range(n)], "group": group,
                      "person_id": list(range(n))})
    path = tmp_path / "xref.parquet"
    pq.write_table(table, path, row_group_size=700)
    assert pq.ParquetFile(path).metadata.num_row_groups > 5
    return path


def test_each_registry_reads_the_rows_a_filter_gives_in_file_order(crosswalk):
    runs = ParquetRuns(crosswalk, "registry")
    assert runs.scattered == {"scattered"}
    assert runs.runs["gbd_fl"] == (1, 334) and runs.runs["address_register"] == (334, 4334)
    for name in ("zags_births", "gbd_fl", "address_register", "scattered", "kandas", "spare", "absent"):
        expected = pq.read_table(crosswalk, columns=["record_id", "group", "person_id"],
                                 filters=[("registry", "=", name)])
        got = runs.read(name, ["record_id", "group", "person_id"])
        assert got.num_rows == expected.num_rows
        assert got.equals(expected.cast(got.schema)), name
        coded = runs.read(name, ["group"], read_dictionary=("group",))
        assert pa.types.is_dictionary(coded.schema.field("group").type) or name == "scattered"
        assert coded.column("group").cast(pa.string()).to_pylist() == expected.column("group").to_pylist()


def test_the_crosswalk_of_a_national_file_reads_registry_slices_through_the_runs(crosswalk):
    from family_pipeline.families.sources import Crosswalk

    national, whole = Crosswalk(path=crosswalk), Crosswalk(pq.read_table(crosswalk))
    for name in ("gbd_fl", "address_register", "scattered", "spare", "absent"):
        for group in ("subject", "owner"):
            assert national._raw(name, group).equals(whole._raw(name, group)), (name, group)
    assert national.persons_of(["gbd_fl", "kandas"]).tolist() == whole.persons_of(["gbd_fl", "kandas"]).tolist()
