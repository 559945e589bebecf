"""Publishing marts to the embedded DuckDB warehouse and to a real PostgreSQL: restricted and
analytics schemas, pseudonymous keys, idempotent reruns, atomic failures, exact values."""

import datetime as dt
import re
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from family_pipeline.alerts import AlertStore
from family_pipeline.alerts.digest import Digest, Failure
from family_pipeline.lib.pseudonym import pseudonyms
from family_pipeline.warehouse import (
    ANALYTICS,
    MartCatalogError,
    MartSpec,
    Snapshot,
    Warehouse,
    alerts_table,
    mart_catalog,
)
from family_pipeline_tests.warehouse.conftest import truth_persons

DAY = dt.date(2026, 11, 29)
NEXT_DAY = dt.date(2026, 11, 30)
PERSONS = mart_catalog().mart("persons")
FAMILIES = mart_catalog().mart("families")


def _spec(name: str, schema: str = ANALYTICS, **extra) -> MartSpec:
    return MartSpec.model_validate({"name": name, "schema": schema, "description": name,
                                    "source": {"stage": "test", "table": name}, "upstream": ["test", name], **extra})


def _count(warehouse: Warehouse, table: str, where: str = "") -> int:
    with warehouse.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar()


def _words(frame: pd.DataFrame) -> set[str]:
    text = "\n".join(frame[c].astype(str).str.cat(sep="\n") for c in frame.columns)
    return set(re.findall(r"\w+", text))


def test_restricted_and_analytics_marts_live_in_separate_schemas(warehouse, lake, small_country):
    persons = warehouse.publish(PERSONS, lake.table("resolution", "persons"), Snapshot(DAY, "run-1"))
    families = warehouse.publish(FAMILIES, lake.table("families", "families"), Snapshot(DAY, "run-1"))
    truth = truth_persons(small_country)
    assert persons.rows == len(truth) and persons.table == "restricted.persons"
    assert families.rows == lake.read("families", "families").num_rows and families.table == "analytics.families"
    assert warehouse.tables("restricted") == ["persons"]
    assert warehouse.tables("analytics") == ["families"]
    # the restricted mart keeps the personal data, exactly
    restricted = warehouse.read("restricted.persons")
    assert set(restricted.iin) == set(truth.iin)
    assert set(restricted.last_name.dropna()) == set(truth.last_name.dropna())
    # the analytics mart has the head as a keyed hash of the person id, and no person id at all
    analytics = warehouse.read("analytics.families").sort_values("family_id")
    source = lake.read("families", "families").to_pandas().sort_values("family_id")
    assert "head_person_id" not in analytics.columns and families.pseudonymized == ("head_person_id",)
    assert list(analytics.head_person_key) == list(pseudonyms(source.head_person_id.astype(str).tolist()))
    assert analytics.head_person_key.str.fullmatch(r"[0-9a-f]{16}").all()
    # no IIN, name or person id of anyone in the country, anywhere in the analytics mart
    words = _words(analytics)
    assert not words & set(truth.iin)
    assert not words & (set(truth.last_name) | set(truth.first_name) | set(truth.patronymic.dropna()))
    assert not words & set(truth.person_id.astype(str))


def test_a_rerun_replaces_its_snapshot(warehouse, lake):
    source = lake.table("resolution", "persons")
    first = warehouse.publish(PERSONS, source, Snapshot(DAY, "run-1"), keep_snapshots=2)
    again = warehouse.publish(PERSONS, source, Snapshot(DAY, "run-2"), keep_snapshots=2)
    assert again.replaced_rows == first.rows and again.snapshots == 1
    assert _count(warehouse, "restricted.persons") == first.rows  # not doubled
    assert warehouse.snapshots(PERSONS) == {DAY: {"rows": first.rows, "run_ids": ["run-2"]}}
    # a new day adds a snapshot; beyond keep_snapshots the oldest goes
    warehouse.publish(PERSONS, source, Snapshot(NEXT_DAY, "run-3"), keep_snapshots=2)
    assert sorted(warehouse.snapshots(PERSONS)) == [DAY, NEXT_DAY]
    latest = warehouse.publish(PERSONS, source, Snapshot(NEXT_DAY + dt.timedelta(days=1), "run-4"), keep_snapshots=2)
    assert latest.expired_snapshots == 1
    assert sorted(warehouse.snapshots(PERSONS)) == [NEXT_DAY, NEXT_DAY + dt.timedelta(days=1)]
    assert _count(warehouse, "restricted.persons") == 2 * first.rows


