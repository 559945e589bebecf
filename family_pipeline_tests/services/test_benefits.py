"""Benefit rules at their boundaries on literal frames with the CONTRACT's columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from family_pipeline.catalog import catalog
from family_pipeline.services.benefits import SERVICES, BenefitInputs, asp_poverty_line, assign_benefits
from family_pipeline.services.rules import benefit_rules

AS_OF = dt.date(2026, 11, 1)
RULES = benefit_rules()
MONEY = catalog().money_on(AS_OF)
MEDIAN = {r.iso: float(r.median_income) for r in catalog().regions}
LINE = float(asp_poverty_line(np.array(["KZ-79"], dtype=object), MEDIAN, MONEY, RULES.service("asp"))[0])


def _inputs(incomes, categories, members=3, kids=1, recipients=None, **extra) -> BenefitInputs:
    n = len(incomes)
    fam = np.arange(100, 100 + n, dtype=np.int64)
    heads = np.arange(1, n + 1, dtype=np.int64) * 10
    families = pd.DataFrame({"family_id": fam, "region": "KZ-79", "members": members, "children_1_6": kids,
                             "income_pc_no_asp": np.asarray(incomes, float), "housing_units": 0,
                             "head_person_id": heads})
    people = pd.DataFrame({"person_id": np.concatenate([heads, heads + 1]), "family_id": np.concatenate([fam, fam]),
                           "role": ["head"] * n + ["child"] * n})
    persons = pd.DataFrame({"person_id": people.person_id, "birth_date": np.array(
        ["1985-01-01"] * n + ["2022-01-01"] * n, dtype="datetime64[D]"), "death_date": np.array([None] * (2 * n), dtype="datetime64[D]")})
    return BenefitInputs(families=families, scores=pd.DataFrame({"family_id": fam, "pilot_category": categories}),
                         members=people, persons=persons, median_income=MEDIAN, recipients=recipients or {}, **extra)


def _asp(assignments: pd.DataFrame) -> pd.DataFrame:
    return assignments[assignments.service == "asp"].set_index("family_id")


def test_poverty_line_is_35_percent_of_the_median_but_not_below_70_percent_of_the_minimum():
    # Shymkent: 35% of 115,000 = 40,250 > 70% of 50,851 = 35,596
    assert LINE == pytest.approx(0.35 * MEDIAN["KZ-79"])
    low = asp_poverty_line(np.array(["KZ-79"], dtype=object), {"KZ-79": 50_000.0}, MONEY, RULES.service("asp"))
    assert low[0] == pytest.approx(0.7 * MONEY.subsistence_minimum)


def test_income_exactly_at_the_line_gets_no_asp_one_tenge_below_does():
    out = _asp(assign_benefits(_inputs([LINE, LINE - 1, LINE + 1], [2, 2, 2]), RULES, MONEY, AS_OF))
    assert out.index.tolist() == [101]
    row = out.loc[101]
    assert row.status == "new"
    assert row.amount == pytest.approx(round(1 * 3 + 1.5 * MONEY.mrp * 1))
    assert "below the poverty line" in row.reasons and "pilot category 2" in row.reasons


def test_category_6_gets_nothing_and_its_current_recipients_end():
    heads = {"asp_payments": np.array([20], np.int64)}
    out = assign_benefits(_inputs([1_000, 1_000], [5, 6], recipients=heads), RULES, MONEY, AS_OF)
    assert out[(out.family_id == 101) & (out.status != "ended")].empty
    ended = _asp(out).loc[101]
    assert ended.status == "ended" and np.isnan(ended.amount)
    assert "pilot category 6 receives no assistance" in ended.reasons
    assert _asp(out).loc[100].status == "new"


def test_new_continuing_and_ended_against_the_recipient_registry():
    recipients = {"asp_payments": np.array([10, 30], np.int64)}  # heads of families 100 and 102
    out = _asp(assign_benefits(_inputs([1_000, 1_000, LINE * 3], [1, 1, 4], recipients=recipients), RULES, MONEY, AS_OF))
    assert out.status.to_dict() == {100: "continuing", 101: "new", 102: "ended"}
    assert "at or above the poverty line" in out.loc[102].reasons


def test_the_dead_recipient_ends_with_the_reason():
    inputs = _inputs([1_000], [1], recipients={"asp_payments": np.array([999], np.int64)})
    inputs.persons = pd.concat([inputs.persons, pd.DataFrame({
        "person_id": [999], "birth_date": np.array(["1950-01-01"], dtype="datetime64[D]"),
        "death_date": np.array(["2026-11-01"], dtype="datetime64[D]")})], ignore_index=True)
    out = assign_benefits(inputs, RULES, MONEY, AS_OF)
    dead = out[(out.service == "asp") & (out.person_id == 999)]
    assert dead.status.tolist() == ["ended"] and dead.reasons.tolist() == ["died"]


def test_birth_payment_amounts_and_window():
    births = pd.DataFrame({"child_birth_date": ["2015-01-01", "2017-01-01", "2019-01-01", "2026-06-01",  # 4th child
                                                "2026-10-31", "2025-11-01"],  # first child; 2025-11-01 is outside
                           "mother_id": [10, 10, 10, 10, 20, 30], "father_id": [-1, -1, -1, -1, -1, -1]})
    out = assign_benefits(_inputs([LINE * 5] * 3, [3, 3, 3], births=births), RULES, MONEY, AS_OF)
    bp = out[out.service == "birth_payment"].set_index("person_id")
    assert bp.index.tolist() == [10, 20]
    assert bp.amount[10] == 63 * MONEY.mrp and bp.amount[20] == 38 * MONEY.mrp


def test_shared_dormitory_registry_attributes_each_recipient_to_its_level():
    students = pd.DataFrame({"person_id": [11, 21], "level": ["university", "college"], "full_time": [True, True]})
    out = assign_benefits(_inputs([LINE * 5] * 2, [3, 3], students=students,
                                  recipients={"student_dormitories": np.array([11, 21], np.int64)}), RULES, MONEY, AS_OF)
    dorm = out[out.service.str.startswith("dormitory")]
    assert sorted(zip(dorm.service, dorm.person_id, dorm.status)) == [
        ("dormitory_college", 21, "continuing"), ("dormitory_university", 11, "continuing")]


def test_every_service_of_the_seed_has_a_rule_in_code_and_eleven_pilot_services():
    codes = [s.code for s in RULES.services]
    assert set(codes) == set(SERVICES)
    assert len([c for c in codes if c not in ("asp", "birth_payment")]) == 11
    assert RULES.excluded_pilot_categories == (6,)
    assert all(len(s.legal_basis) > 40 for s in RULES.services)


def test_assignments_are_deterministic():
    inputs = _inputs([1_000, 20_000, LINE * 2], [1, 2, 3])
    a = assign_benefits(inputs, RULES, MONEY, AS_OF)
    b = assign_benefits(inputs, RULES, MONEY, AS_OF)
    pd.testing.assert_frame_equal(a, b)


def test_only_persons_the_population_register_knows_are_assigned():
    inputs = _inputs([1_000, 1_000], [1, 1], recipients={"asp_payments": np.array([20], np.int64)})
    inputs.registered = np.array([10, 11, 21], np.int64)  # the head of family 101 is unknown to ГБД ФЛ
    out = _asp(assign_benefits(inputs, RULES, MONEY, AS_OF))
    assert out.status.to_dict() == {100: "new", 101: "ended"}
    assert out.loc[101].reasons == "not found in the population register"
