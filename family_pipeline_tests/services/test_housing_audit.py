"""The housing-queue rules at their boundaries, on literal frames."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from family_pipeline.catalog.load import CatalogError
from family_pipeline.services.housing_audit import (
    audit_queue,
    audit_summary,
    eligible_outside_queue,
    person_facts,
    queue_entries,
    residential_owners,
)
from family_pipeline.services.rules import HousingRules, housing_rules, load_rules

AS_OF = dt.date(2026, 11, 1)
RULES = housing_rules()


def _persons(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"person_id": np.arange(1, n + 1, dtype=np.int64), "region": ["KZ-35"] * n,
            "birth_date": np.array(["1980-01-01"] * n, dtype="datetime64[D]"),
            "death_date": np.array([None] * n, dtype="datetime64[D]")}
    base.update(cols)
    return pd.DataFrame(base)


def _address(person_ids, region="KZ-35", registration="permanent", since="2000-01-01") -> pd.DataFrame:
    n = len(person_ids)
    return pd.DataFrame({"record_id": [f"A{p}" for p in person_ids], "person_id": person_ids,
                         "region": [region] * n if isinstance(region, str) else region,
                         "registration": [registration] * n if isinstance(registration, str) else registration,
                         "registered_since": [since] * n if isinstance(since, str) else since})


def _facts(persons, address, citizenship=None, foreigners=(), kandas=()):
    population = pd.DataFrame({"person_id": persons.person_id,
                               "citizenship": citizenship or ["KZ"] * len(persons)})
    return person_facts(persons, address, population, np.array(foreigners, np.int64), np.array(kandas, np.int64), AS_OF)


def _entries(person_ids, region="KZ-35"):
    return pd.DataFrame({"person_id": np.asarray(person_ids, np.int64), "queue_region": region,
                         "queue_date": np.datetime64("2020-01-01"), "records": 1, "registries": "akimat_queue_regions"})


def _estate(owner_ids, disposed, kind="apartment"):
    n = len(owner_ids)
    return pd.DataFrame({"person_id": np.asarray(owner_ids, np.int64), "kind": [kind] * n,
                         "acquired_date": ["2010-05-05"] * n, "disposed_date": disposed})


def test_housing_sold_five_years_ago_counts_one_day_earlier_does_not():
    window_start = dt.date(2021, 11, 1)
    estate = _estate([1, 2, 3, 4], [window_start - dt.timedelta(days=1), window_start,
                                    window_start + dt.timedelta(days=1), None])
    owners = residential_owners(estate, None, RULES, AS_OF)
    assert owners.tolist() == [2, 3, 4]


def test_commercial_property_is_not_housing_and_a_notary_sale_in_the_window_is():
    estate = _estate([1], [None], kind="commercial")
    sales = pd.DataFrame({"person_id": [2, 3, 4], "kind": ["house", "house", "commercial"],
                          "deal_date": ["2024-03-01", "2019-03-01", "2024-03-01"]})
    assert residential_owners(estate, sales, RULES, AS_OF).tolist() == [2]


def test_family_ownership_makes_the_applicant_fail_through_spouse_or_child():
    persons = _persons(region=["KZ-35"] * 4)
    facts = _facts(persons, _address([1, 2, 3, 4]))
    members = pd.DataFrame({"person_id": [1, 2, 3, 4], "family_id": [10, 10, 20, 30],
                            "role": ["head", "spouse", "head", "single"]})
    owners = np.array([2], np.int64)  # the spouse of applicant 1 owns a flat
    audit = audit_queue(_entries([1, 3]), facts, members, owners, RULES, AS_OF)
    assert audit.set_index("person_id").owned_housing.to_dict() == {1: True, 3: False}
    # without families only the applicant's own records count
    alone = audit_queue(_entries([1, 3]), facts, None, owners, RULES, AS_OF)
    assert not alone.owned_housing.any()


@pytest.mark.parametrize("region", ["KZ-71", "KZ-75", "KZ-79"])
def test_three_year_registration_boundary_in_the_three_cities(region):
    three_years = dt.date(2023, 11, 1)
    since = [three_years - dt.timedelta(days=1), three_years, three_years + dt.timedelta(days=1)]
    persons = _persons(region=[region] * 3)
    facts = _facts(persons, _address([1, 2, 3], region=region, since=since))
    audit = audit_queue(_entries([1, 2, 3], region), facts, None, np.empty(0, np.int64), RULES, AS_OF).set_index("person_id")
    assert audit.registered_too_briefly.to_dict() == {1: False, 2: False, 3: True}
    assert audit.eligible.to_dict() == {1: True, 2: True, 3: False}
    assert audit.reasons[3] == "registered_too_briefly"


def test_a_recent_registration_is_enough_in_an_oblast():
    persons = _persons(region=["KZ-35"])
    facts = _facts(persons, _address([1], since="2026-10-01"))
    audit = audit_queue(_entries([1], "KZ-35"), facts, None, np.empty(0, np.int64), RULES, AS_OF)
    assert audit.eligible.tolist() == [True]


def test_death_on_the_audit_date_is_dead_the_day_after_is_alive():
    persons = _persons(death_date=np.array(["2026-11-01", "2026-11-02", "2026-10-31"], dtype="datetime64[D]"))
    facts = _facts(persons, _address([1, 2, 3]))
    audit = audit_queue(_entries([1, 2, 3]), facts, None, np.empty(0, np.int64), RULES, AS_OF).set_index("person_id")
    assert audit.dead.to_dict() == {1: True, 2: False, 3: True}


def test_other_region_no_registration_and_citizenship():
    persons = _persons(region=["KZ-35", "KZ-55", "KZ-35", "KZ-35", "KZ-35", "KZ-35"])
    address = _address([1, 2, 3, 5, 6], registration=["permanent", "permanent", "none", "temporary", "permanent"])
    facts = _facts(persons, address, citizenship=["KZ", "KZ", "KZ", "kandas", "KZ", "foreign"], foreigners=[1], kandas=[4])
    audit = audit_queue(_entries([1, 2, 3, 4, 5, 6]), facts, None, np.empty(0, np.int64), RULES, AS_OF).set_index("person_id")
    assert audit.reasons.to_dict() == {
        1: "not_citizen",        # a foreigner's permit overrides an unset citizenship
        2: "other_region",
        3: "no_registration",
        4: "",                   # kandas; no address record is unknown, not "no registration"
        5: "",                   # temporary registration is reported, not failing
        6: "not_citizen",
    }
    assert audit.temporary_registration[5] and not audit.temporary_registration[1]


def test_queue_entries_merge_records_and_resolve_a_region_typo():
    records = pd.DataFrame({
        "registry": ["akimat_queue_regions", "otbasy_housing_queue", "akimat_queue_regions", "otbasy_housing_queue",
                     "akimat_queue_astana"],
        "record_id": ["Q1", "O1", "Q2", "O2", "Q3"],
        "person_id": [1, 1, 2, 2, 3],
        "region": ["KZ-19", "KZ-61", "KZ-35", "KZ-35", "KZ-55"],
        "queue_date": ["2020-01-01", "2019-01-01", "2021-01-01", "2021-01-01", "2022-01-01"],
    })
    residence = pd.Series({1: "KZ-61", 2: "KZ-35", 3: "KZ-71"})
    entries = queue_entries(records, residence, RULES.queue_registry_regions).set_index("person_id")
    assert entries.queue_region.to_dict() == {1: "KZ-61", 2: "KZ-35", 3: "KZ-71"}
    assert entries.records.to_dict() == {1: 2, 2: 2, 3: 1}
    assert entries.registries[1] == "akimat_queue_regions;otbasy_housing_queue"


def test_eligible_outside_queue_one_candidate_per_family():
    persons = _persons(region=["KZ-35"] * 6,
                       birth_date=np.array(["1980-01-01", "1982-01-01", "2015-01-01", "1990-01-01", "1970-01-01",
                                            "1985-01-01"], dtype="datetime64[D]"))
    facts = _facts(persons, _address([1, 2, 3, 4, 5, 6]))
    members = pd.DataFrame({"person_id": [1, 2, 3, 4, 5, 6], "family_id": [10, 10, 10, 20, 30, 40],
                            "role": ["head", "spouse", "child", "single", "head", "single"]})
    outside = eligible_outside_queue(facts, members, np.array([5], np.int64), np.array([6], np.int64), RULES, AS_OF)
    # family 10 (head 1) and single 4; 5 owns a home; 6 is already in a queue
    assert outside.person_id.tolist() == [1, 4]
    assert outside.family_id.tolist() == [10, 20]


def test_summary_counts_by_region_and_reason():
    persons = _persons(region=["KZ-35", "KZ-55"])
    facts = _facts(persons, _address([1, 2]))
    audit = audit_queue(_entries([1, 2], "KZ-35"), facts, None, np.empty(0, np.int64), RULES, AS_OF)
    summary = audit_summary(audit, pd.DataFrame({"person_id": [9], "family_id": [-1], "region": ["KZ-55"]}))
    s = summary.set_index(["region", "reason"]).persons
    assert s[("KZ-35", "in_queue")] == 2 and s[("KZ-35", "other_region")] == 1 and s[("KZ-35", "ineligible")] == 1
    assert s[("KZ-55", "eligible_outside_queue")] == 1


def test_rules_loader_rejects_a_wrong_seed(tmp_path):
    bad = tmp_path / "housing_queue.yaml"
    bad.write_text("queue_registries: [x]\nownership: {lookback_years: -1, residential_kinds: [house]}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="lookback_years"):
        load_rules(bad, HousingRules)
