"""Juror exclusions and flags at their boundaries, and the reproducible order of a long-list."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from family_pipeline.services.jurors import (
    age_in_years,
    exclusion_counts,
    judge_persons,
    juror_longlist,
    order_key,
    order_keys,
)
from family_pipeline.services.rules import juror_rules

AS_OF = dt.date(2026, 11, 1)
RULES = juror_rules()


def _born(years_ago: int, days: int = 0) -> np.datetime64:
    return np.datetime64(AS_OF.replace(year=AS_OF.year - years_ago), "D") + np.timedelta64(days, "D")


def _persons(births, region="KZ-71", deaths=None) -> pd.DataFrame:
    n = len(births)
    return pd.DataFrame({"person_id": np.arange(1, n + 1, dtype=np.int64), "region": [region] * n, "sex": ["F"] * n,
                         "birth_date": np.array(births, dtype="datetime64[D]"),
                         "death_date": np.array(deaths or [None] * n, dtype="datetime64[D]")})


def test_age_in_full_years_counts_the_birthday():
    births = np.array([_born(25), _born(25, 1), _born(25, -1), "NaT"], dtype="datetime64[D]")
    assert age_in_years(births, AS_OF).tolist() == [25, 24, 25, -1]


def test_ages_24_and_25_and_the_flag_at_65_and_66():
    persons = _persons([_born(24), _born(25), _born(25, 1), _born(65), _born(66), _born(66, 1)])
    judged = judge_persons(persons, {}, np.empty(0, np.int64), RULES, AS_OF).set_index("person_id")
    assert judged.age.tolist() == [24, 25, 24, 65, 66, 65]
    assert judged.under_25.tolist() == [True, False, True, False, False, False]
    assert judged.excluded.tolist() == [True, False, True, False, False, False]
    assert judged.over_65.tolist() == [False, False, False, False, True, False]


def test_every_exclusion_keeps_a_person_off_the_list_and_flags_do_not():
    persons = _persons([_born(40)] * 8)
    evidence = {"criminal_record": np.array([1]), "psychiatric": np.array([2]), "judge": np.array([3]),
                "military": np.array([4]), "disability": np.array([6]), "clergy": np.array([7])}
    judged = judge_persons(persons, evidence, np.array([5]), RULES, AS_OF,
                           registered_ids=np.array([1, 2, 3, 4, 5, 6, 7]))
    j = judged.set_index("person_id")
    assert j.reasons.to_dict() == {1: "criminal_record", 2: "psychiatric", 3: "judge", 4: "military",
                                   5: "not_citizen", 6: "", 7: "", 8: "citizenship_unverified"}
    assert j.disability[6] and j.clergy[7] and j.state_language.isna().all()
    counts = exclusion_counts(judged, RULES)
    assert counts["listed"] == 2 and counts["excluded_military"] == 1 and counts["flagged_clergy"] == 1
    longlist = juror_longlist(judged, "KZ-71", None, RULES, AS_OF)
    assert sorted(longlist.person_id.tolist()) == [6, 7]
    assert set(longlist.columns) >= {"place", "person_id", "age_band", "flag_disability", "flag_over_65"}
    assert not {"last_name", "first_name", "iin", "address"} & set(longlist.columns)


def test_the_dead_are_not_judged_death_on_the_date_counts():
    persons = _persons([_born(40)] * 3, deaths=[str(AS_OF), str(AS_OF + dt.timedelta(days=1)), None])
    judged = judge_persons(persons, {}, np.empty(0, np.int64), RULES, AS_OF)
    assert judged.person_id.tolist() == [2, 3]


def test_order_is_reproducible_and_changes_with_year_region_and_seed():
    persons = _persons([_born(30 + k % 40) for k in range(500)])
    judged = judge_persons(persons, {}, np.empty(0, np.int64), RULES, AS_OF)
    first = juror_longlist(judged, "KZ-71", None, RULES, AS_OF)
    again = juror_longlist(judged.sample(frac=1, random_state=3), "KZ-71", None, RULES, AS_OF)
    assert first.person_id.tolist() == again.person_id.tolist()
    assert first.place.tolist() == list(range(1, 501))
    next_year = juror_longlist(judged, "KZ-71", None, RULES, dt.date(2027, 11, 1))
    other_seed = juror_longlist(judged, "KZ-71", None, RULES, AS_OF, seed=RULES.order_seed + 1)
    assert first.person_id.tolist() != next_year.person_id.tolist()
    assert first.person_id.tolist() != other_seed.person_id.tolist()
    assert first.person_id.tolist() != sorted(first.person_id.tolist())


def test_order_keys_depend_on_the_secret(monkeypatch):
    ids = np.arange(1, 100, dtype=np.int64)
    a = order_keys(ids, order_key("KZ-71", 2026, 1))
    monkeypatch.setenv("FAMILY_PIPELINE_PSEUDONYM_KEY", "another-secret")
    b = order_keys(ids, order_key("KZ-71", 2026, 1))
    assert not np.array_equal(a, b)
    assert len(np.unique(a)) == len(ids)
