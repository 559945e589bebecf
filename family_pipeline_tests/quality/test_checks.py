"""Data-quality checks: each check family on records made by hand, the blocking behaviour of
ERROR checks, a clean country that fails no ERROR check, and defects caught where injected."""

import datetime as dt

import dagster as dg
import pandas as pd

from family_pipeline.catalog import catalog
from family_pipeline.evaluation import evaluate
from family_pipeline.quality import registry_checks
from family_pipeline.quality.cross import Reference, after_death, duplicates, population_register
from family_pipeline.synth import generate_country
from family_pipeline_tests.conftest import copy_country, run_on_instance
from family_pipeline_tests.ingestion.test_formats import IINS, registry

SPEC = registry({"format": "csv"}, living_only=True)
AS_OF = dt.date(2026, 11, 1)


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"record_id": None, "iin": None, "iin_valid": None, "last_name": None, "birth_date": None, "sex": "M",
            "amount": 1.0, "children": 0, "status": "active", "disabled": False, "region": "KZ-75"}
    return pd.DataFrame([{**base, **r} for r in rows])


def _outcome(outcomes, name):
    return next(o for o in outcomes if o.check == name)


def test_single_registry_checks_flag_the_records_that_fail():
    bad_check = IINS[0][:-1] + str((int(IINS[0][-1]) + 1) % 10)
    clean = _frame([
        {"record_id": "R1", "iin": IINS[0], "iin_valid": True, "last_name": "Ким"},
        {"record_id": "R2", "iin": bad_check, "iin_valid": False, "last_name": "Ли"},
        {"record_id": "R3", "iin": None, "iin_valid": False, "last_name": "Пак"},  # named, no IIN
        {"record_id": "R4", "iin": None, "iin_valid": False, "last_name": None},  # nobody named
    ])
    quarantine = pd.DataFrame({"_row": [5], "record_id": ["R5"], "reason": ["out_of_range"], "column": ["children"],
                               "raw": ["{}"]})
    outcomes = registry_checks(SPEC, clean, quarantine, 5, previous_rows_read=5,
                               extracted_at="2026-10-31T20:00:00", as_of=AS_OF)
    assert [o.check for o in outcomes] == ["completeness", "identifiers", "value_sets", "ranges", "unique_keys",
                                          "quarantine", "row_count_drift", "freshness"]
    identifiers = _outcome(outcomes, "identifiers")
    assert not identifiers.passed and identifiers.severity == "WARN" and identifiers.sample() == ["R2"]
    completeness = _outcome(outcomes, "completeness")
    assert not completeness.passed and completeness.sample() == ["R3"]
    assert _outcome(outcomes, "quarantine").flagged == {"out_of_range": ["R5"]}
    for name in ("value_sets", "ranges", "unique_keys", "row_count_drift", "freshness"):
        assert _outcome(outcomes, name).passed, name


def test_drift_freshness_and_escalation_to_error():
    clean = _frame([{"record_id": f"R{i}", "iin": IINS[0], "iin_valid": True, "last_name": "Ким"} for i in range(30)])
    quarantine = pd.DataFrame({"_row": range(20), "record_id": [f"Q{i}" for i in range(20)],
                               "reason": ["malformed_row"] * 20, "column": [None] * 20, "raw": [""] * 20})
    outcomes = registry_checks(SPEC, clean, quarantine, 50, previous_rows_read=200,
                               extracted_at="2026-10-20T00:00:00", as_of=AS_OF)
    assert _outcome(outcomes, "quarantine").severity == "ERROR"  # 40% of the rows
    drift = _outcome(outcomes, "row_count_drift")
    assert not drift.passed and drift.severity == "ERROR" and drift.details["change"] == 0.75
    fresh = _outcome(outcomes, "freshness")  # a daily registry 12 days late: overdue, not yet unusable
    assert not fresh.passed and fresh.severity == "WARN" and fresh.details["age_days"] == 12
    stale = registry_checks(SPEC, clean, quarantine.iloc[0:0], 30, 30, "2026-08-01T00:00:00", AS_OF)
    assert _outcome(stale, "freshness").severity == "ERROR"


