"""The social-housing queue audit: for every applicant in a queue, each rule the applicant fails;
and the families that meet the rules but have nobody in any queue.

The rules (``seeds/services/housing_queue.yaml``): the applicant's family owned no dwelling in the
last five years; the applicant is registered in the queue's region (for three years in Astana,
Almaty and Shymkent); a citizen or kandas; alive. Everything is decided from registries:

- *owned housing*: a residential record of the real-estate register (ГБД РН) whose owner is the
  applicant or a member of the applicant's family (``families/family_members``) and that was not
  disposed of before the window opened, plus notary sales of residential property inside the
  window; a dead applicant has no family any more and is judged on their own records;
- *region*: the golden record's region (survivorship over every registry, which outvotes a
  single registry's wrong region), else the address register's;
- *registration*: the address register (registration kind and since when; the latest record);
- *citizenship*: the population register (ГБД ФЛ), the foreigners' register and the kandas
  register — a kandas is never a foreigner, a foreigner's permit makes one;
- *death*: the golden death date (ZAGS first) on or before the audit date.

All work is column-wise (pandas/numpy); no loop runs over persons.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from family_pipeline.families.sets import isin, unique
from family_pipeline.services.rules import HOUSING_REASONS, HousingRules
from family_pipeline.services.sources import as_days, lookup_ids, years_before

__all__ = [
    "audit_queue",
    "audit_summary",
    "eligible_outside_queue",
    "person_facts",
    "queue_entries",
    "residential_owners",
]

#: the registries whose region column is implied by the registry itself (a city's own queue)
AKIMAT_PREFIX = "akimat_"


def residential_owners(real_estate: pd.DataFrame, sales: pd.DataFrame | None, rules: HousingRules,
                       as_of: dt.date) -> np.ndarray:
    """Sorted unique person ids that owned a dwelling on some day of the look-back window.

    ``real_estate``: person_id, kind, acquired_date, disposed_date (one row per owner record);
    ``sales`` (optional): person_id (the seller), kind, deal_date — a residential sale dated inside
    the window proves ownership in the window even when the register lost the disposal."""
    start = years_before(as_of, rules.ownership.lookback_years)
    end = np.datetime64(as_of, "D")
    kinds = list(rules.ownership.residential_kinds)
    acquired = as_days(real_estate.acquired_date)
    disposed = as_days(real_estate.disposed_date)
    held = (real_estate.kind.isin(kinds).to_numpy()
            & (np.isnat(acquired) | (acquired <= end))
            & (np.isnat(disposed) | (disposed >= start)))
    owners = [real_estate.person_id.to_numpy()[held]]
    if sales is not None and len(sales):
        deal = as_days(sales.deal_date)
        sold = sales.kind.isin(kinds).to_numpy() & ~np.isnat(deal) & (deal >= start) & (deal <= end)
        owners.append(sales.person_id.to_numpy()[sold])
    return unique(np.concatenate(owners).astype(np.int64))


def queue_entries(records: pd.DataFrame, residence: pd.Series | None = None,
                  registry_regions: dict[str, str] | None = None) -> pd.DataFrame:
    """One entry per applicant from the queue records (registry, record_id, person_id, region,
    queue_date): an applicant listed by both an akimat and Otbasy bank is one entry.

    A city akimat's queue is in its city whatever a row says (``registry_regions``). When the
    records of one applicant disagree on the region (a typo in one of them), the region most
    records give wins; a tie goes to the region the applicant lives in (``residence``: person_id
    -> region; a typo is likelier than a move), then to the akimat's record."""
    r = records.copy()
    if registry_regions:
        fixed = r.registry.map(registry_regions)
        r["region"] = fixed.fillna(r.region)
    r = r[r.region.notna()]
    r["akimat"] = r.registry.str.startswith(AKIMAT_PREFIX).astype(np.int8)
    votes = (r.groupby(["person_id", "region"], sort=True)
             .agg(n=("record_id", "size"), akimat=("akimat", "max")).reset_index())
    home = residence.reindex(votes.person_id).to_numpy(dtype=object) if residence is not None else None
    votes["home"] = (home == votes.region.to_numpy(dtype=object)).astype(np.int8) if home is not None else 0
    votes = (votes.sort_values(["person_id", "n", "home", "akimat", "region"],
                               ascending=[True, False, False, False, True], kind="stable")
             .drop_duplicates("person_id"))
    # the registries of each applicant as a bit mask (the sum of distinct bits is their OR),
    # decoded once per distinct mask
    codes = np.sort(records.registry.unique())
    bit = np.left_shift(np.int64(1), np.searchsorted(codes, records.registry.to_numpy(dtype=object)).astype(np.int64))
    flagged = records.assign(bit=bit)
    mask = flagged.drop_duplicates(["person_id", "registry"]).groupby("person_id", sort=True).bit.sum()
    per_person = (flagged.assign(queue_date=as_days(records.queue_date))
                  .groupby("person_id", sort=True)
                  .agg(records=("record_id", "size"), queue_date=("queue_date", "min")))
    per_person["mask"] = mask.reindex(per_person.index).to_numpy(np.int64)
    masks = unique(per_person["mask"].to_numpy())
    names = {int(m): ";".join(c for k, c in enumerate(codes) if int(m) >> k & 1) for m in masks}
    per_person["registries"] = per_person["mask"].map(names)
    per_person = per_person.drop(columns="mask")
    out = per_person.join(votes.set_index("person_id").region.rename("queue_region"), how="left").reset_index()
    return out[["person_id", "queue_region", "queue_date", "records", "registries"]]


