"""Automation: the schedules, the landing-zone sensor on a real landing zone, declarative automation."""

from __future__ import annotations

import datetime
import json
import os
import zoneinfo

import dagster as dg
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.defs.automation import landing_zone_sensor
from family_pipeline.defs.jobs import CROSS_REGISTRY_CHECKS
from family_pipeline.defs.registries import GROUP as REGISTRIES
from family_pipeline.defs.registries import build_registry_assets, registry_key
from family_pipeline.defs.resources import LakeResource, RegistrySourceResource
from family_pipeline.instance import instance_for
from family_pipeline_tests.conftest import copy_country


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from family_pipeline.definitions import defs

    return defs()


@pytest.mark.parametrize("name, job, cron", [
    ("registry_refresh_daily", "ingest_registries", "0 2 * * *"),
    ("family_map_weekly", "family_map", "0 4 * * 1"),
])
def test_schedules_run_the_right_job_on_the_right_cron(definitions, name, job, cron):
    schedule = definitions.resolve_schedule_def(name)
    assert schedule.job_name == job
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == "Asia/Almaty"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert definitions.resolve_job_def(job) is not None


def test_a_schedule_tick_requests_one_run_of_its_job(definitions):
    schedule = definitions.resolve_schedule_def("registry_refresh_daily")
    night = datetime.datetime(2026, 11, 30, 2, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Almaty"))
    requests = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=night)).run_requests
    assert len(requests) == 1 and requests[0].asset_selection is None  # the whole job


def _tick(instance, lake_root, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"lake": LakeResource(root=str(lake_root))})
    result = landing_zone_sensor(context)
    return result.run_requests or [], result.cursor


def test_landing_sensor_requests_only_changed_registries_once(definitions, small_country, tmp_path, dagster_home):
    data = copy_country(small_country, tmp_path / "data")
    instance = instance_for(dagster_home)
    with_extract = sorted(p.name for p in (data / "landing").iterdir()
                          if p.is_dir() and (p / "manifest.json").exists())
    assert len(with_extract) == len(catalog().registries)

    # two registries already ingested on this instance: the first tick catches up the others only
    ingested = ["gbd_fl", "zags_marriages"]
    result = dg.materialize(build_registry_assets([catalog().registry(c) for c in ingested]), instance=instance,
                            resources={"lake": LakeResource(root=str(data)), "registry_source": RegistrySourceResource()})
    assert result.success
    requests, cursor = _tick(instance, data, None)
    assert len(requests) == 1, "never-ingested extracts are caught up in one run"
    assert set(requests[0].asset_selection) == {registry_key(c) for c in with_extract if c not in ingested}
    assert set(json.loads(cursor)) == set(with_extract)

    # nothing new: no run
    assert _tick(instance, data, cursor)[0] == []

    # a new extract (new manifest and file) and a re-sent file (same manifest, new mtime)
    manifest_path = data / "landing" / "cbdi_disability" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["extracted_at"] = "2026-12-01T01:00:00"
    manifest_path.write_text(json.dumps(manifest))
    resent = data / "landing" / "gbd_fl" / catalog().registry("gbd_fl").file_name
    stat = resent.stat()
    os.utime(resent, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    requests, next_cursor = _tick(instance, data, cursor)
    assert sorted(r.tags["registry"] for r in requests) == ["cbdi_disability", "gbd_fl"]
    assert all(r.asset_selection == [registry_key(r.tags["registry"])] for r in requests)
    job = definitions.resolve_job_def("ingest_registries")
    for request in requests:  # each request is a valid subset of the job: the registry and its own checks
        subset = job.get_subset(asset_selection=set(request.asset_selection),
                                asset_check_selection=set(request.asset_check_keys))
        assert subset.graph.node_names() == [f"registries__{request.tags['registry']}"]
    assert len({r.run_key for r in requests}) == 2
    # the same tick evaluated again (a lost cursor update) asks for the same run keys: Dagster dedupes
    assert {r.run_key for r in _tick(instance, data, cursor)[0]} == {r.run_key for r in requests}
    # the second tick sees nothing new
    assert _tick(instance, data, next_cursor)[0] == []


def test_landing_sensor_ignores_registries_without_an_extract(tmp_path, dagster_home):
    (tmp_path / "data" / "landing").mkdir(parents=True)
    requests, cursor = _tick(instance_for(dagster_home), tmp_path / "data", None)
    assert requests == [] and json.loads(cursor) == {}


def test_an_export_in_parts_is_known_by_every_part(tmp_path):
    from family_pipeline.defs.automation import extract_fingerprint
    from family_pipeline.lib.lake import Lake

    spec = next(s for s in catalog().registries if s.source.location != "database")
    lake = Lake(tmp_path / "data")
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True)
    names = ["export.part0000.csv", "export.part0001.csv"]
    for name in names:
        (folder / name).write_text("a\n1\n")
    (folder / "manifest.json").write_text(json.dumps({
        "extracted_at": "2026-11-01T02:00:00", "rows": 2, "parts": [{"file": n, "rows": 1} for n in names]}))
    before = extract_fingerprint(spec, lake)
    (folder / names[1]).write_text("a\n2\n3\n")  # a part re-sent, the manifest unchanged
    assert extract_fingerprint(spec, lake) != before


