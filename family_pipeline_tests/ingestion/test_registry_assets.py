"""The registry assets in Dagster: every registry reconciles, a broken file fails only its own
asset with a message naming the file, and no personal data reaches metadata or logs."""

import json
import re

import pandas as pd
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import registry_key
from family_pipeline.evaluation import evaluate
from family_pipeline_tests.conftest import copy_country, run_on_instance

BROKEN = {
    # registry code -> how its file is broken
    "parquet": "truncated",
    "csv_cp1251": "re-encoded as UTF-8",
    "csv": "deleted",
}


@pytest.fixture(scope="module")
def ingested(small_country, tmp_path_factory):
    """The small country with three registry files broken, ingested by the real job."""
    root = copy_country(small_country, tmp_path_factory.mktemp("ingested"))
    specs = catalog().registries
    pick = {
        "parquet": next(s for s in specs if s.source.format == "parquet" and s.source.location == "landing"),
        "csv_cp1251": next(s for s in specs if s.source.encoding == "cp1251"),
        "csv": next(s for s in specs if s.source.format == "csv" and s.source.encoding == "utf-8"
                    and s.source.location == "landing"),
    }
    for how, spec in pick.items():
        path = root / "landing" / spec.code / spec.file_name
        if how == "parquet":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) * 2 // 3])
        elif how == "csv_cp1251":
            path.write_bytes(path.read_bytes().decode("cp1251").encode("utf-8"))
        else:
            path.unlink()
    result, instance = run_on_instance(root, tmp_path_factory.mktemp("dagster_home"), "ingest_registries")
    events = list(result.all_events)
    logs = instance.all_logs(result.run_id)
    return {"root": root, "result": result, "broken": pick, "events": events, "logs": logs}


def test_broken_files_fail_alone_naming_file_and_problem(ingested):
    result = ingested["result"]
    assert not result.success
    failed = {e.step_key: e for e in ingested["events"] if e.event_type_value == "STEP_FAILURE"}
    broken = ingested["broken"]
    assert {k.split("__")[-1] for k in failed} == {s.code for s in broken.values()}
    problems = {"parquet": "not a readable Parquet file", "csv_cp1251": "declared cp1251 but the file is UTF-8",
                "csv": "file not found"}
    for how, spec in broken.items():
        event = next(e for k, e in failed.items() if k.endswith(spec.code))
        message = event.event_specific_data.error.message
        assert spec.file_name in message and problems[how] in message, message
    materialized = {e.asset_key for e in ingested["events"] if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert materialized == {registry_key(s.code) for s in catalog().registries} - {registry_key(s.code) for s in broken.values()}


def test_every_registry_reconciles_with_the_agency_manifest(ingested):
    root = ingested["root"]
    broken = {s.code for s in ingested["broken"].values()}
    for event in ingested["events"]:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        meta = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
        code = event.asset_key.path[-1]
        manifest = json.loads((root / "landing" / code / "manifest.json").read_text())
        assert meta["rows_read"] == meta["rows_clean"] + meta["rows_quarantined"] == manifest["rows"], code
        assert sum(meta["quarantined_by_reason"].values()) == meta["rows_quarantined"], code
        assert code not in broken


def test_evaluation_catches_every_injected_malformed_row(ingested):
    report = evaluate(ingested["root"])
    section = report["ingestion"]
    assert section["totals"]["registries_failed"] == 3
    ok = [e for e in section["registries"].values() if e["status"] == "ok"]
    assert all(e["reconciles"] for e in ok)
    injected = sum(e["malformed_injected"] for e in ok)
    assert injected > 0
    assert sum(e["malformed_caught"] for e in ok) == injected


def test_no_iin_or_name_in_metadata_or_logs(ingested, small_country):
    persons = pd.read_parquet(small_country / "truth/persons.parquet", columns=["iin", "last_name", "first_name"])
    iins = set(persons.iin)
    names = set(persons.last_name) | set(persons.first_name)
    texts = []
    for record in ingested["logs"]:
        texts.append(record.user_message or "")
        if record.dagster_event is not None:
            data = record.dagster_event.event_specific_data
            materialization = getattr(data, "materialization", None)
            if materialization is not None:
                texts.extend(str(v.value) for v in materialization.metadata.values())
    blob = "\n".join(texts)
    assert not iins & set(re.findall(r"\d{12}", blob))
    words = set(re.findall(r"[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі]{3,}", blob))
    assert not words & names, sorted(words & names)[:5]
