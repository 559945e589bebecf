"""The default instance's SQLite event log (family_pipeline.instance_storage): Dagster's files,
its connections kept open, bounded, and never shared with a forked process."""

import multiprocessing
import os

import dagster as dg
import yaml

from family_pipeline.instance import instance_for
from family_pipeline.instance_storage import OPEN_RUN_SHARDS, SqliteEventLogStorage


@dg.asset
def measured(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.info("a step that logs")
    return dg.MaterializeResult(metadata={"dagster/row_count": 3})


@dg.asset_check(asset=measured)
def measured_has_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _run(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([measured, measured_has_rows], instance=instance)
    assert result.success
    return result.run_id


def _stock_instance(home) -> dg.DagsterInstance:
    """The same home read through Dagster's own `storage: sqlite`."""
    stock = home.parent / "stock_home"
    stock.mkdir()
    (stock / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"sqlite": {"base_dir": str(home)}}}))
    return dg.DagsterInstance.from_config(str(stock))


def test_runs_written_here_are_read_by_dagsters_own_sqlite_storage_and_back(dagster_home):
    ours = instance_for(dagster_home)
    run_id = _run(ours)
    stock = _stock_instance(dagster_home)
    assert type(stock.event_log_storage) is not SqliteEventLogStorage
    assert stock.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    event = stock.get_latest_materialization_event(dg.AssetKey("measured"))
    assert event.run_id == run_id and event.asset_materialization.metadata["dagster/row_count"].value == 3
    check = stock.event_log_storage.get_latest_asset_check_execution_by_key([measured_has_rows.check_key])
    assert check[measured_has_rows.check_key].run_id == run_id
    logged = [e.user_message for e in stock.all_logs(run_id) if e.user_message == "a step that logs"]
    assert logged == ["a step that logs"]

    later = _run(stock)  # and what Dagster's storage wrote, ours reads
    assert instance_for(dagster_home).get_latest_materialization_event(dg.AssetKey("measured")).run_id == later


def test_connections_stay_open_across_events_but_no_more_than_the_bound(dagster_home):
    instance = instance_for(dagster_home)
    storage = instance.event_log_storage
    run_ids = [_run(instance) for _ in range(OPEN_RUN_SHARDS + 3)]
    assert len(storage._engines) == OPEN_RUN_SHARDS + 1  # the newest runs and the index
    assert (os.getpid(), run_ids[-1]) in storage._engines and (os.getpid(), run_ids[0]) not in storage._engines
    assert all(len(instance.all_logs(r)) > 10 for r in run_ids)  # an evicted run is still read
    assert storage.has_table("asset_keys") and not storage.has_table("no_such_table")
    storage.dispose()
    assert not storage._engines


def _store_in_child(instance: dg.DagsterInstance, queue) -> None:
    run_id = _run(instance)
    queue.put((run_id, os.getpid(), {pid for pid, _ in instance.event_log_storage._engines}))


def test_a_forked_process_opens_its_own_connections(dagster_home):
    instance = instance_for(dagster_home)
    first = _run(instance)  # the parent holds open connections when it forks
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_store_in_child, args=(instance, queue))
    child.start()
    child_run, child_pid, used = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert used == {child_pid}  # the child wrote through connections of its own
    second = _run(instance)  # and the parent's still work after the child has gone
    fresh = instance_for(dagster_home)
    for run_id in (first, child_run, second):
        assert fresh.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        assert any(e.user_message == "a step that logs" for e in fresh.all_logs(run_id))
