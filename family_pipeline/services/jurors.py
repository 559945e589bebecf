"""Juror long-lists per region (Law "On jurors", art. 10; rules in ``seeds/services/jurors.yaml``).

Every living person of a region is judged: an exclusion (under 25, a criminal record not
expunged, incapacity, an excluded occupation, psychiatric or narcological registration, not a
citizen) keeps the person off the list, counted by reason; a flag (over 65, disability, clergy;
state language is unknown — no registry records it) keeps the person on the list, marked, since
they may ask to be removed.

The order of a long-list is reproducible without any random-number state: each person's place is
a keyed 64-bit hash (splitmix64) of their ``person_id`` mixed with a key made from the
pseudonym secret, the region, the year and the seed. The same inputs give the same list; another
year or seed gives an unrelated order; nobody can predict a place without the secret.

A long-list row holds only what a court needs to send summonses through the restricted person
lookup: the pseudonymous ``person_id``, the order, region, settlement type, sex, age band and the
flags. No name, IIN or address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import numpy as np
import pandas as pd

from family_pipeline.families.sets import isin, unique
from family_pipeline.lib.pseudonym import secret
from family_pipeline.services.rules import JurorRules

__all__ = ["add_counts", "age_in_years", "judge_from_lake", "judge_persons", "juror_evidence", "juror_longlist",
           "order_key", "order_keys"]

#: reasons beyond the law's: eligibility that cannot be checked from the registries
UNVERIFIABLE = ("age_unknown", "citizenship_unverified")


def order_key(region: str, year: int, seed: int) -> np.uint64:
    """The 64-bit key of one long-list draw, derived from the pseudonym secret (HMAC-SHA256)."""
    digest = hmac.new(secret(), f"jurors|{region}|{year}|{seed}".encode(), hashlib.sha256).digest()
    return np.uint64(int.from_bytes(digest[:8], "big"))


def order_keys(person_ids: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64 of (person_id XOR key): a uniform, keyed, reproducible uint64 per person."""
    with np.errstate(over="ignore"):
        z = person_ids.astype(np.int64).view(np.uint64) ^ key
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def age_in_years(birth: np.ndarray, as_of: dt.date) -> np.ndarray:
    """Age in full years on ``as_of`` (a birthday on ``as_of`` counts); -1 where unknown."""
    b = pd.DatetimeIndex(birth.astype("datetime64[ns]"))
    known = ~b.isna()
    years = as_of.year - b.year.to_numpy(dtype=float)
    before = (b.month.to_numpy(dtype=float) > as_of.month) | (
        (b.month.to_numpy(dtype=float) == as_of.month) & (b.day.to_numpy(dtype=float) > as_of.day))
    age = np.where(known, years - before, -1)
    return np.nan_to_num(age, nan=-1).astype(np.int64)


def judge_persons(persons: pd.DataFrame, evidence: dict[str, np.ndarray], not_citizen_ids: np.ndarray,
                  rules: JurorRules, as_of: dt.date, registered_ids: np.ndarray | None = None) -> pd.DataFrame:
    """One row per living person: person_id, region, sex, age, one boolean column per exclusion
    and per flag, ``excluded`` and ``reasons`` (";"-joined exclusions).

    ``persons``: person_id, region, sex, birth_date, death_date (datetime64); ``evidence``:
    exclusion or flag name -> person ids the registries name for it; ``registered_ids``: persons
    the population register knows (when given, anyone else is ``citizenship_unverified`` and not
    listed: citizenship is proven by the register, and a golden record no register row backs is
    most often a fragment of someone already judged)."""
    death = persons.death_date.to_numpy().astype("datetime64[D]")
    living = persons[np.isnat(death) | (death > np.datetime64(as_of, "D"))]
    ids = living.person_id.to_numpy(np.int64)
    age = age_in_years(living.birth_date.to_numpy(), as_of)
    out = pd.DataFrame({"person_id": ids, "region": living.region.to_numpy(dtype=object),
                        "sex": living.sex.to_numpy(dtype=object), "age": age})
    for name in rules.exclusions:
        if name == "under_25":
            out[name] = (age >= 0) & (age < rules.minimum_age)
        elif name == "not_citizen":
            out[name] = isin(ids, not_citizen_ids) | isin(ids, evidence.get(name, np.empty(0, np.int64)))
        else:
            out[name] = isin(ids, evidence.get(name, np.empty(0, np.int64)))
    # unknown age or unproven citizenship: not listed either (a court cannot check eligibility)
    out["age_unknown"] = age < 0
    out["citizenship_unverified"] = ~isin(ids, registered_ids) if registered_ids is not None else False
    for name in rules.flags:
        if name == "over_65":
            out[name] = age > rules.flag_over_age
        elif name == "state_language":
            out[name] = pd.array([pd.NA] * len(out), dtype="boolean")
        else:
            out[name] = isin(ids, evidence.get(name, np.empty(0, np.int64)))
    reasons = list(rules.exclusions) + list(UNVERIFIABLE)
    text = np.full(len(out), "", dtype=object)
    for name in reasons:
        m = out[name].to_numpy(bool)
        text = np.where(m, np.where(text == "", name, text + ";" + name), text)
    out["reasons"] = text
    out["excluded"] = text != ""
    return out