def test_a_failed_publish_leaves_the_previous_snapshot(warehouse):
    spec = _spec("counts")
    good = pa.table({"family_id": pa.array([1, 2, 3], pa.int64()), "members": pa.array([1, 2, 3], pa.int64())})
    warehouse.publish(spec, good, Snapshot(DAY, "run-1"))
    # the same snapshot again, but a value the table's BIGINT column cannot take: the load fails
    # after the old rows were deleted inside the transaction, so the delete is rolled back
    bad = pa.table({"family_id": pa.array([7, 8], pa.int64()), "members": pa.array(["4", "many"])})
    with pytest.raises(Exception):
        warehouse.publish(spec, bad, Snapshot(DAY, "run-2"))
    assert warehouse.snapshots(spec) == {DAY: {"rows": 3, "run_ids": ["run-1"]}}


def test_an_analytics_mart_refuses_an_identifying_column(warehouse, lake):
    source = lake.read("families", "families").append_column("spouse_iin", pa.array(["850416401052"] * lake.read(
        "families", "families").num_rows))
    with pytest.raises(MartCatalogError, match=r"mart 'families' \(analytics\).*\['spouse_iin'\]"):
        warehouse.publish(FAMILIES, source, Snapshot(DAY, "run-1"))
    assert warehouse.tables(ANALYTICS) == []  # nothing was written
    # the same column is fine in a restricted mart
    restricted = _spec("families_restricted", schema="restricted")
    assert warehouse.publish(restricted, source, Snapshot(DAY, "run-1")).rows == source.num_rows


def test_values_survive_the_bulk_path_exactly(warehouse):
    """Quotes, commas, new lines, empty strings against nulls, Kazakh letters, dates, times,
    booleans, floats and nulls of every type come back as they went in."""
    table = pa.table({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "text": pa.array(['a "quoted", value', "line\nbreak", "", None]),
        "kazakh": pa.array(["Қалиева Гүлжан", "Өмірбек", "Ұлжан; Һ", None]),
        "day": pa.array([dt.date(1985, 4, 16), None, dt.date(2000, 2, 29), dt.date(1900, 1, 1)], pa.date32()),
        "at": pa.array([dt.datetime(2026, 1, 2, 3, 4, 5, 678000), None, None, dt.datetime(1999, 12, 31)],
                       pa.timestamp("us")),
        "flag": pa.array([True, False, None, True]),
        "amount": pa.array([0.1, -2.5e9, None, 46228.0]),
        "small": pa.array([1, None, -3, 127], pa.int32()),
    })
    result = warehouse.publish(_spec("tricky"), table, Snapshot(DAY, "run-1"))
    assert result.rows == 4
    back = warehouse.read("analytics.tricky").sort_values("id").reset_index(drop=True)
    expected = table.to_pandas()
    for column in table.column_names:
        got = [None if pd.isna(v) else v for v in back[column].tolist()]
        want = [None if pd.isna(v) else v for v in expected[column].tolist()]
        if column == "day":
            got = [None if v is None else pd.Timestamp(v).date() for v in got]
        if column == "at":
            got = [None if v is None else pd.Timestamp(v).to_pydatetime() for v in got]
            want = [None if v is None else pd.Timestamp(v).to_pydatetime() for v in want]
        assert got == want, column
    assert back.snapshot_run_id.tolist() == ["run-1"] * 4


def test_a_new_source_column_extends_the_table(warehouse):
    spec = _spec("grows")
    warehouse.publish(spec, pa.table({"family_id": pa.array([1, 2], pa.int64())}), Snapshot(DAY, "run-1"), 2)
    grown = pa.table({"family_id": pa.array([1, 2, 3], pa.int64()), "income_pc": pa.array([1.5, 2.5, None])})
    result = warehouse.publish(spec, grown, Snapshot(NEXT_DAY, "run-2"), 2)
    assert result.added_columns == ("income_pc",)
    back = warehouse.read("analytics.grows")
    assert back[back.snapshot_date.astype(str) == str(DAY)].income_pc.isna().all()
    assert back[back.snapshot_date.astype(str) == str(NEXT_DAY)].income_pc.notna().sum() == 2


def test_keys_follow_the_secret_from_the_environment(warehouse, lake, monkeypatch):
    source = lake.table("families", "families")
    monkeypatch.setenv("FAMILY_PIPELINE_PSEUDONYM_KEY", "first-secret")
    warehouse.publish(FAMILIES, source, Snapshot(DAY, "run-1"))
    first = warehouse.read("analytics.families").sort_values("family_id").head_person_key.tolist()
    warehouse.publish(FAMILIES, source, Snapshot(DAY, "run-2"))
    assert warehouse.read("analytics.families").sort_values("family_id").head_person_key.tolist() == first
    monkeypatch.setenv("FAMILY_PIPELINE_PSEUDONYM_KEY", "second-secret")
    warehouse.publish(FAMILIES, source, Snapshot(DAY, "run-3"))
    second = warehouse.read("analytics.families").sort_values("family_id").head_person_key.tolist()
    assert len(set(first) & set(second)) == 0