def test_sensor_run_requests_fit_the_ingest_job(definitions):
    sensor = definitions.resolve_sensor_def("landing_zone_sensor")
    assert sensor.job_name == "ingest_registries"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_downstream_assets_follow_their_dependencies(definitions):
    graph = definitions.resolve_asset_graph()
    downstream = [k for k in graph.get_all_asset_keys() if k.path[0] != REGISTRIES]
    assert len(downstream) >= 5
    for key in graph.get_all_asset_keys():
        condition = graph.get(key).automation_condition
        if key.path[0] == REGISTRIES:
            assert condition is None, f"{key} is driven by schedules and the sensor"
        else:
            assert condition is not None and condition.get_label() == "eager", key

    sensor = definitions.resolve_sensor_def("default_automation_condition_sensor")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    targeted = sensor.asset_selection.resolve(graph)
    assert set(downstream) <= targeted and not any(k.path[0] == REGISTRIES for k in targeted)
    # the cross-registry checks are automated too (the registries' own checks run in their step)
    cross = set(CROSS_REGISTRY_CHECKS.resolve_checks(graph))
    assert cross and cross <= set(sensor.asset_selection.resolve_checks(graph))
    assert all(graph.get_check_spec(k).automation_condition is not None for k in cross)


def test_a_refreshed_registry_brings_its_downstream_assets_up_to_date(definitions):
    """Declarative automation evaluated on a real (in-memory) instance: nothing runs on an empty
    instance; once everything exists, a new materialization of one registry requests assets
    downstream of it, never the others, and only once."""
    instance = dg.DagsterInstance.ephemeral()
    graph = definitions.resolve_asset_graph()
    first = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
    assert first.total_requested == 0, "an empty instance does not start the whole map by itself"

    for key in graph.get_all_asset_keys():  # as if a full run had happened
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    settled = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=first.cursor)
    settled = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=settled.cursor)
    assert settled.total_requested == 0

    refreshed = registry_key("zags_marriages")
    instance.report_runless_asset_event(dg.AssetMaterialization(refreshed))
    tick = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=settled.cursor)
    keys = {r.key for r in tick.results if r.true_subset.size}
    requested = {k for k in keys if isinstance(k, dg.AssetKey)}
    downstream = dg.AssetSelection.assets(refreshed).downstream().resolve(graph) - {refreshed}
    assert requested <= downstream
    # the cross-registry checks follow too: the refreshed registry's own, and every registry's
    # comparison with the persons that are about to change
    checks = {k for k in keys if isinstance(k, dg.AssetCheckKey)}
    assert {dg.AssetCheckKey(refreshed, name) for name in ("population_register", "duplicates")} <= checks
    assert checks <= set(CROSS_REGISTRY_CHECKS.resolve_checks(graph))
    mentions, persons = dg.AssetKey(["resolution", "person_mentions"]), dg.AssetKey(["resolution", "persons"])
    assert {mentions, persons} <= requested
    assert dg.AssetKey(["resolution", "animal_records"]) not in requested  # does not read marriages
    assert dg.evaluate_automation_conditions(defs=definitions, instance=instance,
                                             cursor=tick.cursor).total_requested == 0
