"""When the family map is refreshed: two schedules, a landing-zone sensor, declarative automation.

- ``registry_refresh_daily`` runs ``ingest_registries`` every night (02:00 Asia/Almaty);
- ``family_map_weekly`` runs the whole ``family_map`` every Monday (04:00 Asia/Almaty);
- ``landing_zone_sensor`` watches ``<data>/landing/<code>/``: a registry whose extract changed
  (the manifest's ``extracted_at`` and row count, the export's size and modification time) gets
  its own run, keyed by registry and fingerprint so a fingerprint is never ingested twice;
- every asset downstream of the registries carries ``AutomationCondition.eager()`` (set once, in
  ``definitions.py``), evaluated by ``default_automation_condition_sensor``: when registries are
  refreshed, resolution, families, scoring and services follow.

All four are running by default, so ``dagster dev`` (which runs the daemon) behaves like
production. The sensors read the lake from ``LakeResource`` when they tick, never at import.
"""

from __future__ import annotations

import hashlib
import json

import dagster as dg

from family_pipeline.catalog import RegistrySpec, catalog
from family_pipeline.defs.jobs import CROSS_REGISTRY_CHECKS, family_map, ingest_registries
from family_pipeline.defs.registries import GROUP as REGISTRIES
from family_pipeline.defs.registries import check_specs, registry_key
from family_pipeline.defs.resources import LakeResource
from family_pipeline.ingestion.sources import RegistryFileError, export_files
from family_pipeline.lib.lake import Lake

#: cron and time zone of the schedules (agencies deliver their extracts overnight, Almaty time)
TIMEZONE = "Asia/Almaty"
DAILY_REGISTRY_CRON = "0 2 * * *"
WEEKLY_FAMILY_MAP_CRON = "0 4 * * 1"
#: how often the landing zone is looked at
LANDING_INTERVAL_SECONDS = 60
#: assets that follow their dependencies declaratively: everything downstream of the registries
DOWNSTREAM = dg.AssetSelection.all() - dg.AssetSelection.groups(REGISTRIES)
DOWNSTREAM_CONDITION = dg.AutomationCondition.eager()
#: what the automation sensor evaluates: the downstream assets and the cross-registry checks,
#: which re-run when their registry is refreshed or the persons they compare with change
AUTOMATED = DOWNSTREAM | CROSS_REGISTRY_CHECKS

registry_refresh_daily = dg.ScheduleDefinition(
    name="registry_refresh_daily",
    job=ingest_registries,
    cron_schedule=DAILY_REGISTRY_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night: read every registry's latest extract (downstream assets follow by automation).",
)

family_map_weekly = dg.ScheduleDefinition(
    name="family_map_weekly",
    job=family_map,
    cron_schedule=WEEKLY_FAMILY_MAP_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Monday: rebuild the whole family map, whether or not a registry changed.",
)


def _manifest(lake: Lake, code: str) -> dict | None:
    """The agency's manifest of one registry's extract; {} if unreadable, None if absent."""
    path = lake.landing_dir(code) / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def extract_fingerprint(spec: RegistrySpec, lake: Lake) -> str | None:
    """What identifies the extract of one registry in the landing zone, or None if there is none.

    The agency's manifest (extract time, rows) plus the size and modification time of the export
    file, or of each part a big export comes in: a re-sent file with the same manifest still
    counts as new. Database-backed registries are
    known by their manifest alone.
    """
    folder = lake.landing_dir(spec.code)
    parts: dict[str, object] = {}
    manifest = _manifest(lake, spec.code)
    if manifest:
        parts["manifest"] = [manifest.get("extracted_at"), manifest.get("rows")]
    elif manifest is not None:  # unreadable: known by the file itself
        stat = (folder / "manifest.json").stat()
        parts["manifest_file"] = [stat.st_size, stat.st_mtime_ns]
    if spec.source.location != "database":
        try:
            names = export_files(spec, manifest or {}, folder / "manifest.json")
        except RegistryFileError:  # a broken parts list: the manifest's own fingerprint tells
            names = []
        stats = [[name, (folder / name).stat()] for name in names if (folder / name).exists()]
        if names == [spec.file_name] and stats:  # one file
            parts["export"] = [stats[0][1].st_size, stats[0][1].st_mtime_ns]
        elif stats:  # every part a big export comes in
            parts["export"] = [[name, st.st_size, st.st_mtime_ns] for name, st in stats]
    if not parts:
        return None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def landing_fingerprints(lake: Lake) -> dict[str, str]:
    """Fingerprint of every registry of the catalog that has an extract in the landing zone."""
    out = {}
    for spec in catalog().registries:
        fingerprint = extract_fingerprint(spec, lake)
        if fingerprint is not None:
            out[spec.code] = fingerprint
    return out


def _never_ingested(instance: dg.DagsterInstance, lake: Lake, codes: list[str]) -> list[str]:
    """Registries whose current extract (by the manifest's extract time) this instance never ingested."""
    latest = instance.get_latest_materialization_events([registry_key(c) for c in codes])
    stale = []
    for code in codes:
        event = latest.get(registry_key(code))
        materialization = event.asset_materialization if event is not None else None
        ingested = materialization.metadata.get("extracted_at") if materialization is not None else None
        extracted_at = (_manifest(lake, code) or {}).get("extracted_at")
        if ingested is None or (extracted_at is not None and ingested.value != extracted_at):
            stale.append(code)
    return stale


def ingest_request(codes: list[str], run_key: str, tags: dict[str, str]) -> dg.RunRequest:
    """A run of ``ingest_registries`` for some registries with their own checks (not the
    cross-registry ones, which need resolved persons and run with the family map)."""
    specs = [catalog().registry(c) for c in codes]
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[registry_key(s.code) for s in specs],
        asset_check_keys=[c.key for s in specs for c in check_specs(s)],
        tags={"trigger": "landing_zone", **tags},
    )


@dg.sensor(
    name="landing_zone_sensor",
    job=ingest_registries,
    minimum_interval_seconds=LANDING_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run per registry whose extract changed in <data>/landing/<code>/ (manifest, size, "
                "modification time). Without a cursor, registries whose extract this instance never "
                "ingested are caught up in one run.",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    store = lake.lake()
    current = landing_fingerprints(store)
    if context.cursor is None:
        stale = sorted(_never_ingested(context.instance, store, sorted(current)))
        requests = []
        if stale:
            digest = hashlib.sha256(json.dumps({c: current[c] for c in stale}, sort_keys=True).encode()).hexdigest()[:16]
            requests.append(ingest_request(stale, f"catch_up:{digest}", {"registries": str(len(stale))}))
        context.log.info(f"first tick: {len(current)} extracts in the landing zone, {len(stale)} never ingested")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))

    seen = json.loads(context.cursor)
    changed = sorted(code for code, fingerprint in current.items() if seen.get(code) != fingerprint)
    requests = [ingest_request([code], f"{code}:{current[code]}", {"registry": code}) for code in changed]
    if changed:
        context.log.info(f"new extracts: {', '.join(changed)}")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))


#: evaluates the declarative conditions (the name Dagster gives the sensor it would add itself)
automation_condition_sensor = dg.AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",
    target=AUTOMATED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Materializes assets downstream of the registries when their conditions (eager: a "
                "dependency was updated and none is missing or in progress) become true.",
)


@dg.definitions
def automation() -> dg.Definitions:
    return dg.Definitions(
        schedules=[registry_refresh_daily, family_map_weekly],
        sensors=[landing_zone_sensor, automation_condition_sensor],
    )