def test_dq_alerts_are_published_from_the_alert_store(warehouse, tmp_path):
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    failure = Failure(registry="gbd_fl", registry_name="Individuals", check="identifiers", severity="ERROR",
                      description="IIN check digit", flagged_records=3, counts={"bad_check_digit": 3},
                      sample_record_ids=["r1", "r2"], report=None)
    store.record(Digest(run_id="abc12345", recipient="owner@agency.example.kz", failures=[failure]), "table")
    spec = mart_catalog().mart("dq_alerts")
    result = warehouse.publish(spec, alerts_table(store.engine), Snapshot(DAY, "run-1"))
    assert result.rows == 1 and result.table == "analytics.dq_alerts"
    row = warehouse.read("analytics.dq_alerts").iloc[0]
    assert row.run_id == "abc12345" and row.errors == 1 and "sample record ids: r1, r2" in row.body
    # an alert store without a single digest yet publishes an empty snapshot, not an error
    empty = alerts_table(f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert warehouse.publish(spec, empty, Snapshot(NEXT_DAY, "run-2"), 2).rows == 0


@pytest.mark.postgres
def test_postgres_copy_streams_a_large_table(postgres_db, tmp_path):
    """200,000 rows go through COPY in batches: counts and sums match, and Python never holds the
    table as objects (a row-by-row insert would allocate far more than this bound)."""
    n = 200_000
    rng = np.random.default_rng(7)
    table = pa.table({
        "family_id": pa.array(np.arange(n, dtype=np.int64)),
        "region": pa.array(rng.choice(["KZ-71", "KZ-75", "KZ-79", "KZ-11"], n)),
        "income_pc": pa.array(np.round(rng.gamma(2.0, 40_000.0, n), 2)),
        "members": pa.array(rng.integers(1, 9, n, dtype=np.int64)),
        "receives_asp": pa.array(rng.random(n) < 0.1),
    })
    path = tmp_path / "families.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    with Warehouse(postgres_db[1]) as warehouse:
        tracemalloc.start()
        result = warehouse.publish(_spec("big"), path, Snapshot(DAY, "run-1"))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert result.rows == n and result.bulk_path == "postgresql copy"
        with warehouse.engine.connect() as conn:
            count, ids, members, asp = conn.execute(sa.text(
                "SELECT count(*), sum(family_id), sum(members), sum(receives_asp::int) FROM analytics.big")).one()
        assert (count, ids, members, asp) == (n, int(np.arange(n).sum()), int(table["members"].to_numpy().sum()),
                                               int(table["receives_asp"].to_numpy(zero_copy_only=False).sum()))
        # rerun: still n rows
        warehouse.publish(_spec("big"), path, Snapshot(DAY, "run-2"))
        assert _count(warehouse, "analytics.big") == n
    assert peak < 32 * 2**20, f"Python allocations peaked at {peak / 2**20:.0f} MiB"


def test_a_partitioned_lake_table_is_published_with_its_partition_column(warehouse, tmp_path):
    """A lake table written as a folder of region partitions (as the juror long-list is)."""
    import pyarrow.parquet as pq

    table = pa.table({"place": pa.array([1, 2, 1], pa.int64()), "person_id": pa.array([11, 12, 13], pa.int64()),
                      "region": ["KZ-10", "KZ-10", "KZ-71"]})
    folder = tmp_path / "juror_longlist.parquet"
    pq.write_to_dataset(table, folder, partition_cols=["region"])
    result = warehouse.publish(mart_catalog().mart("juror_longlist"), folder, Snapshot(DAY, "run-1"))
    assert result.rows == 3 and result.pseudonymized == ("person_id",)
    back = warehouse.read("analytics.juror_longlist").sort_values("person_key")
    assert sorted(back.region) == ["KZ-10", "KZ-10", "KZ-71"] and "person_id" not in back.columns
    assert sorted(back.person_key) == sorted(pseudonyms(["11", "12", "13"]))


@pytest.mark.postgres
def test_two_runs_publishing_the_same_snapshot_at_once_keep_one_copy(postgres_db, lake):
    """Two publishers racing on one mart and snapshot (say a schedule and a manual rerun) take
    turns: both succeed and the snapshot is held once."""
    from concurrent.futures import ThreadPoolExecutor

    source = lake.table("resolution", "persons")

    def publish(run_id: str):
        with Warehouse(postgres_db[1]) as warehouse:
            return warehouse.publish(PERSONS, source, Snapshot(DAY, run_id))

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(publish, ["run-a", "run-b"]))
    with Warehouse(postgres_db[1]) as warehouse:
        held = warehouse.snapshots(PERSONS)
    assert len(held[DAY]["run_ids"]) == 1 and held[DAY]["rows"] == results[0].rows
    assert sorted(r.replaced_rows for r in results) == [0, results[0].rows]