def person_facts(persons: pd.DataFrame, address: pd.DataFrame, population: pd.DataFrame,
                 foreigner_ids: np.ndarray, kandas_ids: np.ndarray, as_of: dt.date) -> pd.DataFrame:
    """Per golden person: region, registration (permanent|temporary|none|unknown), registered_since,
    citizenship (KZ|kandas|foreign), alive on ``as_of``.

    ``persons``: person_id, region, death_date, birth_date (datetime64); ``address``: person_id,
    region, registration, registered_since; ``population``: person_id, citizenship."""
    facts = persons[["person_id", "region", "birth_date", "death_date"]].set_index("person_id")
    latest = address.assign(registered_since=as_days(address.registered_since)).sort_values(
        ["person_id", "registered_since", "record_id"], kind="stable").drop_duplicates("person_id", keep="last")
    latest = latest.set_index("person_id")
    # no address record at all is a gap in the data (a quarantined row, an unlinked record), not
    # proof of no registration: "unknown", never judged
    # the few values of a text column as a category: no Python string per person
    facts["registration"] = pd.Categorical(latest.registration.reindex(facts.index).fillna("unknown"))
    facts["registered_since"] = latest.registered_since.reindex(facts.index).to_numpy()
    facts["region"] = facts.region.fillna(latest.region.reindex(facts.index))
    cit = population.dropna(subset=["citizenship"]).drop_duplicates("person_id").set_index("person_id").citizenship
    citizenship = cit.reindex(facts.index).fillna("KZ").to_numpy(dtype=object)
    ids = facts.index.to_numpy()
    citizenship = np.where(isin(ids, foreigner_ids) & (citizenship == "KZ"), "foreign", citizenship)
    citizenship = np.where(isin(ids, kandas_ids), "kandas", citizenship)
    facts["citizenship"] = pd.Categorical(citizenship)
    death = facts.death_date.to_numpy().astype("datetime64[D]")
    facts["alive"] = np.isnat(death) | (death > np.datetime64(as_of, "D"))
    return facts


def _family_owned(person_ids: np.ndarray, members: pd.DataFrame | None, owners: np.ndarray) -> np.ndarray:
    """True where the person, or anyone of the person's family, is among ``owners``."""
    owned = isin(person_ids, owners)
    if members is None or not len(members):
        return owned
    m = members.drop_duplicates("person_id")
    index, families = m.person_id.to_numpy(np.int64), m.family_id.to_numpy(np.int64)
    owning_families = unique(lookup_ids(owners, index, families))
    fam = lookup_ids(person_ids, index, families)
    return owned | ((fam >= 0) & isin(fam, owning_families[owning_families >= 0]))