def test_cross_registry_checks():
    persons = pd.DataFrame({
        "person_id": [1, 2, 3], "iin": [IINS[0], IINS[1], None], "iin_disputed": [False, False, False],
        "last_name": ["Әбенова", "Иванов", "Ли"], "first_name": ["Дана", "Пётр", "Ан"], "patronymic": [None] * 3,
        "birth_date": [dt.date(1985, 2, 1), dt.date(2005, 12, 31), dt.date(1990, 1, 1)],
        "region": ["KZ-75", "KZ-11", "KZ-75"], "death_date": [None, dt.date(2026, 1, 1), None], "mentions": [5, 5, 1],
    })
    ref = Reference(persons, pd.Series([IINS[0], IINS[1]]))
    clean = _frame([
        {"record_id": "OK", "amount": 1, "iin": IINS[0], "iin_valid": True, "last_name": "Әбенова", "birth_date": dt.date(1985, 2, 1)},
        {"record_id": "FOLDED", "amount": 2, "iin": IINS[0], "iin_valid": True, "last_name": "Абенова", "birth_date": dt.date(1985, 2, 1)},
        {"record_id": "OTHER_IIN", "amount": 3, "iin": IINS[2], "iin_valid": True, "last_name": "Әбенова", "birth_date": dt.date(1985, 2, 1)},
        {"record_id": "MOVED", "amount": 4, "iin": IINS[0], "iin_valid": True, "last_name": "Әбенова", "region": "KZ-11"},
        {"record_id": "DEAD", "amount": 5, "iin": IINS[1], "iin_valid": True, "last_name": "Иванов", "region": "KZ-11"},
        {"record_id": "COPY", "amount": 5, "iin": IINS[1], "iin_valid": True, "last_name": "Иваноff", "region": "KZ-11"},
    ])
    xref = pd.DataFrame({"registry": "test_reg", "record_id": clean.record_id, "group": "subject",
                         "person_id": [1, 1, 1, 1, 2, 2]})
    spec = SPEC.model_copy(update={"columns": tuple(
        c.model_copy(update={"role": "subject.region"}) if c.name == "region" else c for c in SPEC.columns)})
    pop = population_register(spec, clean, xref, ref)
    assert pop.flagged["name_differs"] == ["COPY", "FOLDED"]
    assert pop.flagged["iin_differs"] == ["OTHER_IIN"] and pop.flagged["iin_unknown"] == ["OTHER_IIN"]
    assert pop.flagged["region_differs"] == ["MOVED"]
    dead = after_death(SPEC, clean, xref, ref, "2026-11-01T00:00:00")
    assert dead.flagged == {"dead_subject": ["DEAD", "COPY"]}
    dup = duplicates(SPEC, clean, xref)
    assert sorted(dup.flagged["duplicate_record"]) == ["COPY", "DEAD"]  # the same person, the same facts


# ------------------------------------------------------------------ on generated countries
def _run(root, home, job="family_map", selection=None):
    return run_on_instance(root, home, job, selection)[0]


def test_a_clean_country_fails_no_error_check(tmp_path):
    root = tmp_path / "clean"
    generate_country(root, persons=1_500, seed=5, defect_scale=0, progress=False)
    result = _run(root, tmp_path / "home")
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) > 900
    errors = [(e.asset_key.path[-1], e.check_name) for e in evaluations
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert errors == []


def test_failed_checks_appear_where_defects_were_injected(small_country, tmp_path):
    root = copy_country(small_country, tmp_path / "country")
    result = _run(root, tmp_path / "home")
    assert result.success
    quality = evaluate(root)["quality"]
    kinds = quality["defect_kinds"]
    caught = {k for k, v in kinds.items() if v.get("records_caught") or v.get("registries_caught")}
    assert caught == set(kinds), set(kinds) - caught  # every kind the generator injects is caught
    for kind in ("out_of_range", "dead_person_appears", "name_swap", "name_translit", "iin_wrong_valid",
                 "virtual_animal", "phantom_animal", "stale_extract"):
        assert kinds[kind]["recall"] >= 0.95, (kind, kinds[kind])
    flagged_clean = sum(quality["flagged_without_injected_defect"].values())
    # copies are flagged with their originals (a duplicate, a virtual cow's first registration);
    # beyond those, flags land on injected defects
    partners = sum(quality["flagged_without_injected_defect"].get(k, 0)
                   for k in ("duplicates:duplicate_record", "livestock:virtual_animal"))
    assert flagged_clean - partners <= 0.02 * quality["flagged_records"]


def test_an_error_check_on_a_scoring_registry_blocks_downstream(small_country, tmp_path):
    root = copy_country(small_country, tmp_path / "country")
    spec = catalog().registry("gbd_fl")
    assert spec.feeds_scoring
    path = root / "landing" / spec.code / spec.file_name
    data = path.read_bytes()
    rows = data.count(b"\n")
    path.write_bytes(data + b"broken\n" * rows)  # half the file unreadable: the registry is unusable
    keys = [dg.AssetKey(["registries", spec.code]), dg.AssetKey(["registries", "zags_marriages"]),
            dg.AssetKey(["resolution", "person_mentions"])]
    result = _run(root, tmp_path / "home", selection=keys)
    assert not result.success
    evaluation = next(e for e in result.get_asset_check_evaluations()
                      if e.asset_key == keys[0] and e.check_name == "quarantine")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys[1] in materialized  # other registries are unaffected
    assert keys[2] not in materialized  # resolution waits for a usable population register
