"""Work, income, health, justice, holdings, payments and the housing queue; then each family's
latent welfare, which the scoring stage is later measured against.

Every draw depends on the family's latent welfare ``z`` so that the registries agree with each
other the way real ones do: richer families own more, borrow without arrears, get no ASP.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from family_pipeline.catalog import Catalog
from family_pipeline.lib.identifiers import make_bins
from family_pipeline.synth.population import (
    OCCUPATION_P,
    OCCUPATIONS,
    Population,
    _days,
    _to_date,
)
from family_pipeline.synth.random import Streams
from family_pipeline.synth.shards import Shard

SINGLE = Shard()

NAT = np.iinfo(np.int64).min
SPECIES = np.array(["cattle", "sheep", "goat", "horse", "camel"])
#: monthly produce value of one head (consumption the income registries do not see), KZT
PRODUCE_PER_HEAD = {"cattle": 9000, "sheep": 1500, "goat": 1200, "horse": 6000, "camel": 8000}
CAMEL_REGIONS = {"KZ-47", "KZ-43", "KZ-61", "KZ-23"}
BANKS = 12


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _plates(i: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Kazakh plates: three digits, three letters, the region's two-digit code (e.g. 123ABC02)."""
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    j = i // 1000
    code = np.char.replace(region.astype(str), "KZ-", "")
    body = np.char.add(np.char.zfill((i % 1000).astype(str), 3), letters[j % 26])
    body = np.char.add(np.char.add(body, letters[(j // 26) % 26]), letters[(j // 676) % 26])
    return np.char.add(body, code)


def make_employers(rng: np.random.Generator, n_emp: int, snapshot: dt.date) -> tuple[pd.DataFrame, np.ndarray]:
    """Legal entities whose BINs appear on labour contracts and pension contributions, with
    their (Pareto) share of the workforce."""
    reg_days = _days(snapshot) - rng.integers(200, 9000, n_emp)
    employers = pd.DataFrame({
        "bin": make_bins(_to_date(reg_days), np.full(n_emp, 4), np.arange(n_emp) * 3 + 7),
        "registered_date": _to_date(reg_days),
    })
    weights = rng.pareto(1.2, n_emp) + 0.1
    return employers, weights


def employer_count(persons_with_deceased: int) -> int:
    return max(50, persons_with_deceased // 150)


def add_person_attributes(pop: Population, catalog: Catalog, snapshot: dt.date, streams: Streams,
                          shared_employers: tuple[pd.DataFrame, np.ndarray] | None = None) -> pd.DataFrame:
    """Work, education, health and justice attributes on ``pop.persons`` (returns employers).

    A sharded country passes the country's employers (``make_employers``); each shard then
    only draws which of them its workers work for."""
    rng = streams.get("attributes")
    P = pop.persons
    n = len(P)
    fam = P.family_id.to_numpy()
    z = np.where(fam >= 0, pop.welfare_z[np.maximum(fam, 0)], 0.0)
    age = P.age.to_numpy()
    male = (P.sex == "M").to_numpy()
    alive = P.alive.to_numpy()
    role = P.family_role.to_numpy()
    village = (P.settlement_type == "village").to_numpy()
    snap = _days(snapshot)

    fam_cit = rng.choice(np.array(["KZ", "kandas", "foreign"]), size=len(pop.families), p=[0.965, 0.025, 0.01])
    P["citizenship"] = np.where(fam >= 0, fam_cit[np.maximum(fam, 0)], "KZ")

    pension_age = np.where(male, 63, 61)
    pensioner = age >= pension_age
    student = np.full(n, "none", dtype=object)
    student[(age >= 6) & (age <= 17)] = "school"
    older_child = (role == "child") & (age >= 18)
    uni = rng.random(n) < 0.6
    student[older_child] = np.where(uni[older_child], "university", "college")
    young_single = (role == "single") & (age >= 18) & (age <= 22) & (rng.random(n) < 0.35)
    student[young_single] = np.where(uni[young_single], "university", "college")
    P["student"] = student

    working_age = (age >= 18) & ~pensioner
    p_emp = np.where(village, 0.66, 0.78) + 0.08 * np.tanh(z)
    p_emp = np.where(np.isin(student, ["university", "college"]), 0.1, p_emp)
    employed = working_age & (rng.random(n) < p_emp) & alive
    employed |= pensioner & (age < 70) & alive & (rng.random(n) < 0.15)  # working pensioners
    P["employed"] = employed
    P["unemployed"] = working_age & ~employed & (student == "none") & (rng.random(n) < 0.12) & alive
    P["pensioner"] = pensioner

    region_median = pd.Series({r.iso: r.median_income for r in catalog.regions})
    median = region_median.reindex(P.region).to_numpy(dtype=float)
    wage = median * 1.6 * np.exp(0.4 * z + 0.3 * rng.normal(0, 1, n))
    P["wage"] = np.where(employed, np.round(wage, -2), 0.0)
    pension = 75_000 + 30_000 * _sigmoid(z) + rng.normal(0, 8_000, n)
    P["pension"] = np.where(pensioner & alive, np.round(np.maximum(pension, 60_000), -1), 0.0)

    edu = rng.choice(np.array(["secondary", "vocational", "higher"]), size=n, p=[0.3, 0.4, 0.3])
    edu = np.where((z > 0.8) & (rng.random(n) < 0.4), "higher", edu)
    P["education"] = np.where(age < 18, "none", edu)

    p_dis = 0.008 + 0.0009 * age
    disabled = rng.random(n) < p_dis
    group = rng.choice(np.array([1, 2, 3]), size=n, p=[0.15, 0.45, 0.40])
    P["disability_group"] = np.where(disabled, group, 0).astype(np.int64)
    adult = age >= 18
    P["criminal_record"] = adult & (rng.random(n) < np.where(male, 0.03, 0.005))
    P["psychiatric"] = rng.random(n) < 0.01
    P["narcological"] = adult & (rng.random(n) < np.where(male, 0.015, 0.003))
    P["incapable"] = P.psychiatric.to_numpy() & (rng.random(n) < 0.15)

    occ = rng.choice(len(OCCUPATIONS), size=n, p=OCCUPATION_P)
    occ_names = OCCUPATIONS[occ].astype(object)
    occ_names = np.where((occ_names == "farmer") & ~village, "worker", occ_names)
    P["occupation"] = np.where(employed, occ_names, "none")
    kz = (P.ethnicity == "kazakh").to_numpy()
    P["state_language"] = rng.random(n) < np.where(kz, 0.97, 0.3)
    P["health_insured"] = employed | (age < 18) | pensioner | disabled | (rng.random(n) < 0.8)
    P["clinic_id"] = (P.settlement_id.to_numpy() * 10 + rng.integers(0, 3, n)).astype(np.int64)

    reg = rng.choice(np.array(["permanent", "temporary", "none"]), size=n, p=[0.95, 0.03, 0.02])
    P["registration"] = reg
    years_here = np.minimum(age, rng.integers(0, 31, n))
    since = np.maximum(P.birth_date.to_numpy().astype("datetime64[D]").astype(np.int64), snap - years_here * 365 - rng.integers(0, 365, n))
    P["registered_since"] = _to_date(since)

    # employers: legal entities whose BINs appear on labour contracts and pension contributions
    if shared_employers is None:
        erng = streams.get("employers")
        employers, weights = make_employers(erng, employer_count(n), snapshot)
    else:
        erng = streams.get("employers:assign")
        employers, weights = shared_employers
    emp_idx = erng.choice(len(employers), size=n, p=weights / weights.sum())
    P["employer_bin"] = np.where(employed, employers.bin.to_numpy()[emp_idx], None)
    return employers


def build_holdings(pop: Population, catalog: Catalog, snapshot: dt.date, streams: Streams,
                   employers: pd.DataFrame, defect_scale: float = 1.0,
                   shard: Shard = SINGLE) -> dict[str, pd.DataFrame]:
    """Holdings of the shard's families (local ids; registry numbers interleaved across shards)."""
    P, F = pop.persons, pop.families
    num = shard.serial
    snap = _days(snapshot)
    n_fam = len(F)
    z = pop.welfare_z
    head = F.head_id.to_numpy()
    village = (F.settlement_type == "village").to_numpy()
    out: dict[str, pd.DataFrame] = {}

    # ------------------------------------------------------------ real estate
    rng = streams.get("real_estate")
    owns = rng.random(n_fam) < np.where(village, 0.85, 0.55 + 0.25 * _sigmoid(z))
    second = owns & (z > 1.0) & (rng.random(n_fam) < 0.6)
    third = second & (z > 1.8) & (rng.random(n_fam) < 0.5)
    sold = ~owns & (rng.random(n_fam) < 0.06)  # sold their home within the last five years
    fam_rows = np.concatenate([np.flatnonzero(owns), np.flatnonzero(second), np.flatnonzero(third), np.flatnonzero(sold)])
    k = len(fam_rows)
    is_sold = np.zeros(k, bool)
    is_sold[-sold.sum():] = sold.sum() > 0
    city = ~village[fam_rows]
    kind = np.where(city & (rng.random(k) < 0.8), "apartment", "house")
    kind = np.where((np.arange(k) >= owns.sum()) & (np.arange(k) < owns.sum() + second.sum()) & (rng.random(k) < 0.3), "commercial", kind)
    members = F.members.to_numpy()[fam_rows]
    area = np.round(np.clip(18 * members + rng.normal(25, 15, k) + 20 * np.maximum(z[fam_rows], 0), 14, 900), 1)
    acquired = snap - rng.integers(400, 12000, k)
    disposed = np.where(is_sold, snap - rng.integers(30, 5 * 365 - 10, k), NAT)
    acquired = np.where(is_sold, np.minimum(acquired, disposed - 365), acquired)
    out["real_estate"] = pd.DataFrame({
        "property_id": np.arange(k, dtype=np.int64),
        "owner_id": head[fam_rows],
        "region": F.region.to_numpy()[fam_rows],
        "settlement_id": F.settlement_id.to_numpy()[fam_rows],
        "kind": kind,
        "area_m2": area,
        "acquired_date": _to_date(acquired),
        "disposed_date": _to_date(disposed),
        "cadastral_no": np.char.add("20-3", np.char.zfill(num(np.arange(k)).astype(str), 9)),
        "value": np.round(area * np.where(city, 450_000, 160_000) * np.exp(rng.normal(0, 0.2, k)), -3),
    })

    # ------------------------------------------------------------ land plots
    rng = streams.get("land")
    farmer_head = (P.occupation.to_numpy()[head] == "farmer")
    household = village & (rng.random(n_fam) < 0.6)
    agri = village & farmer_head
    dacha = ~village & (rng.random(n_fam) < 0.08)
    fam_rows = np.concatenate([np.flatnonzero(household), np.flatnonzero(agri), np.flatnonzero(dacha)])
    purpose = np.concatenate([np.full(household.sum(), "household"), np.full(agri.sum(), "agricultural"), np.full(dacha.sum(), "household")])
    k = len(fam_rows)
    area_ha = np.where(purpose == "agricultural", np.round(rng.uniform(5, 400, k), 2), np.round(rng.uniform(0.04, 0.3, k), 3))
    out["land_plots"] = pd.DataFrame({
        "plot_id": np.arange(k, dtype=np.int64),
        "owner_id": head[fam_rows],
        "region": F.region.to_numpy()[fam_rows],
        "settlement_id": F.settlement_id.to_numpy()[fam_rows],
        "area_ha": area_ha,
        "purpose": purpose,
        "cadastral_no": np.char.add("03-0", np.char.zfill(num(np.arange(k)).astype(str), 9)),
    })

    # ------------------------------------------------------------ vehicles
    rng = streams.get("vehicles")
    one = rng.random(n_fam) < 0.22 + 0.35 * _sigmoid(z)
    two = one & (z > 1.0) & (rng.random(n_fam) < 0.5)
    fam_rows = np.concatenate([np.flatnonzero(one), np.flatnonzero(two)])
    k = len(fam_rows)
    year = np.clip(2026 - rng.gamma(2.0, 5.0, k) + 2 * z[fam_rows], 1985, 2026).astype(np.int64)
    makes = np.array(["Toyota", "Lada", "Hyundai", "Chevrolet", "Kia", "Volkswagen", "Daewoo", "Mercedes-Benz", "Audi", "Nissan"])
    out["vehicles"] = pd.DataFrame({
        "vehicle_id": np.arange(k, dtype=np.int64),
        "owner_id": head[fam_rows],
        "plate": _plates(num(np.arange(k)), F.region.to_numpy()[fam_rows]),
        "vin": np.char.add("XW8", np.char.zfill(num(np.arange(k)).astype(str), 14)),
        "make": rng.choice(makes, size=k),
        "model_year": year,
        "registered_date": _to_date(snap - rng.integers(10, 7000, k)),
        "value": np.round(np.maximum(600_000, 9_000_000 * np.exp(-0.12 * (2026 - year)) * np.exp(rng.normal(0, 0.3, k))), -3),
    })

    # ------------------------------------------------------------ businesses
    rng = streams.get("businesses")
    ip = rng.random(n_fam) < 0.05 + 0.12 * _sigmoid(z - 0.5)
    llp = (z > 1.3) & (rng.random(n_fam) < 0.3)
    fam_rows = np.concatenate([np.flatnonzero(ip), np.flatnonzero(llp)])
    k = len(fam_rows)
    bkind = np.concatenate([np.full(ip.sum(), "sole_proprietor"), np.full(llp.sum(), "llp")])
    reg_days = snap - rng.integers(60, 8000, k)
    bins = make_bins(_to_date(reg_days), np.where(bkind == "llp", 4, 6), 50_000 + num(np.arange(k)) * 3)
    status = np.where(rng.random(k) < 0.9, "active", "closed")
    revenue = np.where(status == "active", np.round(np.exp(rng.normal(15.2, 1.0, k) + 0.5 * z[fam_rows]), -3), 0.0)
    out["businesses"] = pd.DataFrame({
        "business_id": np.arange(k, dtype=np.int64),
        "bin": bins,
        "owner_id": head[fam_rows],
        "kind": bkind,
        "registered_date": _to_date(reg_days),
        "name": np.char.add(np.where(bkind == "llp", "ТОО «Компания-", "ИП «Бизнес-"), np.char.add(num(np.arange(k)).astype(str), "»")),
        "status": status,
        "revenue": revenue,
    })

    # ------------------------------------------------------------ livestock
    rng = streams.get("animals")
    herd = village & (rng.random(n_fam) < 0.45) | (village & farmer_head)
    hf = np.flatnonzero(herd)
    camel_ok = np.isin(F.region.to_numpy()[hf], list(CAMEL_REGIONS))
    counts = np.stack([
        rng.poisson(2.5, len(hf)) + farmer_head[hf] * rng.poisson(15, len(hf)),
        rng.poisson(5.0, len(hf)) + farmer_head[hf] * rng.poisson(40, len(hf)),
        rng.poisson(1.5, len(hf)),
        rng.poisson(0.6, len(hf)) + farmer_head[hf] * rng.poisson(4, len(hf)),
        np.where(camel_ok, rng.poisson(0.4, len(hf)), 0),
    ], axis=1)
    fam_rep = np.repeat(np.repeat(hf, 5), counts.ravel())
    species = np.repeat(np.tile(np.arange(5), len(hf)), counts.ravel())
    owners = head[fam_rep]
    settle = F.settlement_id.to_numpy()[fam_rep]
    region = F.region.to_numpy()[fam_rep]
    # phantom animals: registered to a dead owner, or to nobody the state knows
    n_ph = int(round(len(owners) * 0.012 * defect_scale))
    dead = P.person_id.to_numpy()[~P.alive.to_numpy()]
    ph_owner = np.where(rng.random(n_ph) < 0.7, rng.choice(dead, n_ph) if len(dead) else -1, -1)
    ph_src = rng.integers(0, max(1, len(owners)), n_ph)
    owners = np.concatenate([owners, ph_owner])
    species = np.concatenate([species, species[ph_src] if len(species) else np.zeros(n_ph, int)])
    settle = np.concatenate([settle, settle[ph_src] if len(settle) else np.zeros(n_ph, int)])
    region = np.concatenate([region, region[ph_src] if len(region) else np.full(n_ph, "KZ-61")])
    k = len(owners)
    tags = np.char.add("KZ", np.char.zfill((num(rng.permutation(k)) * 7 + 100_000_019).astype(str), 12))
    st = pop.settlements.set_index("settlement_id").settlement_name
    out["animals"] = pd.DataFrame({
        "animal_id": np.arange(k, dtype=np.int64),
        "tag": tags,
        "species": SPECIES[species],
        "sex": np.where(rng.random(k) < 0.6, "F", "M"),
        "birth_date": _to_date(snap - rng.integers(60, 4000, k)),
        "owner_id": owners.astype(np.int64),
        "region": region,
        "settlement_id": settle.astype(np.int64),
        "settlement_name": st.reindex(settle).to_numpy(),
        "phantom": np.r_[np.zeros(k - n_ph, bool), np.ones(n_ph, bool)],
    })

    # ------------------------------------------------------------ loans
    rng = streams.get("loans")
    alive_adult = np.flatnonzero(P.alive.to_numpy() & (P.age.to_numpy() >= 21))
    pz = np.where(P.family_id.to_numpy() >= 0, z[np.maximum(P.family_id.to_numpy(), 0)], 0)
    takes = alive_adult[rng.random(len(alive_adult)) < 0.33]
    k = len(takes)
    amount = np.round(np.exp(rng.normal(13.3, 0.9, k) + 0.3 * pz[takes]), -3)
    overdue_p = 0.06 + 0.12 * _sigmoid(-1.5 * pz[takes])
    overdue = np.where(rng.random(k) < overdue_p, rng.integers(1, 720, k), 0)
    lenders = make_bins(_to_date(np.full(BANKS, _days(dt.date(1994, 3, 1)))), np.full(BANKS, 4), np.arange(BANKS) * 5 + 11)
    out["loans"] = pd.DataFrame({
        "loan_id": np.arange(k, dtype=np.int64),
        "borrower_id": takes.astype(np.int64),
        "lender_bin": lenders[rng.integers(0, BANKS, k)],
        "amount": amount,
        "balance": np.round(amount * rng.uniform(0.05, 1.0, k), -2),
        "overdue_days": overdue.astype(np.int64),
        "issued_date": _to_date(snap - rng.integers(30, 3000, k)),
    })
    out["employers"] = employers
    return out


def build_payments(pop: Population, catalog: Catalog, snapshot: dt.date, streams: Streams,
                   holdings: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per benefit recipient for the snapshot month (one-time grants: last 12 months)."""
    rng = streams.get("payments")
    P, F = pop.persons, pop.families
    money = catalog.money_on(snapshot)
    mrp, sm = money.mrp, money.subsistence_minimum
    alive = P.alive.to_numpy()
    age = P.age.to_numpy()
    fam = P.family_id.to_numpy()
    dis = P.disability_group.to_numpy()
    rows: list[pd.DataFrame] = []

    def add(mask_or_idx, benefit: str, amount) -> None:
        idx = np.flatnonzero(mask_or_idx) if np.asarray(mask_or_idx).dtype == bool else np.asarray(mask_or_idx)
        amt = np.broadcast_to(np.asarray(amount, dtype=float), (len(idx),)) if np.ndim(amount) == 0 else np.asarray(amount, dtype=float)
        rows.append(pd.DataFrame({"person_id": idx.astype(np.int64), "benefit": benefit, "amount": np.round(amt, 0)}))

    pens = P.pensioner.to_numpy() & alive
    add(pens, "pension_age", P.pension.to_numpy()[pens])
    d = (dis > 0) & alive
    add(d & (age >= 18), "pension_disability", np.select([dis[d & (age >= 18)] == 1, dis[d & (age >= 18)] == 2], [1.9 * sm, 1.5 * sm], 1.1 * sm))
    add(d & (age < 18), "disability_allowance", np.full((d & (age < 18)).sum(), 1.4 * sm))
    births = pop.births
    b_age = age[births.child_id.to_numpy()]
    mothers = births.mother_id.to_numpy()
    infant = (b_age < 1) & (mothers >= 0)
    add(mothers[infant], "child_care_under1", np.full(infant.sum(), 0.9 * sm))
    add(mothers[infant], "birth_grant", np.full(infant.sum(), 38 * mrp))
    # large families: four or more children under 18
    minors = (P.family_role.to_numpy() == "child") & (age < 18)
    n_minors = np.bincount(fam[minors], minlength=len(F))
    large = np.flatnonzero(n_minors >= 4)
    add(F.head_id.to_numpy()[large], "large_family", np.minimum(n_minors[large], 10) * 4.5 * mrp)
    unemp = P.unemployed.to_numpy() & (rng.random(len(P)) < 0.5)
    add(unemp, "unemployment", np.full(unemp.sum(), 0.7 * sm))
    g1 = np.flatnonzero((dis == 1) & alive & (fam >= 0))
    caregivers = F.head_id.to_numpy()[fam[g1]]
    caregivers = caregivers[(caregivers != g1) & (rng.random(len(g1)) < 0.6)]
    add(caregivers, "caregiver", np.full(len(caregivers), 1.2 * sm))
    ath = np.isin(P.occupation.to_numpy(), ["athlete", "coach"]) & (age >= 35) & (rng.random(len(P)) < 0.3)
    add(ath, "athlete_lifelong", np.full(ath.sum(), 100 * mrp))
    stud = np.isin(P.student.to_numpy(), ["university", "college"]) & (rng.random(len(P)) < 0.6)
    add(stud, "student_stipend", np.full(stud.sum(), 0.8 * sm))
    # survivors: children whose father is among the deceased
    fathers = births.father_id.to_numpy()
    orphan = (fathers >= 0) & ~alive[np.maximum(fathers, 0)] & (b_age < 18)
    add(births.child_id.to_numpy()[orphan], "pension_survivor", np.full(orphan.sum(), 0.9 * sm))
    pay = pd.concat(rows, ignore_index=True)
    pay.insert(0, "payment_id", np.arange(len(pay), dtype=np.int64))
    pay["period"] = np.datetime64(snapshot.replace(day=1), "D")
    return pay


def build_welfare(pop: Population, catalog: Catalog, snapshot: dt.date, streams: Streams,
                  holdings: dict[str, pd.DataFrame], payments: pd.DataFrame) -> pd.DataFrame:
    """Latent per-capita income and consumption of every family (the truth scoring is measured
    against, set on ``pop.families``); returns the ASP payments made to most income-poor
    families (and to a few others, as in real life)."""
    P, F = pop.persons, pop.families
    n_fam = len(F)
    fam = P.family_id.to_numpy()
    in_fam = fam >= 0
    income = np.bincount(fam[in_fam], weights=(P.wage.to_numpy() + P.pension.to_numpy())[in_fam], minlength=n_fam)
    pay = payments[~payments.benefit.isin(["pension_age", "birth_grant"])]
    pf = fam[pay.person_id.to_numpy()]
    ok = pf >= 0
    income += np.bincount(pf[ok], weights=pay.amount.to_numpy()[ok], minlength=n_fam)
    biz = holdings["businesses"]
    bf = fam[biz.owner_id.to_numpy()]
    income += np.bincount(bf, weights=biz.revenue.to_numpy() * 0.15 / 12, minlength=n_fam)
    members = F.members.to_numpy()
    income_pc = income / members

    produce = np.zeros(n_fam)
    an = holdings["animals"]
    an = an[~an.phantom & (an.owner_id >= 0)]
    af = fam[an.owner_id.to_numpy()]
    ok = af >= 0
    val = an.species.map(PRODUCE_PER_HEAD).to_numpy(dtype=float)
    produce += np.bincount(af[ok], weights=val[ok], minlength=n_fam)
    land = holdings["land_plots"]
    lf = fam[land.owner_id.to_numpy()]
    produce += np.bincount(lf, weights=np.minimum(land.area_ha.to_numpy(), 50) * 60_000 / 12, minlength=n_fam)
    rng = streams.get("welfare")
    consumption_pc = income_pc * rng.uniform(0.85, 1.05, n_fam) + produce / members

    money = catalog.money_on(snapshot)
    median = pd.Series({r.iso: r.median_income for r in catalog.regions}).reindex(F.region).to_numpy(dtype=float)
    line = np.maximum(0.35 * median, 0.7 * money.subsistence_minimum)
    F["income_pc"] = np.round(income_pc, 0)
    F["consumption_pc"] = np.round(consumption_pc, 0)
    F["welfare"] = np.round(consumption_pc / line, 4)
    F["poor"] = consumption_pc < line
    F["food_insecure"] = consumption_pc < 0.5 * line
    F["children"] = np.bincount(fam[in_fam & (P.family_role.to_numpy() == "child")], minlength=n_fam)
    F["poverty_line"] = np.round(line, 0)

    # ASP: most income-poor families receive it; a few others do too (inclusion errors)
    income_poor = income_pc < line
    gets = (income_poor & (rng.random(n_fam) < 0.7)) | (~income_poor & (rng.random(n_fam) < 0.01))
    idx = np.flatnonzero(gets)
    amt = np.maximum((line[idx] - income_pc[idx]) * members[idx], 0.1 * money.subsistence_minimum)
    asp = pd.DataFrame({"person_id": F.head_id.to_numpy()[idx], "benefit": "asp", "amount": np.round(amt, 0)})
    asp.insert(0, "payment_id", np.arange(len(payments), len(payments) + len(asp), dtype=np.int64))
    asp["period"] = payments.period.iloc[0] if len(payments) else np.datetime64(snapshot.replace(day=1), "D")
    return asp


def build_housing_queue(pop: Population, catalog: Catalog, snapshot: dt.date, streams: Streams,
                        holdings: dict[str, pd.DataFrame], shard: Shard = SINGLE) -> pd.DataFrame:
    """Applicants in social-housing queues, with the reasons (truth) an applicant is ineligible."""
    rng = streams.get("housing_queue")
    P, F = pop.persons, pop.families
    snap = _days(snapshot)
    n_fam = len(F)
    city = (F.settlement_type == "city").to_numpy()
    p = np.where(city, 0.08, 0.025) * (1.5 - 0.5 * np.tanh(pop.welfare_z))
    # families who own a home rarely apply (those who do are what the audit finds)
    re = holdings["real_estate"]
    owners = re.owner_id.to_numpy()[pd.isna(re.disposed_date).to_numpy()]
    owning = np.zeros(n_fam, bool)
    owning[P.family_id.to_numpy()[owners]] = True
    p = np.where(owning, p * 0.12, p)
    in_q = np.flatnonzero(rng.random(n_fam) < p)
    applicant = F.head_id.to_numpy()[in_q]
    region = F.region.to_numpy()[in_q].astype(object)
    # some applicants moved away: the queue is in a region they no longer live in
    moved = rng.random(len(in_q)) < 0.12
    all_regions = np.array([r.iso for r in catalog.regions], dtype=object)
    region[moved] = all_regions[(np.searchsorted(all_regions, region[moved]) + rng.integers(1, len(all_regions), moved.sum())) % len(all_regions)]
    # the dead who were never removed from the queue
    dead = P.person_id.to_numpy()[~P.alive.to_numpy()]
    n_dead = max(1, int(len(in_q) * 0.025))
    dead_app = rng.choice(dead, n_dead, replace=False) if len(dead) >= n_dead else dead
    applicant = np.concatenate([applicant, dead_app])
    region = np.concatenate([region, P.region.to_numpy()[dead_app].astype(object)])
    k = len(applicant)
    q = pd.DataFrame({
        "entry_id": np.arange(k, dtype=np.int64),
        "person_id": applicant.astype(np.int64),
        "region": region,
        "queue_date": _to_date(snap - rng.integers(100, 12 * 365, k)),
        "category": rng.choice(np.array(["large_family", "disabled", "orphan", "public_sector", "low_income", "single_parent"]), size=k),
    })
    q["queue_no"] = shard.serial(q.groupby("region").cumcount().to_numpy()) + 1
    q["truth_reasons"] = housing_ineligibility(q, pop, snapshot, holdings)
    return q


#: cities where the registration requirement is three years
THREE_YEAR_CITIES = ("KZ-71", "KZ-75", "KZ-79")


def housing_ineligibility(queue: pd.DataFrame, pop: Population, snapshot: dt.date,
                          holdings: dict[str, pd.DataFrame]) -> np.ndarray:
    """Truth for the housing-queue audit: why each applicant fails the rules (";"-joined,
    empty when eligible). The family (spouse, children) must have owned no housing in the last
    five years; permanent registration in the queue's region (three years in the three cities);
    a citizen or kandas; alive."""
    P = pop.persons
    snap = _days(snapshot)
    pid = queue.person_id.to_numpy()
    fam = P.family_id.to_numpy()[pid]
    re = holdings["real_estate"]
    re = re[re.kind != "commercial"]
    disposed = re.disposed_date.to_numpy().astype("datetime64[D]").astype(np.int64)
    recent = (disposed == NAT) | (disposed >= snap - 5 * 365)
    owner_fam = P.family_id.to_numpy()[re.owner_id.to_numpy()[recent]]
    owned_fams = np.unique(owner_fam[owner_fam >= 0])
    owned_self = np.isin(pid, re.owner_id.to_numpy()[recent])
    reasons = {
        "owned_housing": owned_self | ((fam >= 0) & np.isin(fam, owned_fams)),
        "other_region": P.region.to_numpy()[pid] != queue.region.to_numpy(),
        "no_registration": P.registration.to_numpy()[pid] == "none",
        "registered_too_briefly": (
            np.isin(queue.region.to_numpy(), THREE_YEAR_CITIES)
            & (P.registered_since.to_numpy().astype("datetime64[D]").astype(np.int64)[pid] > snap - 3 * 365)
        ),
        "not_citizen": P.citizenship.to_numpy()[pid] == "foreign",
        "dead": ~P.alive.to_numpy()[pid],
    }
    out = np.full(len(queue), "", dtype=object)
    for name, mask in reasons.items():
        out = np.where(mask, np.where(out == "", name, out + ";" + name), out)
    return out