def _failing(facts: pd.DataFrame, person_ids: np.ndarray, regions: np.ndarray, owned: np.ndarray,
             rules: HousingRules, as_of: dt.date) -> dict[str, np.ndarray]:
    if facts.index.equals(pd.Index(person_ids)):  # every person of the facts, in their order: no copy
        f, known = facts, np.ones(len(facts), bool)
    else:
        f = facts.reindex(person_ids)
        known = f.index.isin(facts.index)
    since = f.registered_since.to_numpy().astype("datetime64[D]")
    cutoff = years_before(as_of, rules.registration.minimum_years)
    alive = f.alive.fillna(True).to_numpy(bool)
    # the address register holds the living: a dead applicant's registration is not knowable and
    # not judged (dead is reason enough)
    return {
        "owned_housing": owned,
        "other_region": known & f.region.notna().to_numpy() & (f.region.to_numpy(dtype=object) != regions),
        "no_registration": known & alive & (f.registration.to_numpy(dtype=object) == "none"),
        "registered_too_briefly": (isin(regions, list(rules.registration.long_registration_regions))
                                   & ~np.isnat(since) & (since > cutoff)),
        "not_citizen": ~isin(f.citizenship.to_numpy(dtype=object), list(rules.citizenship.eligible)) & known,
        "dead": ~alive,
    }


def _joined(flags: dict[str, np.ndarray], n: int) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    for name in HOUSING_REASONS:
        mask = flags[name]
        out = np.where(mask, np.where(out == "", name, out + ";" + name), out)
    return out


def audit_queue(entries: pd.DataFrame, facts: pd.DataFrame, members: pd.DataFrame | None,
                owners: np.ndarray, rules: HousingRules, as_of: dt.date) -> pd.DataFrame:
    """Per queue entry: the applicant (person_id), the family (family_id, -1 when none), the
    queue's region, one boolean column per rule failed, ``reasons`` (";"-joined, empty when
    eligible), ``eligible`` and ``temporary_registration`` (reported, not failing)."""
    pid = entries.person_id.to_numpy(np.int64)
    regions = entries.queue_region.to_numpy(dtype=object)
    owned = _family_owned(pid, members, owners)
    flags = _failing(facts, pid, regions, owned, rules, as_of)
    out = entries.copy()
    if members is not None and len(members):
        m = members.drop_duplicates("person_id")
        out["family_id"] = lookup_ids(pid, m.person_id.to_numpy(np.int64), m.family_id.to_numpy(np.int64))
    else:
        out["family_id"] = np.full(len(out), -1, np.int64)
    out["residence_region"] = facts.region.reindex(pid).to_numpy(dtype=object)
    for name in HOUSING_REASONS:
        out[name] = flags[name]
    out["reasons"] = _joined(flags, len(out))
    out["eligible"] = out.reasons.to_numpy() == ""
    out["temporary_registration"] = facts.registration.reindex(pid).to_numpy(dtype=object) == "temporary"
    return out.sort_values(["queue_region", "person_id"], kind="stable").reset_index(drop=True)


