"""Families, persons and civil-status events of the synthetic country, all vectorised.

The country is built family first: each family gets a type, a size, a place and a latent
welfare; persons are then laid out family by family (head, spouse, children). Deceased persons,
former spouses and previous marriages give the civil-status registries their history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from family_pipeline.catalog import Catalog
from family_pipeline.lib.identifiers import make_iins
from family_pipeline.synth.names import NameBank
from family_pipeline.synth.random import Streams
from family_pipeline.synth.shards import Shard, deceased_count

FAMILY_TYPES = np.array(["single", "couple", "couple_kids", "single_parent"])
FAMILY_TYPE_P = np.array([0.18, 0.22, 0.50, 0.10])
#: flats of a city house: the household numbers of a city street fill house 1, then house 2, ...
FLATS_PER_HOUSE = 120
#: regions where Russian-speaking families are a large share
NORTHERN = {"KZ-11", "KZ-35", "KZ-39", "KZ-55", "KZ-59", "KZ-63", "KZ-62"}
OCCUPATIONS = np.array(
    ["judge", "prosecutor", "investigator", "lawyer", "civil_servant", "military", "police",
     "clergy", "athlete", "coach", "teacher", "doctor", "farmer", "worker", "other"]
)
OCCUPATION_P = np.array(
    [0.0006, 0.0009, 0.0012, 0.004, 0.045, 0.02, 0.02, 0.0015, 0.0015, 0.0015, 0.08, 0.04,
     0.05, 0.40, 0.0]
)
OCCUPATION_P[-1] = 1 - OCCUPATION_P[:-1].sum()


@dataclass
class Population:
    persons: pd.DataFrame
    families: pd.DataFrame
    settlements: pd.DataFrame
    marriages: pd.DataFrame
    births: pd.DataFrame
    deaths: pd.DataFrame
    #: family index -> latent welfare z (before incomes are known)
    welfare_z: np.ndarray


def _days(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def _to_date(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype="int64").astype("datetime64[D]")


def age_on(birth_days: np.ndarray, on_days: int | np.ndarray) -> np.ndarray:
    """Whole years between birth and a day (vectorised, calendar-exact)."""
    b = _to_date(birth_days)
    o = _to_date(np.broadcast_to(on_days, b.shape))
    by = b.astype("datetime64[Y]").astype(int)
    oy = o.astype("datetime64[Y]").astype(int)
    b_md = (b - b.astype("datetime64[Y]")).astype(int)
    o_md = (o - o.astype("datetime64[Y]")).astype(int)
    # compare month/day via day-of-year adjusted for leap years: use month and day explicitly
    bm = b.astype("datetime64[M]").astype(int) % 12
    om = o.astype("datetime64[M]").astype(int) % 12
    bd = (b - b.astype("datetime64[M]")).astype(int)
    od = (o - o.astype("datetime64[M]")).astype(int)
    del b_md, o_md
    before = (om < bm) | ((om == bm) & (od < bd))
    return oy - by - before.astype(int)


def build_settlements(catalog: Catalog, persons: int, names: NameBank, streams: Streams) -> pd.DataFrame:
    """One city per region (its centre) and villages in proportion to the rural population."""
    rng = streams.get("settlements")
    rows = []
    sid = 0
    for region in catalog.regions:
        rows.append((sid, region.iso, region.centre_ru, "city"))
        sid += 1
        rural = persons * region.population_share * (1 - region.urban_share)
        if region.urban_share >= 1.0:
            continue
        n_villages = int(np.clip(round(rural / 700), 3, 4000))
        picks = rng.choice(len(names.villages), size=n_villages, replace=n_villages > len(names.villages))
        seen: dict[str, int] = {}
        for p in picks:
            base = names.villages[p]
            seen[base] = seen.get(base, 0) + 1
            label = base if seen[base] == 1 else f"{base} {seen[base]}"
            rows.append((sid, region.iso, label, "village"))
            sid += 1
    return pd.DataFrame(rows, columns=["settlement_id", "region", "settlement_name", "settlement_type"])


def family_layout(rng: np.random.Generator, n_persons: int) -> tuple[np.ndarray, ...]:
    """Family types, children, adults and sizes adding up to exactly ``n_persons`` (the first
    draws of the ``families`` stream)."""
    n_fam = int(np.ceil(n_persons / 3.1)) + 10
    ftype = rng.choice(len(FAMILY_TYPES), size=n_fam, p=FAMILY_TYPE_P)
    kids = np.zeros(n_fam, dtype=np.int64)
    ck = ftype == 2
    kids[ck] = 1 + np.minimum(rng.poisson(1.6, ck.sum()), 8)
    sp = ftype == 3
    kids[sp] = 1 + np.minimum(rng.poisson(0.8, sp.sum()), 5)
    adults = np.where((ftype == 1) | (ftype == 2), 2, 1)
    size = adults + kids
    cum = np.cumsum(size)
    last = int(np.searchsorted(cum, n_persons))
    ftype, kids, adults, size = ftype[: last + 1], kids[: last + 1], adults[: last + 1], size[: last + 1]
    excess = int(size.sum() - n_persons)
    while excess > 0:  # trim the last family (at most a few members) to hit N exactly
        i = len(size) - 1
        take = min(excess, int(kids[i]))
        kids[i] -= take
        size[i] -= take
        excess -= take
        if excess > 0:
            ftype, kids, adults, size = ftype[:-1], kids[:-1], adults[:-1], size[:-1]
            excess = int(size.sum() - n_persons)
    ftype = np.where((ftype == 2) & (kids == 0), 1, ftype)
    ftype = np.where((ftype == 3) & (kids == 0), 0, ftype)
    return ftype, kids, adults, size


def build_population(catalog: Catalog, n_persons: int, snapshot: dt.date, streams: Streams,
                     names: NameBank, settlements: pd.DataFrame | None = None,
                     shard: Shard | None = None) -> Population:
    """The shard's families and persons (local ids 0..); ``settlements`` are the country's
    (built here for an unsharded country)."""
    shard = shard or Shard(persons=n_persons)
    rng = streams.get("families")
    snap = _days(snapshot)
    if settlements is None:
        settlements = build_settlements(catalog, n_persons, names, streams)

    # ---------------------------------------------------------------- families
    ftype, kids, adults, size = family_layout(rng, n_persons)
    n_fam = len(ftype)

    regions = catalog.regions
    reg_idx = rng.choice(len(regions), size=n_fam, p=[r.population_share for r in regions])
    region_iso = np.array([r.iso for r in regions])[reg_idx]
    urban = np.array([r.urban_share for r in regions])[reg_idx]
    is_city = rng.random(n_fam) < urban
    # settlement: the region's city, or a random village of the region
    city_of = settlements[settlements.settlement_type == "city"].set_index("region")["settlement_id"]
    fam_settlement = city_of.reindex(region_iso).to_numpy().copy()
    villages = settlements[settlements.settlement_type == "village"]
    v_by_region = villages.groupby("region")["settlement_id"].agg(["min", "count"])
    v_min = v_by_region["min"].reindex(region_iso).to_numpy()
    v_cnt = v_by_region["count"].reindex(region_iso).fillna(0).to_numpy()
    has_v = v_cnt > 0
    pick = ~is_city & has_v
    fam_settlement[pick] = (v_min[pick] + np.floor(rng.random(pick.sum()) * v_cnt[pick])).astype(np.int64)
    is_city = ~pick
    fam_settlement = fam_settlement.astype(np.int64)

    kazakh_p = np.where(np.isin(region_iso, list(NORTHERN)), 0.5, 0.86)
    ethnic_kz = rng.random(n_fam) < kazakh_p
    median = np.array([r.median_income for r in regions], dtype=float)[reg_idx]
    welfare_z = rng.normal(0, 1, n_fam) + np.log(median / 130_000) - 0.25 * (~is_city)

    # ---------------------------------------------------------------- persons
    n, fam_of, start, pos, ft, couple, role, is_child, sex, birth_days = _lay_out_persons(
        ftype, size, streams.get("persons"), snap, spread_young_husbands=not shard.single)
    age = age_on(birth_days, snap)

    # --------------------------------------------------------------- the deceased
    n_dead = deceased_count(n_persons)
    drng = streams.get("deceased")
    death_days, d_birth, d_sex = _deceased(drng, n_dead, snap)
    d_reg_idx = drng.choice(len(regions), size=n_dead, p=[r.population_share for r in regions])
    d_region = np.array([r.iso for r in regions])[d_reg_idx]
    d_settlement = city_of.reindex(d_region).to_numpy().astype(np.int64)
    d_kz = drng.random(n_dead) < 0.75

    # all persons = living (family members) then the deceased
    N = n + n_dead
    pid = np.arange(N, dtype=np.int64)
    P_sex = np.concatenate([sex, d_sex])
    P_birth = np.concatenate([birth_days, d_birth])
    P_death = np.concatenate([np.full(n, np.iinfo(np.int64).min), death_days])
    alive = np.concatenate([np.ones(n, bool), np.zeros(n_dead, bool)])
    P_family = np.concatenate([fam_of, np.full(n_dead, -1)])
    P_role = np.concatenate([role, np.full(n_dead, "deceased")])
    P_kz = np.concatenate([ethnic_kz[fam_of], d_kz])
    P_region = np.concatenate([region_iso[fam_of], d_region])
    P_settlement = np.concatenate([fam_settlement[fam_of], d_settlement])
    P_age = np.concatenate([age, age_on(d_birth, death_days)])

    # ------------------------------------------------------- civil status links
    crng = streams.get("civil")
    head_idx = start[pos == 0]  # first member of each family (person index)
    spouse_idx = np.full(n_fam, -1)
    spouse_idx[ftype == 1] = head_idx[ftype == 1] + 1
    spouse_idx[ftype == 2] = head_idx[ftype == 2] + 1
    father = np.full(n_fam, -1)  # father of the family's children
    mother = np.full(n_fam, -1)
    father[ftype == 2] = head_idx[ftype == 2]
    mother[ftype == 2] = spouse_idx[ftype == 2]
    lone_f = (ftype == 3) & (sex[head_idx] == "F")
    lone_m = (ftype == 3) & (sex[head_idx] == "M")
    mother[lone_f] = head_idx[lone_f]
    father[lone_m] = head_idx[lone_m]

    marriages: list[tuple[np.ndarray, ...]] = []
    # married couples (90% registered; the rest cohabit without a record)
    cpl = np.flatnonzero(((ftype == 1) | (ftype == 2)) & (crng.random(n_fam) < 0.9))
    h, w = head_idx[cpl], spouse_idx[cpl]
    earliest = np.maximum(P_birth[h], P_birth[w]) + int(18.5 * 365.25)
    oldest_child = _oldest_child_birth(is_child, fam_of, birth_days, n_fam)[cpl]
    latest = np.where(oldest_child > 0, oldest_child - 30, snap - 30)
    latest = np.maximum(latest, earliest + 1)
    mdate = earliest + (crng.random(len(cpl)) ** 0.5 * (latest - earliest)).astype(np.int64)
    marriages.append((h, w, mdate, np.full(len(cpl), np.iinfo(np.int64).min), fam_settlement[cpl]))

    # lone mothers: widowed (husband among the deceased), divorced (ex-husband lives alone
    # elsewhere) or never married (no father on the birth records)
    lm = np.flatnonzero(lone_f)
    kind = crng.choice(3, size=len(lm), p=[0.3, 0.5, 0.2])
    dead_men = np.flatnonzero((~alive) & (P_sex == "M") & (P_age >= 35))
    widowed = lm[kind == 0][: len(dead_men)]
    dm = crng.permutation(dead_men)[: len(widowed)]
    father[widowed] = dm
    mdate_w = np.minimum(P_death[dm], P_birth[mother[widowed]] + int(22 * 365.25))
    marriages.append((dm, mother[widowed], mdate_w, np.full(len(dm), np.iinfo(np.int64).min), fam_settlement[widowed]))
    single_men = np.flatnonzero((P_role == "single") & (P_sex == "M") & (P_age >= 25) & (P_age <= 70))
    single_men = crng.permutation(single_men)
    divorced = lm[kind == 1][: len(single_men)]
    ex = single_men[: len(divorced)]
    father[divorced] = ex
    m_d = np.maximum(P_birth[ex], P_birth[mother[divorced]]) + int(20 * 365.25)
    oc = _oldest_child_birth(is_child, fam_of, birth_days, n_fam)[divorced]
    m_d = np.minimum(m_d, np.where(oc > 0, oc - 60, m_d))
    d_d = np.minimum(snap - 40, np.maximum(m_d + 365, oc + 365 + (crng.random(len(divorced)) * 2000).astype(np.int64)))
    marriages.append((ex, mother[divorced], m_d, d_d, fam_settlement[divorced]))
    # remarriage: some husbands of families with children were married before
    remarried = np.flatnonzero((ftype == 2) & (crng.random(n_fam) < 0.08))
    single_women = crng.permutation(np.flatnonzero((P_role == "single") & (P_sex == "F") & (P_age >= 25)))
    remarried = remarried[: len(single_women)]
    exw = single_women[: len(remarried)]
    hh = head_idx[remarried]
    first_m = np.maximum(P_birth[hh], P_birth[exw]) + int(19 * 365.25)
    first_d = first_m + 365 + (crng.random(len(remarried)) * 1500).astype(np.int64)
    marriages.append((hh, exw, first_m, first_d, fam_settlement[remarried]))
    # widows living alone: their late husbands are among the deceased
    old_single_w = np.flatnonzero((P_role == "single") & (P_sex == "F") & (P_age >= 60))
    rest_dead = np.setdiff1d(dead_men, dm)
    k = min(len(old_single_w) // 2, len(rest_dead))
    ww, wd = old_single_w[:k], crng.permutation(rest_dead)[:k]
    wm = np.minimum(P_death[wd] - 365, np.maximum(P_birth[ww], P_birth[wd]) + int(21 * 365.25))
    marriages.append((wd, ww, wm, np.full(k, np.iinfo(np.int64).min), P_settlement[ww]))

    mar = pd.DataFrame({
        "husband_id": np.concatenate([m[0] for m in marriages]).astype(np.int64),
        "wife_id": np.concatenate([m[1] for m in marriages]).astype(np.int64),
        "marriage_date": _to_date(np.concatenate([m[2] for m in marriages])),
        "divorce_date": _to_date(np.concatenate([m[3] for m in marriages])),
        "settlement_id": np.concatenate([m[4] for m in marriages]).astype(np.int64),
    })
    mar["region"] = settlements.region.to_numpy()[mar.settlement_id.to_numpy()]
    mar = mar.drop(columns="settlement_id")
    mar.insert(0, "marriage_id", np.arange(len(mar), dtype=np.int64))

    # births of every child living in a family
    child_idx = np.flatnonzero(is_child)
    cf = fam_of[child_idx]
    births = pd.DataFrame({
        "birth_id": np.arange(len(child_idx), dtype=np.int64),
        "child_id": child_idx.astype(np.int64),
        "mother_id": mother[cf].astype(np.int64),
        "father_id": father[cf].astype(np.int64),
        "birth_date": _to_date(birth_days[child_idx]),
        "region": region_iso[cf],
    })
    deaths = pd.DataFrame({
        "death_id": np.arange(n_dead, dtype=np.int64),
        "person_id": np.arange(n, N, dtype=np.int64),
        "death_date": _to_date(death_days),
        "region": d_region,
        "cause": drng.choice(["illness", "cardiovascular", "accident", "other"], size=n_dead, p=[0.45, 0.35, 0.08, 0.12]),
    })

    # ---------------------------------------------------------------- names
    father_of_person = np.full(N, -1)
    father_of_person[child_idx] = father[cf]
    given = names.assign(P_sex, P_kz, father_of_person, P_family, head_idx, spouse_idx, P_role, streams.get("names"))

    # ---------------------------------------------------------------- identifiers
    iins = _issue_iins(P_birth, P_sex, streams, shard)

    # ---------------------------------------------------------------- addresses
    arng = streams.get("addresses")
    # every dwelling has an address of its own, written with its settlement as registries write
    # it: the households of a settlement are numbered in a random order (interleaved across
    # shards, so no two shards give one number) and the number picks the street, the house and,
    # in a city, the flat
    in_order = np.lexsort((arng.random(n_fam), fam_settlement))
    starts = np.searchsorted(fam_settlement[in_order], fam_settlement[in_order], side="left")
    number = np.empty(n_fam, np.int64)
    number[in_order] = shard.serial(np.arange(n_fam) - starts)
    street = number % len(names.streets)
    per_street = number // len(names.streets)
    house = np.where(is_city, per_street // FLATS_PER_HOUSE, per_street) + 1
    flat = per_street % FLATS_PER_HOUSE + 1
    address_id = np.char.add(np.char.add(fam_settlement.astype(str), "-"), (np.arange(n_fam) + shard.family_base).astype(str))
    street_names = np.asarray(names.streets, dtype=object)[street]
    settlement_name = settlements.set_index("settlement_id").settlement_name
    place = settlement_name.reindex(fam_settlement).to_numpy(dtype=object)
    addr_text = (pd.Series(np.where(is_city, "г. ", "с. "), dtype=object) + pd.Series(place, dtype=object) + ", ул. "
                 + pd.Series(street_names, dtype=object) + ", д. " + pd.Series(house).astype(str))
    addr_text = np.where(is_city, (addr_text + ", кв. " + pd.Series(flat).astype(str)).to_numpy(), addr_text.to_numpy())
    # a quarter of one-person families live in another family's dwelling (a lodger, an elderly
    # relative): a household is not a family, so the address alone cannot form families
    lodger = np.flatnonzero((ftype == 0) & (arng.random(n_fam) < 0.25))
    by_settlement = np.argsort(fam_settlement, kind="stable")
    s_sorted = fam_settlement[by_settlement]
    first = np.searchsorted(s_sorted, fam_settlement[lodger], side="left")
    count = np.searchsorted(s_sorted, fam_settlement[lodger], side="right") - first
    host = by_settlement[first + np.floor(arng.random(len(lodger)) * count).astype(np.int64)]
    addr_text = np.asarray(addr_text, dtype=object)
    address_id[lodger] = address_id[host]
    addr_text[lodger] = addr_text[host]
    d_addr_id = np.char.add(np.char.add(d_settlement.astype(str), "-d"), shard.serial(np.arange(n_dead)).astype(str))
    d_street = np.asarray(names.streets, dtype=object)[drng.integers(0, len(names.streets), n_dead)]
    d_addr = ("г. " + pd.Series(settlement_name.reindex(d_settlement).to_numpy(dtype=object), dtype=object) + ", ул. "
              + pd.Series(d_street, dtype=object) + ", д. 1").to_numpy(dtype=object)

    persons = pd.DataFrame({
        "person_id": pid,
        "iin": iins,
        "last_name": given["last_name"],
        "first_name": given["first_name"],
        "patronymic": given["patronymic"],
        "sex": P_sex,
        "birth_date": _to_date(P_birth),
        "death_date": _to_date(P_death),
        "alive": alive,
        "age": P_age.astype(np.int64),
        "ethnicity": np.where(P_kz, "kazakh", "russian"),
        "region": P_region,
        "settlement_id": P_settlement,
        "address_id": np.concatenate([address_id[fam_of], d_addr_id]),
        "address": np.concatenate([np.asarray(addr_text, dtype=object)[fam_of], d_addr]),
        "family_id": P_family.astype(np.int64),
        "family_role": P_role,
    })
    st = settlements.set_index("settlement_id")
    persons["settlement_name"] = st.settlement_name.reindex(persons.settlement_id).to_numpy()
    persons["settlement_type"] = st.settlement_type.reindex(persons.settlement_id).to_numpy()

    families = pd.DataFrame({
        "family_id": np.arange(n_fam, dtype=np.int64),
        "family_type": FAMILY_TYPES[ftype],
        "region": region_iso,
        "settlement_id": fam_settlement,
        "settlement_type": np.where(is_city, "city", "village"),
        "address_id": address_id,
        "members": size.astype(np.int64),
        "head_id": head_idx.astype(np.int64),
    })
    return Population(persons, families, settlements, mar, births, deaths, welfare_z)


def _lay_out_persons(ftype: np.ndarray, size: np.ndarray, prng: np.random.Generator, snap: int,
                     spread_young_husbands: bool = False) -> tuple[np.ndarray, ...]:
    """Members of each family with their role, sex and birth day (the ``persons`` stream's
    first draws; the shard plan replays them to allot IIN serials)."""
    n = int(size.sum())
    n_fam = len(ftype)
    fam_of = np.repeat(np.arange(n_fam), size)
    start = np.repeat(np.cumsum(size) - size, size)
    pos = np.arange(n) - start
    ft = ftype[fam_of]
    couple = (ft == 1) | (ft == 2)
    role = np.where(pos == 0, np.where(ft == 0, "single", "head"),
                    np.where(couple & (pos == 1), "spouse", "child"))
    is_child = role == "child"

    sex = np.where(prng.random(n) < 0.5, "M", "F")
    sex[(role == "head") & couple] = "M"
    sex[role == "spouse"] = "F"
    sp_head = (role == "head") & (ft == 3)
    sex[sp_head] = np.where(prng.random(sp_head.sum()) < 0.86, "F", "M")

    # ages: the mother's (or lone parent's) age bounds the children's
    fam_parent_age = np.where(
        ftype == 2, prng.uniform(23, 52, n_fam),
        np.where(ftype == 3, prng.uniform(22, 56, n_fam), 0.0),
    )
    young = prng.random(n_fam) < 0.5
    fam_parent_age = np.where(ftype == 1, np.where(young, prng.uniform(20, 35, n_fam), prng.uniform(50, 86, n_fam)), fam_parent_age)
    single_age = prng.choice(3, size=n_fam, p=[0.42, 0.30, 0.28])
    single_age = np.select([single_age == 0, single_age == 1], [prng.uniform(18, 35, n_fam), prng.uniform(35, 60, n_fam)], prng.uniform(60, 93, n_fam))
    fam_parent_age = np.where(ftype == 0, single_age, fam_parent_age)

    age_f = np.zeros(n)
    adult = ~is_child
    base = fam_parent_age[fam_of]
    husband_gap = np.clip(prng.normal(3, 3, n), -4, 12)
    age_f = np.where(role == "spouse", base, age_f)
    husband = base + husband_gap
    if spread_young_husbands:
        # a husband the gap would make younger than 19 is 19 and some years (mirrored), not
        # 19 to the day: at national scale thousands of men would share one birth date and
        # exhaust its IIN serials
        husband = np.where(husband < 19, 38 - husband, husband)
    age_f = np.where((role == "head") & couple, np.maximum(husband, 19), age_f)
    age_f = np.where((role == "head") & ~couple, base, age_f)
    age_f = np.where(role == "single", base, age_f)
    max_child = np.clip(base - 19, 0.5, 23.99)
    age_f = np.where(is_child, prng.uniform(0, 1, n) * max_child, age_f)
    birth_days = (snap - age_f * 365.25 - prng.uniform(0, 1, n)).astype(np.int64)
    birth_days = np.minimum(birth_days, snap - 1)
    del adult
    return n, fam_of, start, pos, ft, couple, role, is_child, sex, birth_days


def _deceased(drng: np.random.Generator, n_dead: int, snap: int) -> tuple[np.ndarray, ...]:
    """Death day, birth day and sex of the recently deceased (the ``deceased`` stream's first draws)."""
    death_days = (snap - drng.uniform(1, 3650, n_dead)).astype(np.int64)
    age_at_death = np.clip(drng.normal(70, 12, n_dead), 30, 99)
    d_birth = (death_days - age_at_death * 365.25).astype(np.int64)
    d_sex = np.where(drng.random(n_dead) < 0.55, "M", "F")
    return death_days, d_birth, d_sex


def iin_group_counts(seed: int, shard: Shard, snapshot: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """IIN groups (birth day * 2 + female) of a shard's persons and how many each holds,
    replayed from the shard's streams without building the shard."""
    streams = Streams(seed, shard.index)
    snap = _days(snapshot)
    ftype, _, _, size = family_layout(streams.get("families"), shard.persons)
    *_, sex, birth_days = _lay_out_persons(ftype, size, streams.get("persons"), snap, not shard.single)
    _, d_birth, d_sex = _deceased(streams.get("deceased"), deceased_count(shard.persons), snap)
    key = np.concatenate([birth_days, d_birth]) * 2 + (np.concatenate([sex, d_sex]) == "F")
    return np.unique(key, return_counts=True)


def _oldest_child_birth(is_child: np.ndarray, fam_of: np.ndarray, birth_days: np.ndarray, n_fam: int) -> np.ndarray:
    out = np.full(n_fam, np.iinfo(np.int64).max)
    np.minimum.at(out, fam_of[is_child], birth_days[is_child])
    return np.where(out == np.iinfo(np.int64).max, 0, out)


def _issue_iins(birth_days: np.ndarray, sex: np.ndarray, streams: Streams, shard: Shard) -> np.ndarray:
    """Unique IINs: serials run within each (birth date, sex) group, spaced so that the
    never-issued skip (serial + 1) cannot collide with the next person's serial. A shard's
    groups continue where the shards before it left off (``shard.iin_base``, counted by the
    shard plan), so IINs stay unique across the country."""
    rng = streams.get("iin")
    key = birth_days * 2 + (sex == "F")
    order = np.argsort(key, kind="stable")
    sk = key[order]
    first = np.r_[True, sk[1:] != sk[:-1]]
    grp_start = np.maximum.accumulate(np.where(first, np.arange(len(sk)), 0))
    within = np.arange(len(sk)) - grp_start
    offset = rng.integers(0, 40, len(sk))
    serial = np.empty(len(sk), dtype=np.int64)
    if shard.iin_keys is not None and len(sk):
        at = np.searchsorted(shard.iin_keys, sk)
        if not (shard.iin_keys[np.minimum(at, len(shard.iin_keys) - 1)] == sk).all():  # pragma: no cover
            raise RuntimeError("the shard plan's IIN groups do not match the shard's persons")
        within = within + shard.iin_base[at]
    serial[order] = 100 + within * 4 + offset % 2
    if len(serial) and serial.max() > 9998:  # pragma: no cover - ~2,400 births of a sex on one day
        raise RuntimeError("IIN serials exhausted for a birth date in the synthetic population")
    iins = make_iins(_to_date(birth_days), sex, serial)
    if len(np.unique(iins)) != len(iins):  # pragma: no cover - guarded by the spacing above
        raise RuntimeError("IIN collision in the synthetic population")
    return iins
