"""Proactive benefit assignment: targeted social assistance (ASP), the birth payment and the
pilot's 11 services, decided from the families, their features and pilot category, and compared
with who receives each service today.

Each service has one eligibility function over its whole universe (every family, or every
member of a family) returning who meets the condition, the amount where it pays money, and the
plain-words detail either way; the category gate, the comparison with the recipient registries
(new / continuing / ended) and the reasons are common to all. Rules and parameters come from
``seeds/services/benefits.yaml``; money (subsistence minimum, MRP) from ``catalog().money_on``.
All column-wise; no loop over families or persons (the loop runs over the 13 services).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from family_pipeline.catalog.model import MoneyYear
from family_pipeline.families.sets import isin, setdiff, union, unique
from family_pipeline.services.jurors import age_in_years
from family_pipeline.services.rules import BenefitRules, ServiceRule
from family_pipeline.services.sources import lookup_ids

__all__ = ["ASSIGNMENT_COLUMNS", "BenefitInputs", "SERVICES", "asp_poverty_line", "assign_benefits",
           "period_of"]

ASSIGNMENT_COLUMNS = ["service", "unit", "family_id", "person_id", "pilot_category", "status", "amount",
                      "period_start", "period_end", "reasons"]


@dataclass
class BenefitInputs:
    """What the rules read. Person ids are resolution's pseudonymous ``person_id``.

    families: family_id, region, members, children_1_6, income_pc_no_asp, housing_units,
    head_person_id; scores: family_id, pilot_category; members: person_id, family_id, role;
    persons: person_id, birth_date, death_date (datetime64); students: person_id, level
    (university|college), full_time; pupils: person ids at school; disabled: person_id,
    disability_group; births: child_birth_date, mother_id, father_id (-1 unknown);
    recipients: registry code -> person ids receiving now; median_income: region -> KZT/month;
    registered: see below."""

    families: pd.DataFrame
    scores: pd.DataFrame
    members: pd.DataFrame
    persons: pd.DataFrame
    median_income: dict[str, float]
    students: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"person_id": [], "level": [], "full_time": []}))
    pupils: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    disabled: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"person_id": [], "disability_group": []}))
    births: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"child_birth_date": [], "mother_id": [], "father_id": []}))
    recipients: dict[str, np.ndarray] = field(default_factory=dict)
    registered: np.ndarray | None = None
    """persons the population register (ГБД ФЛ) knows; when given, only they are assigned a
    service (a payment needs a verified identity; a golden record no register row backs is most
    often a fragment of someone already counted)"""


@dataclass
class Context:
    inputs: BenefitInputs
    money: MoneyYear
    as_of: dt.date

    def family_universe(self) -> pd.DataFrame:
        f = self.inputs.families
        return pd.DataFrame({"family_id": f.family_id.to_numpy(np.int64),
                             "person_id": f.head_person_id.to_numpy(np.int64)})

    def person_universe(self, rule: ServiceRule, meeting: np.ndarray) -> pd.DataFrame:
        """The family members a person service can concern: those who meet its condition and
        those who receive it now (the rest would only be dropped again)."""
        m = self.inputs.members
        recipients = [np.asarray(self.inputs.recipients.get(c, np.empty(0, np.int64)), np.int64)
                      for c in rule.recipient_registries]
        wanted = unique(np.concatenate([np.asarray(meeting, np.int64), *recipients]))
        m = m[m.person_id.isin(wanted)]
        return pd.DataFrame({"family_id": m.family_id.to_numpy(np.int64), "person_id": m.person_id.to_numpy(np.int64)})

    def ages(self, person_ids: np.ndarray) -> np.ndarray:
        birth = self.inputs.persons.set_index("person_id").birth_date.reindex(person_ids).to_numpy()
        return age_in_years(birth.astype("datetime64[D]"), self.as_of)


def _fmt(values: np.ndarray) -> pd.Series:
    """Whole tenge as text, column-wise."""
    return pd.Series(np.round(np.nan_to_num(values.astype(float))).astype(np.int64)).astype(str)


def asp_poverty_line(regions: np.ndarray, median_income: dict[str, float], money: MoneyYear,
                     rule: ServiceRule) -> np.ndarray:
    """max(share x regional median income, floor share x subsistence minimum), per family."""
    p = rule.parameters
    median = pd.Series(median_income, dtype=float).reindex(regions).to_numpy()
    return np.maximum(float(p["median_income_share"]) * median,
                      float(p["subsistence_floor_share"]) * money.subsistence_minimum)


# ------------------------------------------------------------------ eligibility, one per service
def _asp(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    f = ctx.inputs.families
    out = ctx.family_universe()
    line = asp_poverty_line(f.region.to_numpy(dtype=object), ctx.inputs.median_income, ctx.money, rule)
    income = f.income_pc_no_asp.to_numpy(float)
    members = f.members.to_numpy(float)
    kids = f.children_1_6.to_numpy(float)
    out["meets"] = income < line  # exactly at the line is not below it
    supplement = float(rule.parameters["child_supplement_mrp"]) * ctx.money.mrp * kids
    out["amount"] = np.where(out.meets, np.round((line - income) * members + supplement, 0), np.nan)
    below = np.where(out.meets, "below", "at or above")
    out["detail"] = ("per-capita income " + _fmt(income) + " " + below + " the poverty line " + _fmt(line)
                     + "; " + pd.Series(members.astype(int)).astype(str) + " members, "
                     + pd.Series(kids.astype(int)).astype(str) + " children aged 1-6").to_numpy()
    return out


def _birth_payment(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    p = rule.parameters
    b = ctx.inputs.births.copy()
    b["child_birth_date"] = pd.to_datetime(b.child_birth_date, errors="coerce").to_numpy().astype("datetime64[D]")
    mother = b.mother_id.fillna(-1).to_numpy(np.int64)
    father = b.father_id.fillna(-1).to_numpy(np.int64)
    b["parent"] = np.where(mother >= 0, mother, father)
    b = b[(b.parent >= 0) & ~np.isnat(b.child_birth_date.to_numpy())].sort_values(["parent", "child_birth_date"], kind="stable")
    b["order"] = b.groupby("parent").cumcount().to_numpy() + 1
    end = np.datetime64(ctx.as_of, "D")
    start = np.datetime64(pd.Timestamp(ctx.as_of) - pd.DateOffset(months=int(p["lookback_months"])), "D")
    born = b.child_birth_date.to_numpy()
    recent = b[(born > start) & (born <= end)]
    mrp = np.where(recent.order.to_numpy() >= int(p["fourth_child_order"]), float(p["amount_mrp_fourth_child"]),
                   float(p["amount_mrp"]))
    per_parent = (recent.assign(amount=mrp * ctx.money.mrp).groupby("parent")
                  .agg(amount=("amount", "sum"), children=("order", "size"), last_order=("order", "max")))
    out = ctx.person_universe(rule, per_parent.index.to_numpy(np.int64))
    got = per_parent.reindex(out.person_id)
    out["meets"] = got.amount.notna().to_numpy()
    out["amount"] = got.amount.to_numpy()
    children = got.children.fillna(0).astype(int).astype(str).to_numpy(dtype=object)
    order = got.last_order.fillna(0).astype(int).astype(str).to_numpy(dtype=object)
    out["detail"] = np.where(out.meets, children + " child(ren) born in the last " + str(int(p["lookback_months"]))
                             + " months (birth order " + order + ")", "no child born in the last "
                             + str(int(p["lookback_months"])) + " months")
    return out


def _students(ctx: Context, level: str) -> np.ndarray:
    s = ctx.inputs.students
    return s.person_id[(s.level == level) & s.full_time.astype(bool)].to_numpy(np.int64)


def _membership(ctx: Context, rule: ServiceRule, ids: np.ndarray, yes: str, no: str,
                amount: float | None = None) -> pd.DataFrame:
    out = ctx.person_universe(rule, ids)
    out["meets"] = isin(out.person_id.to_numpy(), ids)
    out["amount"] = np.where(out.meets, amount, np.nan) if amount is not None else np.nan
    out["detail"] = np.where(out.meets, yes, no)
    return out


def _university(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    return _membership(ctx, rule, _students(ctx, "university"), "full-time university student", "not a full-time university student")


def _college(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    return _membership(ctx, rule, _students(ctx, "college"), "full-time college student", "not a full-time college student")


def _student_aid(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    ids = union(_students(ctx, "university"), _students(ctx, "college"))
    return _membership(ctx, rule, ids, "full-time university or college student", "not a full-time student",
                       float(rule.parameters["amount_mrp"]) * ctx.money.mrp)


def _pupils(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    return _membership(ctx, rule, np.asarray(ctx.inputs.pupils, np.int64), "school pupil", "not a school pupil")


def _home_schooling(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    d = ctx.inputs.disabled
    ids = d.person_id.to_numpy(np.int64)
    ids = ids[(ctx.ages(ids) >= 0) & (ctx.ages(ids) <= int(rule.parameters["age_max"]))]
    return _membership(ctx, rule, ids, "disabled child under " + str(int(rule.parameters["age_max"]) + 1),
                       "not a disabled child", float(rule.parameters["amount_mrp"]) * ctx.money.mrp)


def _no_housing(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    out = ctx.family_universe()
    units = ctx.inputs.families.housing_units.fillna(0).to_numpy(np.int64)
    out["meets"] = units == 0
    out["amount"] = np.nan
    out["detail"] = np.where(out.meets, "no dwelling of its own", pd.Series(units).astype(str).to_numpy(dtype=object)
                             + " dwelling(s) owned")
    return out


def _any_family(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    out = ctx.family_universe()
    out["meets"] = True
    out["amount"] = np.nan
    out["detail"] = "family in the service's categories"
    return out


def _athlete(ctx: Context, rule: ServiceRule) -> pd.DataFrame:
    ids = np.concatenate([ctx.inputs.recipients.get(code, np.empty(0, np.int64)) for code in rule.recipient_registries])
    return _membership(ctx, rule, ids, "awarded the lifelong payment", "not on the award list",
                       float(rule.parameters["amount_mrp"]) * ctx.money.mrp)


#: service code -> eligibility function (the seed's codes must match these)
SERVICES: dict[str, Callable[[Context, ServiceRule], pd.DataFrame]] = {
    "asp": _asp,
    "birth_payment": _birth_payment,
    "dormitory_university": _university,
    "free_meals_university": _university,
    "home_schooling_reimbursement": _home_schooling,
    "school_meals": _pupils,
    "summer_camps": _pupils,
    "student_aid": _student_aid,
    "dormitory_college": _college,
    "free_meals_college": _college,
    "rent_subsidy": _no_housing,
    "housing_assistance": _any_family,
    "athlete_lifelong": _athlete,
}


def period_of(as_of: dt.date, months: int) -> tuple[np.datetime64, np.datetime64]:
    start = pd.Timestamp(as_of.replace(day=1))
    end = start + pd.DateOffset(months=months) - pd.Timedelta(days=1)
    return np.datetime64(start.date(), "D"), np.datetime64(end.date(), "D")


def _receiving(ctx: Context, rule: ServiceRule, universe: pd.DataFrame, claimed: np.ndarray) -> np.ndarray:
    """Whether each universe row receives the service now: the person is on a recipient registry
    (for a family service: anyone of the family is). ``claimed``: recipients of a shared registry
    that another service meets (a university student in the dormitory registry is the university
    dormitory's recipient, not the college's)."""
    if not rule.recipient_registries:
        return np.zeros(len(universe), bool)
    ids = unique(np.concatenate([np.asarray(ctx.inputs.recipients.get(c, np.empty(0, np.int64)), np.int64)
                                    for c in rule.recipient_registries]))
    ids = ids[~isin(ids, claimed)]
    if rule.unit == "person":
        return isin(universe.person_id.to_numpy(), ids)
    m = ctx.inputs.members.drop_duplicates("person_id")
    fam = lookup_ids(ids, m.person_id.to_numpy(np.int64), m.family_id.to_numpy(np.int64))
    return isin(universe.family_id.to_numpy(), fam[fam >= 0])


def _claims(ctx: Context, rules: BenefitRules, universes: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """Per service: the recipients of its registries that belong to another service sharing the
    registry — those that meet the other service's condition but not this one's. A recipient who
    meets none stays with every sharing service (and ends there)."""
    out = {}
    for rule in rules.services:
        claimed = []
        for other in rules.services:
            if other.code == rule.code or not set(other.recipient_registries) & set(rule.recipient_registries):
                continue
            u_other, u_self = universes[other.code], universes[rule.code]
            meets_other = u_other.person_id.to_numpy()[u_other.meets.to_numpy(bool)]
            meets_self = u_self.person_id.to_numpy()[u_self.meets.to_numpy(bool)]
            claimed.append(setdiff(meets_other, meets_self))
        out[rule.code] = unique(np.concatenate(claimed)) if claimed else np.empty(0, np.int64)
    return out


def _recipients_outside(ctx: Context, rule: ServiceRule) -> np.ndarray:
    """Recipients on a registry who are in no living family (dead, or never placed)."""
    ids = unique(np.concatenate([np.asarray(ctx.inputs.recipients.get(c, np.empty(0, np.int64)), np.int64)
                                    for c in rule.recipient_registries] or [np.empty(0, np.int64)]))
    return ids[~isin(ids, ctx.inputs.members.person_id.to_numpy(np.int64))]


def assign_benefits(inputs: BenefitInputs, rules: BenefitRules, money: MoneyYear, as_of: dt.date) -> pd.DataFrame:
    """Every assignment: one row per (service, family or person) that is eligible now or receives
    the service now. ``status``: new (eligible, not receiving), continuing (both), ended
    (receiving, not eligible — the current recipients who are not eligible, with why)."""
    unknown = {s.code for s in rules.services} - set(SERVICES)
    if unknown:
        raise ValueError(f"services without an eligibility rule in code: {sorted(unknown)}")
    ctx = Context(inputs, money, as_of)
    start, end = period_of(as_of, rules.period_months)
    category = inputs.scores.drop_duplicates("family_id").set_index("family_id").pilot_category
    universes = {rule.code: SERVICES[rule.code](ctx, rule) for rule in rules.services}
    claims = _claims(ctx, rules, universes)
    reported: set[str] = set()  # a registry's recipients outside any family end once, under its first service
    frames = []
    for rule in rules.services:
        u = universes[rule.code]
        cat = category.reindex(u.family_id.to_numpy()).to_numpy(dtype=float)
        excluded = isin(cat, rules.excluded_pilot_categories)
        gated = np.isnan(cat) | (isin(cat, rule.category_gate) if rule.category_gate else True)
        allowed = ~excluded & gated
        verified = (isin(u.person_id.to_numpy(), inputs.registered) if inputs.registered is not None
                    else np.ones(len(u), bool))
        eligible = u.meets.to_numpy(bool) & allowed & verified
        receiving = _receiving(ctx, rule, u, claims[rule.code])
        keep = eligible | receiving
        u = u[keep].reset_index(drop=True)
        eligible, receiving, cat = eligible[keep], receiving[keep], cat[keep]
        excluded, allowed, verified, meets = excluded[keep], allowed[keep], verified[keep], u.meets.to_numpy(bool)
        cat_text = pd.Series(np.nan_to_num(cat, nan=0).astype(int)).astype(str).to_numpy(dtype=object)
        why_not = np.where(~meets, u.detail.to_numpy(dtype=object),
                           np.where(excluded, "pilot category " + cat_text + " receives no assistance",
                                    np.where(~allowed, "pilot category " + cat_text + " is outside the service's categories",
                                             "not found in the population register")))
        reasons = np.where(eligible, u.detail.to_numpy(dtype=object) + "; pilot category " + cat_text, why_not)
        status = np.where(eligible & receiving, "continuing", np.where(eligible, "new", "ended"))
        frame = pd.DataFrame({
            "service": rule.code, "unit": rule.unit, "family_id": u.family_id.to_numpy(np.int64),
            "person_id": u.person_id.to_numpy(np.int64),
            "pilot_category": pd.array(np.where(np.isnan(cat), pd.NA, cat), dtype="Int64"),
            "status": status, "amount": np.where(eligible, u.amount.to_numpy(float), np.nan),
            "period_start": start, "period_end": end, "reasons": reasons})
        outside = _recipients_outside(ctx, rule) if not set(rule.recipient_registries) & reported else np.empty(0, np.int64)
        reported |= set(rule.recipient_registries)
        if len(outside):
            dead = inputs.persons.set_index("person_id").death_date.reindex(outside).to_numpy().astype("datetime64[D]")
            died = ~np.isnat(dead) & (dead <= np.datetime64(as_of, "D"))
            frame = pd.concat([frame, pd.DataFrame({
                "service": rule.code, "unit": rule.unit, "family_id": np.full(len(outside), -1, np.int64),
                "person_id": outside, "pilot_category": pd.array([pd.NA] * len(outside), dtype="Int64"),
                "status": "ended", "amount": np.nan, "period_start": start, "period_end": end,
                "reasons": np.where(died, "died", "in no living family known to the family map")})], ignore_index=True)
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)[ASSIGNMENT_COLUMNS]
    return out.sort_values(["service", "family_id", "person_id"], kind="stable").reset_index(drop=True)


def assignment_summary(assignments: pd.DataFrame) -> pd.DataFrame:
    """service, status, assignments, amount (sum, KZT for the period)."""
    return (assignments.groupby(["service", "status"], sort=True)
            .agg(assignments=("person_id", "size"), amount=("amount", "sum")).reset_index())


def benefit_inputs_from_lake(lake, rules: BenefitRules, families: pd.DataFrame | None = None,
                             scores: pd.DataFrame | None = None) -> BenefitInputs:
    """Read families, features, scores, persons and the registries the rules use.
    ``families``/``scores`` may be given (e.g. literal frames with the contract's columns)."""
    from family_pipeline.catalog import catalog
    from family_pipeline.services.sources import family_members, golden_persons, registry_persons

    if families is None:
        features = lake.read("families", "family_features", columns=[
            "family_id", "region", "members", "children_1_6", "income_pc_no_asp", "housing_units"]).to_pandas()
        heads = lake.read("families", "families", columns=["family_id", "head_person_id"]).to_pandas()
        families = features.merge(heads, on="family_id", how="left")
    if scores is None:
        scores = lake.read("scoring", "family_scores", columns=["family_id", "pilot_category"]).to_pandas()
    members = family_members(lake)
    students = pd.concat([
        registry_persons(lake, "higher_education_platform", ["study_form"]).assign(level="university"),
        registry_persons(lake, "tvet_colleges", ["study_form"]).assign(level="college")], ignore_index=True)
    students["full_time"] = students.study_form.fillna("full_time").eq("full_time")
    births = registry_persons(lake, "zags_births", ["child_birth_date"], group="child").drop_duplicates("record_id")
    for parent in ("mother", "father"):
        rows = registry_persons(lake, "zags_births", [], group=parent).drop_duplicates("record_id")
        births[f"{parent}_id"] = lookup_ids(births.record_id.to_numpy(dtype=object), rows.record_id.to_numpy(dtype=object),
                                            rows.person_id.to_numpy(np.int64))
    codes = sorted({c for s in rules.services for c in s.recipient_registries})
    recipients = {c: unique(registry_persons(lake, c, []).person_id.to_numpy(np.int64)) for c in codes}
    return BenefitInputs(
        families=families, scores=scores,
        members=members if members is not None else pd.DataFrame({"person_id": [], "family_id": [], "role": []}),
        persons=golden_persons(lake),
        median_income={r.iso: float(r.median_income) for r in catalog().regions},
        students=students[["person_id", "level", "full_time"]],
        pupils=unique(registry_persons(lake, "nobd_schools", []).person_id.to_numpy(np.int64)),
        disabled=registry_persons(lake, "cbdi_disability", ["disability_group"])[["person_id", "disability_group"]],
        births=births[["child_birth_date", "mother_id", "father_id"]],
        recipients=recipients,
        registered=unique(registry_persons(lake, "gbd_fl", []).person_id.to_numpy(np.int64)))