def _age_band(age: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]
    idx = np.searchsorted(np.asarray(edges), age, side="right") - 1
    return np.asarray(labels, dtype=object)[np.clip(idx, 0, len(labels) - 1)]


def juror_longlist(judged: pd.DataFrame, region: str, settlement_type: pd.Series | None, rules: JurorRules,
                   as_of: dt.date, seed: int | None = None) -> pd.DataFrame:
    """The long-list of ``region``: listed persons in keyed-hash order (``place`` 1..n)."""
    listed = judged[(judged.region == region) & ~judged.excluded]
    ids = listed.person_id.to_numpy(np.int64)
    keys = order_keys(ids, order_key(region, as_of.year, rules.order_seed if seed is None else seed))
    order = np.lexsort((ids, keys))
    listed = listed.iloc[order]
    ids = ids[order]
    out = pd.DataFrame({
        "place": np.arange(1, len(listed) + 1, dtype=np.int64),
        "person_id": ids,
        "region": region,
        "settlement_type": (settlement_type.reindex(ids).to_numpy(dtype=object) if settlement_type is not None
                            else np.full(len(ids), None, dtype=object)),
        "sex": listed.sex.to_numpy(dtype=object),
        "age_band": _age_band(listed.age.to_numpy(), rules.age_bands),
    })
    for name in rules.flags:
        out[f"flag_{name}"] = listed[name].to_numpy()
    out["as_of"] = np.datetime64(as_of, "D")
    return out


def exclusion_counts(judged: pd.DataFrame, rules: JurorRules) -> dict[str, int]:
    """Persons judged, listed, excluded and excluded per reason (a person may have several)."""
    counts = {"persons": int(len(judged)), "listed": int((~judged.excluded).sum()),
              "excluded": int(judged.excluded.sum())}
    for name in [*rules.exclusions, *UNVERIFIABLE]:
        counts[f"excluded_{name}"] = int(judged[name].sum())
    for name in rules.flags:
        if name != "state_language":
            counts[f"flagged_{name}"] = int((judged[name].to_numpy(bool) & ~judged.excluded.to_numpy()).sum())
    return counts


def juror_evidence(lake, rules: JurorRules) -> dict:
    """What the registries say about everyone, read once for every region: ``evidence``
    (exclusion or flag name -> sorted person ids), ``not_citizen_ids`` and ``registered_ids``
    (persons the population register knows) — the keyword arguments of ``judge_persons``."""
    from family_pipeline.families.sources import Crosswalk
    from family_pipeline.services.sources import registry_persons

    evidence: dict[str, np.ndarray] = {}
    for name, codes in {**rules.exclusions, **rules.flags}.items():
        ids = []
        for code in codes:
            cols = ["expunged"] if code == "criminal_records" else []
            rows = registry_persons(lake, code, cols)
            if code == "criminal_records":
                rows = rows[~rows.expunged.fillna(False).astype(bool)]
            ids.append(rows.person_id.to_numpy(np.int64))
        evidence[name] = unique(np.concatenate(ids)) if ids else np.empty(0, np.int64)
    population = registry_persons(lake, "gbd_fl", ["citizenship"])
    non_citizen = population.citizenship.notna() & ~population.citizenship.isin(list(rules.citizenship_eligible))
    Crosswalk.release()
    return {"evidence": evidence, "not_citizen_ids": population.person_id[non_citizen].to_numpy(np.int64),
            "registered_ids": unique(population.person_id.to_numpy(np.int64))}


def judge_from_lake(lake, rules: JurorRules, as_of: dt.date, region: str | None = None) -> pd.DataFrame:
    """Read the golden persons (of ``region``, or all) and the evidence registries and judge every
    living person."""
    from family_pipeline.services.sources import golden_persons

    persons = golden_persons(lake)
    if region is not None:
        persons = persons[persons.region == region].reset_index(drop=True)
    found = juror_evidence(lake, rules)
    return judge_persons(persons, found["evidence"], found["not_citizen_ids"], rules, as_of,
                         registered_ids=found["registered_ids"])


def add_counts(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    """Counts of ``exclusion_counts`` summed over regions."""
    return {k: total.get(k, 0) + v for k, v in counts.items()}