def eligible_outside_queue(facts: pd.DataFrame, members: pd.DataFrame | None, owners: np.ndarray,
                           queued_ids: np.ndarray, rules: HousingRules, as_of: dt.date) -> pd.DataFrame:
    """Families that meet every rule but have nobody in any queue: one candidate per family (its
    head or a single person; without families, every adult stands alone), adult, alive, a citizen
    or kandas, permanently registered (three years in the three cities), whose family owned no
    dwelling in the window. Returns person_id, family_id, region."""
    crit = rules.eligible_outside_queue
    alive = facts[facts.alive]
    ids = alive.index.to_numpy(np.int64)
    age_cut = years_before(as_of, crit.minimum_age)
    adult = alive.birth_date.to_numpy().astype("datetime64[D]") <= age_cut
    if members is not None and len(members):
        m = members.drop_duplicates("person_id").set_index("person_id")
        role = m.role.reindex(ids).to_numpy(dtype=object)
        fam = lookup_ids(ids, m.index.to_numpy(np.int64), m.family_id.to_numpy(np.int64))
        queued_fams = lookup_ids(queued_ids, m.index.to_numpy(np.int64), m.family_id.to_numpy(np.int64))
        in_queue = isin(fam, queued_fams[queued_fams >= 0]) | isin(ids, queued_ids)
        candidate = isin(role, list(crit.roles))
    else:
        fam = np.full(len(ids), -1, np.int64)
        in_queue = isin(ids, queued_ids)
        candidate = np.ones(len(ids), bool)
    regions = alive.region.to_numpy(dtype=object)
    flags = _failing(alive, ids, regions, _family_owned(ids, members, owners), rules, as_of)
    fails = np.zeros(len(ids), bool)
    for name in HOUSING_REASONS:
        fails |= flags[name]
    permanent = alive.registration.to_numpy(dtype=object) == "permanent"
    keep = candidate & adult & ~in_queue & ~fails & permanent & pd.notna(regions)
    return pd.DataFrame({"person_id": ids[keep], "family_id": fam[keep], "region": regions[keep]}).sort_values(
        ["region", "person_id"], kind="stable").reset_index(drop=True)


def audit_summary(audit: pd.DataFrame, outside: pd.DataFrame) -> pd.DataFrame:
    """Counts per region and reason: region, reason (a failing rule, ``in_queue``, ``ineligible``,
    ``eligible_in_queue`` or ``eligible_outside_queue``), persons."""
    parts = [audit.groupby("queue_region").size().rename("in_queue"),
             (~audit.eligible).groupby(audit.queue_region).sum().rename("ineligible"),
             audit.eligible.groupby(audit.queue_region).sum().rename("eligible_in_queue")]
    parts += [audit[name].groupby(audit.queue_region).sum().rename(name) for name in HOUSING_REASONS]
    parts.append(outside.groupby("region").size().rename("eligible_outside_queue"))
    wide = pd.concat(parts, axis=1).fillna(0).astype(np.int64)
    wide.index.name = "region"
    long = wide.reset_index().melt(id_vars="region", var_name="reason", value_name="persons")
    return long.sort_values(["region", "reason"], kind="stable").reset_index(drop=True)


def housing_audit_from_lake(lake, rules: HousingRules, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read the registries and persons (and families when they exist) and run the audit:
    (audit, eligible_outside_queue, summary)."""
    from family_pipeline.services.sources import family_members, golden_persons, registry_persons

    records = []
    for code in rules.queue_registries:
        rows = registry_persons(lake, code, ["region", "queue_date"])
        rows["registry"] = code
        records.append(rows)
    persons = golden_persons(lake)
    address = registry_persons(lake, "address_register", ["region", "registration", "registered_since"])
    population = registry_persons(lake, "gbd_fl", ["citizenship"])
    foreigners = registry_persons(lake, "foreigners_register", []).person_id.to_numpy(np.int64)
    kandas = registry_persons(lake, "kandas_register", []).person_id.to_numpy(np.int64)
    facts = person_facts(persons, address, population, foreigners, kandas, as_of)
    del persons, address, population, foreigners, kandas  # every frame is let go once used (whole-country reads)
    entries = queue_entries(pd.concat(records, ignore_index=True), facts.region, rules.queue_registry_regions)
    del records
    estate = registry_persons(lake, "gbd_rn_real_estate", ["cadastral_no", "kind", "acquired_date", "disposed_date"],
                              group="owner")
    deals = registry_persons(lake, "notary_deals", ["cadastral_no", "deal_date"], group="owner")
    kinds = estate.drop_duplicates("cadastral_no").set_index("cadastral_no").kind
    deals["kind"] = kinds.reindex(deals.cadastral_no).to_numpy(dtype=object)
    owners = residential_owners(estate, deals, rules, as_of)
    del estate, deals, kinds
    members = family_members(lake)
    audit = audit_queue(entries, facts, members, owners, rules, as_of)
    outside = eligible_outside_queue(facts, members, owners, entries.person_id.to_numpy(np.int64), rules, as_of)
    return audit, outside, audit_summary(audit, outside)
