"""The bench command's machinery on the small country: the stages as one run, each stage in
data-flow order with its time, peak memory and rows in and out. (Scale runs are not tests.)"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from family_pipeline.benchmark import STAGES, run_benchmark


@pytest.fixture
def lake_copy(family_map_run, tmp_path):
    """A writable copy of the session's materialized country (landing, lake, truth link)."""
    root = tmp_path / "country"
    shutil.copytree(family_map_run["root"], root, symlinks=True)
    return root


def test_bench_reports_each_stage_with_time_memory_and_rows(lake_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    report = run_benchmark(lake_copy, persons=0, synth=False, stages=("families", "scoring"))
    assert report["success"] is True
    assert [s["stage"] for s in report["stages"]] == ["families", "scoring"]  # data-flow order
    for stage in report["stages"]:
        assert stage["success"] and stage["seconds"] > 0 and stage["peak_total_mb"] > 0
        assert stage["assets"] > 0 and stage["rows_out"] > 0
        assert stage["window"][0] < stage["window"][1]
    families, scoring = report["stages"]
    assert families["window"][1] <= scoring["window"][0]  # scoring waits for the families
    assert report["pipeline_seconds"] >= families["seconds"] + scoring["seconds"]
    assert report["peak_memory_mb"] >= max(s["peak_total_mb"] for s in report["stages"])
    # the memory over the run, sampled from before the first step to after the last
    times = [t for t, _ in report["memory_timeline"]]
    assert times == sorted(times) and times[0] <= families["window"][0] and times[-1] >= scoring["window"][1]
    assert abs(max(mb for _, mb in report["memory_timeline"]) - report["peak_memory_mb"]) <= 1
    assert [s["step"] for s in report["steps"] if s["stage"] == "scoring"]  # every step, with its stage
    # scoring reads what families wrote (family_features is one of its three tables)
    assert 0 < scoring["rows_in"] <= families["rows_out"]
    assert "synth" not in report
    written = json.loads((lake_copy / "reports" / "bench.json").read_text())
    assert written["stages"] == report["stages"]
    assert report["truth_in_run"] is True and "truth_exact_family_rate" in _family_metadata()


def _family_metadata() -> dict:
    import dagster as dg

    from family_pipeline.defs.families import FAMILY_MEMBERS

    record = dg.DagsterInstance.get().fetch_materializations(FAMILY_MEMBERS, limit=1).records[0]
    return record.asset_materialization.metadata


def test_bench_can_time_the_run_without_the_truth_and_evaluate_after(lake_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAMILY_PIPELINE_TRUTH_IN_RUN", "1")  # restored after the test: the bench sets it
    report = run_benchmark(lake_copy, persons=0, synth=False, stages=("families",), truth_in_run=False, evaluate=True)
    assert report["success"] is True and report["truth_in_run"] is False
    metadata = _family_metadata()
    assert metadata["families"].value > 0 and not any(k.startswith("truth_") for k in metadata)
    # the accuracy is measured after the run instead
    assert report["evaluation"]["families"]["families"]["exact_family_rate"] > 0.9
    assert report["evaluation_seconds"] > 0


def test_bench_can_time_the_run_with_no_truth_at_all(lake_copy, tmp_path, monkeypatch, capsys):
    """``--no-truth``: production timing (no truth figures in the assets) and no evaluation after
    the run, for a national run where the evaluation would read the whole truth."""
    from family_pipeline.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAMILY_PIPELINE_TRUTH_IN_RUN", "1")  # restored after the test: the bench sets it
    assert main(["bench", "--no-synth", "--data", str(lake_copy), "--stages", "families", "--no-truth"]) == 0
    report = json.loads((lake_copy / "reports" / "bench.json").read_text())
    assert report["success"] is True and report["truth_in_run"] is False
    assert "evaluation" not in report and "evaluation_seconds" not in report
    metadata = _family_metadata()
    assert metadata["families"].value > 0 and not any(k.startswith("truth_") for k in metadata)
    capsys.readouterr()
    with pytest.raises(SystemExit):  # no truth and an evaluation contradict each other
        main(["bench", "--no-synth", "--data", str(lake_copy), "--no-truth", "--evaluate"])
    assert "not allowed with" in capsys.readouterr().err


def test_stages_follow_the_data_flow():
    assert STAGES.index("registries") < STAGES.index("resolution") < STAGES.index("quality") \
        < STAGES.index("families") < STAGES.index("scoring") < STAGES.index("services") < STAGES.index("warehouse")


def test_bench_runs_steps_in_processes_forked_from_a_warm_server(lake_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    report = run_benchmark(lake_copy, persons=0, synth=False, stages=("families", "scoring"), processes=2)
    assert report["success"] is True and report["processes"] == 2
    for stage in report["stages"]:
        # each step ran in its own process, so a stage's figure is of step processes alone (the
        # run's own process and the forkserver are in the run's peak, never in a step's); a stage
        # whose steps were all over before the first sample (the two scoring steps take half a
        # second each here) is not measured rather than measured as nothing
        assert stage["peak_step_mb"] is None or 0 < stage["peak_step_mb"] < report["peak_memory_mb"]
        assert stage["rows_out"] > 0
    # the run's process polled the steps' events with the wait that adapts to their pace
    from dagster._core.executor import child_process_executor

    from family_pipeline import execution
    assert child_process_executor._poll_for_event is execution._poll_for_event
    assert execution.EVENT_POLL_SECONDS <= child_process_executor.TICK <= execution.QUIET_POLL_SECONDS
    by_stage = {s["stage"]: s for s in report["stages"]}
    # memory is sampled once a second: a step that lasts two samples is measured, and so is its
    # stage (the family steps take a few seconds on a slow machine, under one on a fast one)
    for step in report["steps"]:
        if step["seconds"] >= 2:
            assert step["peak_mb"] is not None
            assert by_stage[step["stage"]]["peak_step_mb"] is not None


def test_steps_that_hold_the_whole_country_never_run_side_by_side_when_memory_allows_one(lake_copy, tmp_path,
                                                                                          monkeypatch):
    """Two processes, one whole-country step at a time: the cross-registry checks and the family
    steps, all ready once the persons are resolved, run one after the other, while the small
    steps beside them still take the other process."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    report = run_benchmark(lake_copy, persons=0, synth=False, stages=("quality", "families", "scoring"),
                           processes=2, whole_country_at_once=1)
    assert report["success"] is True and report["whole_country_at_once"] == 1
    by_key = {s["step"]: s for s in report["steps"]}
    heavy = [by_key[k]["window"] for k in ("cross_registry_checks", "family_tables",
                                           "families__family_features")]
    heavy.sort()
    for (_, end), (start, _) in zip(heavy, heavy[1:]):
        assert end <= start  # one after the other
    for step in report["steps"]:  # each in a process of its own, measured with what it started
        assert step["success"] and step["seconds"] >= 0
        if step["seconds"] >= 2:  # sampled once a second: a shorter step may end before a sample
            assert step["peak_mb"] is not None
        assert step["peak_mb"] is None or 0 < step["peak_mb"] < report["peak_memory_mb"]
    assert by_key["cross_registry_checks"]["peak_mb"]


def test_whole_country_steps_fit_the_machine_by_the_size_of_the_exports(tmp_path):
    from family_pipeline.execution import PEAK_PER_LANDING_BYTE, whole_country_steps

    (tmp_path / "landing" / "some_registry").mkdir(parents=True)
    (tmp_path / "landing" / "some_registry" / "part.csv").write_bytes(b"x" * 1_000_000)
    peak = 1_000_000 * PEAK_PER_LANDING_BYTE
    assert whole_country_steps(tmp_path, processes=2, memory_bytes=int(peak * 10)) == 2
    assert whole_country_steps(tmp_path, processes=4, memory_bytes=int(peak * 2)) == 1  # 1.5 steps' worth
    assert whole_country_steps(tmp_path, processes=2, memory_bytes=int(peak / 2)) == 1  # never none
    assert whole_country_steps(tmp_path, processes=1, memory_bytes=int(peak * 10)) == 1


def test_the_memory_heavy_steps_are_the_ones_tagged_whole_country():
    from family_pipeline.definitions import build
    from family_pipeline.execution import MEMORY_TAG, WHOLE_COUNTRY, multiprocess_config

    job = build().resolve_job_def("family_map")
    tagged = {node.name for node in job.graph.node_defs if node.tags.get(MEMORY_TAG) == WHOLE_COUNTRY}
    assert tagged == {"resolve_persons", "resolve_animals", "cross_registry_checks", "family_tables",
                      "families__family_features", "housing_queue_audit", "benefit_assignments"}
    limits = multiprocess_config(2, 1)["execution"]["config"]["multiprocess"]["tag_concurrency_limits"]
    assert limits == [{"key": MEMORY_TAG, "value": WHOLE_COUNTRY, "limit": 1}]
    assert "tag_concurrency_limits" not in multiprocess_config(2, 2)["execution"]["config"]["multiprocess"]


def test_when_every_process_is_busy_the_path_to_the_benefits_goes_first_and_warehouse_copies_last():
    """The order Dagster's executor starts ready steps in (its own sort of the run's real plan)."""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.plan.active import _default_sort_key

    from family_pipeline.definitions import build

    plan = create_execution_plan(build().resolve_job_def("family_map"))
    ready_together = ["warehouse__persons", "housing_queue_audit", "scoring__family_scores", "juror_longlists",
                      "cross_registry_checks", "warehouse__family_features", "families__family_features"]
    steps = sorted((plan.get_step_by_key(k) for k in ready_together), key=_default_sort_key)
    order = [s.key for s in steps]
    assert set(order[:2]) == {"scoring__family_scores", "families__family_features"}
    assert order[2] == "cross_registry_checks"  # the longest step beside the path, as soon as it can
    assert set(order[3:5]) == {"housing_queue_audit", "juror_longlists"}
    assert set(order[5:]) == {"warehouse__persons", "warehouse__family_features"}


def test_the_warm_server_forks_its_steps_a_heap_the_collector_leaves_alone(tmp_path):
    """The forkserver's imports are frozen out of the garbage collector: a step process that
    walked them would copy every page of the server's heap into itself."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    frozen = subprocess.run([sys.executable, "-c", "import gc, family_pipeline.warm; print(gc.get_freeze_count())"],
                            env=env, capture_output=True, text=True, check=True)
    assert int(frozen.stdout.split()[-1]) > 100_000


def test_the_event_poll_waits_briefly_while_events_come_and_longer_while_none_do():
    import multiprocessing

    from dagster._core.executor import child_process_executor

    from family_pipeline import execution
    from family_pipeline.execution import EVENT_POLL_SECONDS, QUIET_POLL_SECONDS
    execution.install_event_poll()  # as the executor does
    ctx = multiprocessing.get_context("fork")
    step = ctx.Process(target=time.sleep, args=(30,))
    step.start()
    events = ctx.Queue()
    try:
        child_process_executor.TICK = QUIET_POLL_SECONDS
        for n in range(3):
            events.put(n)
        time.sleep(0.2)  # the queue's feeder thread has written them
        # an event: the next wait is the short one, so a step's burst of events drains fast
        assert [execution._poll_for_event(step, events) for _ in range(3)] == [0, 1, 2]
        assert child_process_executor.TICK == EVENT_POLL_SECONDS
        # no event: the wait doubles, up to Dagster's own 20 ms
        waits = []
        for _ in range(6):
            assert execution._poll_for_event(step, events) is None
            waits.append(child_process_executor.TICK)
        assert waits == [0.004, 0.008, 0.016, QUIET_POLL_SECONDS, QUIET_POLL_SECONDS, QUIET_POLL_SECONDS]
        events.put("done")
        time.sleep(0.2)
        assert execution._poll_for_event(step, events) == "done"
        assert child_process_executor.TICK == EVENT_POLL_SECONDS
        # a step that ended with its queue drained is reported as such, whatever the wait
        step.terminate()
        step.join()
        assert execution._poll_for_event(step, events) == child_process_executor.PROCESS_DEAD_AND_QUEUE_EMPTY
    finally:
        step.kill()
        events.close()
