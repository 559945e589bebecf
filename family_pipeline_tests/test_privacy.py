"""Privacy scan: materialize the small country with the whole ``family_map`` job, send the owner
alerts, publish the marts, then look for every IIN and every person's name of the data in
everything a Dagster user, a registry owner or an analyst can read:

- the whole event log of every run (each record's JSON: log messages, metadata, check results);
- every asset's materialization metadata and every check's metadata;
- every file under ``DAGSTER_HOME`` (compute logs, the SQLite storage itself);
- the stored alert texts (``dq_alerts``) and the owners' reports they point to;
- every analytics mart of the warehouse.

An IIN is any of the 12-digit numbers of the truth persons or of the mentions as the registries
wrote them (typos included). A name is found when a person's surname and first name occur within
a few words of each other, or a surname or patronymic occurs at all; names are compared
transliterated to Latin and lower-cased, so a Cyrillic, Latin, upper-case or folded spelling is
found alike. None may appear.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster._core.events import DagsterEventType

from family_pipeline.alerts import AlertStore
from family_pipeline.defs.alerts import AlertingResource, dq_owner_alerts
from family_pipeline.defs.warehouse import mart_key
from family_pipeline.lib.alphabet import TRANSLIT_TABLE
from family_pipeline.lib.lake import Lake
from family_pipeline.warehouse import ANALYTICS, mart_catalog
from family_pipeline_tests.conftest import run_on_instance

#: a surname and a first name this many words apart count as one name
NAME_WINDOW = 6
#: single surnames shorter than this are not searched alone (they could be ordinary words)
MIN_SURNAME = 5
_IIN = re.compile(r"(?<!\d)\d{12}(?!\d)")
_WORD = re.compile(r"[^\W\d_]+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _normal(values) -> np.ndarray:
    """Transliterated, lower-cased names (Cyrillic, Latin and folded spellings meet here)."""
    series = pd.Series(values, dtype="str").dropna()
    return series.str.translate(TRANSLIT_TABLE).str.lower().str.replace(r"[^a-z]", "", regex=True).to_numpy(dtype=object)


class Needles:
    """The IINs and names of everyone in the data, ready to be searched for."""

    def __init__(self, persons: pd.DataFrame, mentions: pd.DataFrame | None):
        frames = [persons[["iin", "last_name", "first_name", "patronymic"]]]
        if mentions is not None:
            frames.append(mentions[["iin", "last_name", "first_name", "patronymic"]])
        people = pd.concat(frames, ignore_index=True)
        self.iins = set(people.iin.dropna().astype(str)) - {""}
        both = people.dropna(subset=["last_name", "first_name"])
        last, first = _normal(both.last_name), _normal(both.first_name)
        self.pairs = {(a, b) for a, b in zip(last, first) if a and b} | {(b, a) for a, b in zip(last, first) if a and b}
        self.surnames = {s for s in _normal(people.last_name) if len(s) >= MIN_SURNAME}
        self.patronymics = {s for s in _normal(people.patronymic) if len(s) >= MIN_SURNAME}
        self.name_words = {w for pair in self.pairs for w in pair}

    def find(self, text: str) -> dict[str, list[str]]:
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)  # JSON escapes of Cyrillic
        found = {"iins": sorted(set(_IIN.findall(text)) & self.iins)}
        tokens = _WORD.findall(text)
        distinct = sorted(set(tokens))
        normal = dict(zip(distinct, _normal(distinct)))  # each distinct word normalised once
        present = set(normal.values())
        found["surnames"] = sorted(present & self.surnames)
        found["patronymics"] = sorted(present & self.patronymics)
        names = set()
        if present & self.name_words:
            words = [normal[t] for t in tokens]
            at = [i for i, w in enumerate(words) if w in self.name_words]
            for i in at:
                for j in range(max(0, i - NAME_WINDOW), min(len(words), i + NAME_WINDOW + 1)):
                    if j != i and (words[i], words[j]) in self.pairs:
                        names.add(f"{words[i]} {words[j]}")
        found["full_names"] = sorted(names)
        return {k: v for k, v in found.items() if v}


def _event_log(instance: dg.DagsterInstance) -> str:
    out = []
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            out.append(entry.to_json())
    return "\n".join(out)


def _asset_metadata(instance: dg.DagsterInstance) -> tuple[str, int]:
    """Every materialization's metadata of every asset, and every check evaluation's metadata."""
    out, assets = [], 0
    for key in instance.get_asset_keys():
        records = instance.fetch_materializations(key, limit=1000).records
        assets += bool(records)
        for record in records:
            m = record.asset_materialization
            out.append(json.dumps({k: str(v.value) for k, v in m.metadata.items()}, ensure_ascii=False))
            out.append(m.description or "")
    for run in instance.get_runs():
        for record in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                                                   limit=100_000).records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            out.append(json.dumps({k: str(v.value) for k, v in evaluation.metadata.items()}, ensure_ascii=False))
            out.append(evaluation.description or "")
    return "\n".join(out), assets


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_bytes().decode("utf-8", errors="ignore")
            for p in sorted(root.rglob("*")) if p.is_file()}


def _analytics_marts(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'analytics' ORDER BY 1").fetchall()]
        out = {}
        for table in tables:
            columns = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics' "
                "AND table_name = ?", [table]).fetchall()]
            concat = " || ' ' || ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '')" for c in columns)
            out[table] = "\n".join(r[0] for r in con.execute(f"SELECT {concat} FROM analytics.\"{table}\"").fetchall())
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def materialized(family_map_run):
    """The small country through the whole family map, its owner alerts sent, the marts published."""
    root, home = family_map_run["root"], family_map_run["home"]
    result, instance = family_map_run["result"], family_map_run["instance"]
    alerts_url = f"sqlite:///{root / 'alerts.sqlite'}"
    context = dg.build_sensor_context(instance=instance, resources={
        "alerting": AlertingResource(alerts_db_url=alerts_url)})
    dq_owner_alerts(context)
    # publish the alerts just stored, as the next scheduled run would
    republished, _ = run_on_instance(root, home, "family_map", [mart_key("dq_alerts")])
    return {"root": root, "home": home, "result": result, "republished": republished,
            "instance": instance, "alerts_url": alerts_url}


@pytest.fixture(scope="module")
def needles(materialized, small_country) -> Needles:
    persons = pd.read_parquet(small_country / "truth" / "persons.parquet")
    mentions_path = Lake(materialized["root"]).table("resolution", "person_mentions")
    mentions = pd.read_parquet(mentions_path, columns=["iin", "last_name", "first_name", "patronymic"]) \
        if mentions_path.exists() else None
    return Needles(persons, mentions)


def test_the_scan_finds_what_it_looks_for(needles, small_country):
    """The scanner itself: a leaked IIN, a Latin upper-case name and a JSON-escaped name are found."""
    person = pd.read_parquet(small_country / "truth" / "persons.parquet").iloc[7]
    latin = f"{person.first_name} {person.last_name}".translate(TRANSLIT_TABLE).upper()
    escaped = json.dumps({"last_name": person.last_name, "first_name": person.first_name})
    assert needles.find(f"record {person.iin} failed")["iins"] == [person.iin]
    assert needles.find(f"holder: {latin}.").get("full_names")
    assert needles.find(escaped).get("full_names")
    assert needles.find("run 1234567890123 of gbd_fl: 12 records flagged") == {}


def test_nothing_personal_in_logs_metadata_files_alerts_or_analytics_marts(materialized, needles):
    result, instance = materialized["result"], materialized["instance"]
    materialized_keys = {e.asset_key for e in result.get_asset_materialization_events()}
    # the scan is only worth something if the stages ran: registries, resolution and the marts
    assert dg.AssetKey(["resolution", "persons"]) in materialized_keys
    assert mart_key("persons") in materialized_keys
    assert materialized["republished"].success
    leaks = {}
    log = _event_log(instance)
    assert len(log) > 100_000
    if found := needles.find(log):
        leaks["event log"] = found
    metadata, assets = _asset_metadata(instance)
    assert assets >= 80  # every registry and every stage downstream
    if found := needles.find(metadata):
        leaks["asset and check metadata"] = found
    files = _files(materialized["home"])
    assert any("compute_logs" in name for name in files)
    for name, text in files.items():
        if found := needles.find(text):
            leaks[f"DAGSTER_HOME/{name}"] = found
    # the owners' HTML reports the alerts point to
    reports = _files(Lake(materialized["root"]).reports)
    assert reports
    for name, text in reports.items():
        if found := needles.find(text):
            leaks[f"reports/{name}"] = found
    alerts = AlertStore(materialized["alerts_url"]).rows()
    assert alerts, "the small country has defects, so owners are alerted"
    for row in alerts:
        if found := needles.find(f"{row['subject']}\n{row['body']}"):
            leaks[f"dq_alerts to {row['recipient']}"] = found
    warehouse = Lake(materialized["root"]).warehouse_path
    marts = _analytics_marts(warehouse)
    # every analytics mart was published and scanned
    assert set(marts) == {m.name for m in mart_catalog().enabled() if m.schema_name == ANALYTICS}
    assert len(marts["dq_alerts"]) > 0
    for table, text in marts.items():
        if found := needles.find(text):
            leaks[f"analytics.{table}"] = found
    # positive control: the same scan finds the people in the restricted mart, where they belong
    con = duckdb.connect(str(warehouse), read_only=True)
    restricted = "\n".join(" ".join(map(str, r)) for r in con.execute(
        "SELECT iin, last_name, first_name, patronymic FROM restricted.persons LIMIT 200").fetchall())
    con.close()
    control = needles.find(restricted)
    assert len(control.get("iins", [])) > 150 and len(control.get("full_names", [])) > 150
    assert not leaks, "personal data leaked:\n" + json.dumps(
        {where: {k: v[:5] for k, v in found.items()} for where, found in leaks.items()}, ensure_ascii=False, indent=1)
