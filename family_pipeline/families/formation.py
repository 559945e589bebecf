"""Family formation: every living resident placed in exactly one family, by documented rules.

Who is placed: a *resident* is a living golden person (``resolution/persons.alive``) known to the
population register (ГБД ФЛ) or the address register. Golden records made only of references in
other registries (fragments the linkage could not join to anybody) are not residents and are not
placed; their count is reported.

The rules, applied in this order (the rule that placed each member is kept in ``rule``):

1. ``marriage`` — spouses: a marriage record (ЗАГС) with both spouses alive and no divorce of
   that couple after the marriage date (neither on the marriage record nor in the divorce
   register). When a person has several such marriages, the **latest marriage wins** (the later
   civil-status event beats the older one); the older marriage is treated as ended.
2. ``cohabitation_shared_child`` — parents of a common child on a birth record, both alive,
   neither married to someone else, never divorced from each other and registered at the same
   address: a couple without a marriage record.
3. ``cohabitation_address`` — two adults of opposite sex registered at the same address, neither
   married nor a dependent child, with a plausible age difference (the man between
   ``cohabitation_min_gap`` and ``cohabitation_max_gap`` years older) who either share a surname
   (in its male/female forms) or are the only two residents of that address, and were never
   divorced from each other. Without a shared surname a third resident makes the address
   ambiguous and nobody is paired on it (lodgers share dwellings with other families but are
   families of their own); among several candidates the shared surname, then the age gap
   nearest ``cohabitation_usual_gap`` wins.
4. children — a person with a birth record (or a guardianship record) and a living parent is a
   dependent child when not married and either ``child_under_18``; ``child_student_18_23``:
   aged 18–23 and enrolled in full-time higher or vocational education; or
   ``child_disabled_dependent``: disabled (any age) and registered at a parent's address.
   A non-student of 19 forms a family of their own. The child goes to the family of the parents'
   couple; when the parents are not a couple, to the living parent registered at the child's
   address, else the mother (civil-status links beat co-residence; the address breaks ties).
   ``guardianship`` — a ward of a living guardian (guardianship register, the latest
   establishment wins) goes to the guardian's family instead of the parents'.
   A dependent child who is a parent places their own child in the same family.
5. ``single_parent`` — an adult with dependent children and no partner heads a family with them;
   ``one_person`` — everybody left is a one-person family.

One person is in exactly one family: unions are chosen one per person, a child is placed once,
and every resident not placed by rules 1–4 gets a family of their own.

The head is the husband (the man of a cohabiting couple), else the single parent or the single
person. ``family_id`` is a deterministic 63-bit mix of the head's person id. Everything is
vectorised over numpy/pandas columns; the inputs are at most a few rows per person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.families.sets import isin
from family_pipeline.families.sources import FormationInputs

__all__ = [
    "FamilyTables",
    "FormationRules",
    "RULES",
    "address_keys",
    "age_years",
    "family_ids",
    "has_flat_number",
    "form_families",
    "surname_stem",
]

RULES = ("marriage", "cohabitation_shared_child", "cohabitation_address", "child_under_18", "child_student_18_23",
         "child_disabled_dependent", "guardianship", "child_address", "single_parent", "one_person")
NONE = np.int64(-1)
ROLES = ("head", "spouse", "child", "single")
#: int8 codes of the rules and roles, held per person until the members' table is made
RULE = {r: np.int8(i) for i, r in enumerate(RULES)}
ROLE = {r: np.int8(i) for i, r in enumerate(ROLES)}
NO_RULE = np.int8(-1)
#: a flat number in an address ("кв. 12", "кв.12", "apt 12")
FLAT_PATTERN = r"(^| )(кв|apt) ?\d"  # on normalised text (see has_flat_number)


@dataclass(frozen=True)
class FormationRules:
    """Thresholds of the rules (``formation`` in ``seeds/family_features.yaml``)."""

    adult_age: int = 18
    student_max_age: int = 23
    cohabitation_min_gap: int = -5
    cohabitation_max_gap: int = 13
    cohabitation_usual_gap: int = 3
    parent_usual_age: int = 25
    max_dependency_passes: int = 4


@dataclass(frozen=True)
class FamilyTables:
    members: pd.DataFrame   # person_id, family_id, role, rule
    families: pd.DataFrame  # family_id, head_person_id, members, family_type, region, settlement_type
    stats: dict


# ------------------------------------------------------------------ small vectorised helpers
def age_years(birth: pd.Series | np.ndarray, on: dt.date) -> np.ndarray:
    """Whole years of age on a day (calendar-exact); -1 where the birth date is unknown."""
    b = pd.to_datetime(pd.Series(birth), errors="coerce")
    years = on.year - b.dt.year
    before = (b.dt.month > on.month) | ((b.dt.month == on.month) & (b.dt.day > on.day))
    age = (years - before.astype("int64")).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(age), -1, age).astype(np.int64)


def _arrow_text(values) -> pa.Array:
    """Text values (a pandas Series or array, numpy objects) as one Arrow string array."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = values
    elif hasattr(values, "__arrow_array__"):
        arr = pa.array(values)
    else:
        arr = pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.cast(pa.string())


def _per_distinct(values, fn) -> pa.Array:
    """``fn`` applied to the distinct values only, then spread back (names and addresses repeat)."""
    encoded = pc.dictionary_encode(_arrow_text(values))
    return pc.take(fn(encoded.dictionary), encoded.indices)


def _normalise(text: pa.Array) -> pa.Array:
    text = pc.utf8_lower(pc.fill_null(text, ""))
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"[\s.,]+", " "))


def _normal_text(values) -> pa.Array:
    """Lower case, runs of spaces and punctuation as one space, trimmed ('' when missing)."""
    return pc.fill_null(_per_distinct(values, _normalise), "")


def _keys(region, text: pa.Array) -> pa.Array:
    reg = pc.fill_null(_arrow_text(region), "")
    return pc.if_else(pc.equal(text, ""), "", pc.binary_join_element_wise(reg, text, "|"))


def address_keys(region, address) -> np.ndarray:
    """Comparable address: region + normalised text ('' when the address is unknown)."""
    keys = _keys(region, _normal_text(address))
    return np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object)


def has_flat_number(address) -> np.ndarray:
    """True where an address names a flat ("кв. 12", "apt 12")."""
    return _flat(_normal_text(address))


def _flat(text: pa.Array) -> np.ndarray:
    flat = _per_distinct(text, lambda d: pc.match_substring_regex(d, FLAT_PATTERN))
    return pc.fill_null(flat, False).to_numpy(zero_copy_only=False).astype(bool)


def _stem(last_name) -> pa.Array:
    def fold(names: pa.Array) -> pa.Array:
        return pc.replace_substring_regex(_normalise(names), r"(ов|ев|ёв|ин|ын)а$", r"\1")

    return pc.fill_null(_per_distinct(last_name, fold), "")


def surname_stem(last_name) -> np.ndarray:
    """A surname folded to the form shared by both sexes (Иванова/Иванов → иванов)."""
    return np.asarray(_stem(last_name).to_numpy(zero_copy_only=False), dtype=object)


def _sorted_codes(text: pa.Array) -> np.ndarray:
    """Codes of text values in the values' sort order (as ``pd.factorize(sort=True)``)."""
    encoded = pc.dictionary_encode(text)
    # Arrow sorts UTF-8 bytewise, which is code point order (Python's), with no object per value
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)]


def family_ids(head_person_id: np.ndarray) -> np.ndarray:
    """A deterministic, non-negative 63-bit id per head (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        z = head_person_id.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z & np.uint64(0x7FFFFFFFFFFFFFFF)).astype(np.int64)


def _one_per_person(pairs: pd.DataFrame, order: list[str], ascending: list[bool]) -> pd.DataFrame:
    """Keep pairs (a, b) so that each person is in at most one: the first by ``order`` wins for
    both of its members (repeated until no pair is left that both members still prefer)."""
    pairs = pairs.sort_values(order + ["a", "b"], ascending=ascending + [True, True], kind="mergesort")
    kept = []
    taken = np.zeros(0, dtype=np.int64)
    remaining = pairs
    while len(remaining):
        remaining = remaining[~remaining.a.isin(taken) & ~remaining.b.isin(taken)]
        # a pair is kept when it is the first choice of both of its members among what is left
        both = remaining[~remaining.a.duplicated() & ~remaining.b.duplicated()]
        if both.empty:
            break
        kept.append(both)
        taken = np.concatenate([taken, both.a.to_numpy(), both.b.to_numpy()])
    if not kept:
        return pairs.iloc[0:0]
    return pd.concat(kept, ignore_index=True)


def _address_text(res: pd.DataFrame, addresses: pd.DataFrame) -> tuple[pa.Array, pa.Array]:
    """Each resident's region and normalised address: the text of the latest registration in
    the address register (else the golden record's), in the golden record's region (survivorship
    over every registry corrects a registration exported with a wrong region)."""
    adr = addresses.sort_values(["person_id", "registered_since", "record_id"], ascending=[True, False, False],
                                kind="mergesort", na_position="last").drop_duplicates("person_id")
    adr = adr.set_index("person_id").reindex(res.person_id.to_numpy(np.int64))
    region = pc.coalesce(_arrow_text(res.region), _arrow_text(adr.region))
    text = _normal_text(pc.coalesce(_arrow_text(adr.address), _arrow_text(res.address)))
    return region, text


def _residents(golden: pd.DataFrame) -> pd.DataFrame:
    """The living residents, by person id: the persons formation places."""
    res = golden[golden.alive.astype(bool) & golden.resident.astype(bool)].sort_values("person_id", kind="mergesort")
    return res.reset_index(drop=True)


# ------------------------------------------------------------------ formation by parts
#: residents formed at a time: a national country is formed a part at a time (``form_families``)
PART_RESIDENTS = 2_000_000

#: residents whose addresses are made at a time by ``_resident_addresses``
ADDRESS_SLICE = 1 << 20


@dataclass(frozen=True)
class _Addresses:
    """Per resident: an address code (equal codes are equal addresses, -1 where unknown), whether
    the address is a house (no flat number), and the region."""

    code: np.ndarray
    house: np.ndarray
    region: pa.Array

    def take(self, rows: np.ndarray) -> _Addresses:
        return _Addresses(self.code[rows], self.house[rows], self.region.take(pa.array(rows)))


def _resident_addresses(res: pd.DataFrame, addresses: pd.DataFrame) -> _Addresses:
    """The addresses of the residents (``res``, sorted by person id), made a slice of residents
    (a range of person ids) at a time: the address text of the whole country is never held, only
    its distinct keys (``_keys``), numbered in order of first appearance."""
    pid = res.person_id.to_numpy(np.int64)
    who = addresses.person_id.to_numpy(np.int64)
    code = np.full(len(pid), -1, dtype=np.int64)
    house = np.zeros(len(pid), dtype=bool)
    regions = [pa.array([], pa.string())]
    known = pa.array([], pa.string())  # every distinct key so far, in order of first appearance
    for s in range(0, len(pid), ADDRESS_SLICE):
        ids = pid[s:s + ADDRESS_SLICE]
        region, text = _address_text(res.iloc[s:s + len(ids)], addresses[(who >= ids[0]) & (who <= ids[-1])])
        key = _keys(region, text)
        no_key = pc.equal(key, "").to_numpy(zero_copy_only=False)
        encoded = pc.dictionary_encode(key)
        distinct = encoded.dictionary
        known = pa.concat_arrays([known, distinct.filter(pc.invert(pc.is_in(distinct, value_set=known)))])
        number = pc.index_in(distinct, value_set=known).to_numpy(zero_copy_only=False).astype(np.int64)
        code[s:s + len(ids)] = np.where(no_key, -1, number[encoded.indices.to_numpy(zero_copy_only=False)])
        house[s:s + len(ids)] = ~_flat(text) & ~no_key
        regions.append(region)
    return _Addresses(code, house, pa.concat_arrays(regions))


def _related(inputs: FormationInputs, res: pd.DataFrame, code: np.ndarray) -> np.ndarray:
    """Per resident (row of ``res``), the smallest row of the residents it is related to, directly
    or not: through a marriage record, a birth record (child, mother, father), a guardianship
    record, or an address they share (``code``, from ``_resident_addresses``). Every rule reads
    only such relations, so each of these groups is formed into the same families whether formed
    alone or with the country."""
    from family_pipeline.resolution.clustering import components

    pid = res.person_id.to_numpy(np.int64)
    n = len(pid)
    idx = pd.Index(pid)

    def ix(ids) -> np.ndarray:
        return idx.get_indexer(np.asarray(ids, dtype=np.int64))

    at = np.flatnonzero(code >= 0)
    at = at[np.argsort(code[at], kind="stable")]
    same = code[at[1:]] == code[at[:-1]]
    ends = [(at[:-1][same], at[1:][same])]  # consecutive residents of one address
    del at, same
    relations = ((inputs.marriages, "husband_id", "wife_id"), (inputs.births, "child_id", "mother_id"),
                 (inputs.births, "child_id", "father_id"), (inputs.guardianship, "child_id", "guardian_id"))
    for frame, one, other in relations:
        a, b = ix(frame[one]), ix(frame[other])
        ok = (a >= 0) & (b >= 0)
        ends.append((a[ok], b[ok]))
    return components(n, np.concatenate([e[0] for e in ends]), np.concatenate([e[1] for e in ends]))


def _parts(inputs: FormationInputs, res: pd.DataFrame, code: np.ndarray, size: int) -> list[np.ndarray]:
    """The residents' person ids cut into parts of about ``size`` (sorted), whole groups of
    related residents each (``_related``; a group larger than ``size`` is a part of its own)."""
    group = _related(inputs, res, code)
    order = np.argsort(group, kind="stable")
    group = group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    pid = res.person_id.to_numpy(np.int64)
    parts, first, filled = [], 0, 0  # first: the part's first group
    for k in range(len(starts)):
        if filled and filled + ends[k] - starts[k] > size:
            parts.append(np.sort(pid[order[starts[first]:starts[k]]]))
            first, filled = k, 0
        filled += ends[k] - starts[k]
    parts.append(np.sort(pid[order[starts[first]:]]))
    return parts


def _part_inputs(inputs: FormationInputs, ids: np.ndarray) -> FormationInputs:
    """What formation reads about the residents ``ids`` (a part from ``_parts``): their golden
    records and every registry row naming one of them."""
    def of(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
        keep = np.zeros(len(frame), bool)
        for c in columns:
            keep |= isin(frame[c].to_numpy(np.int64), ids)
        return frame[keep]

    return replace(
        inputs,
        persons=of(inputs.persons, "person_id"),
        marriages=of(inputs.marriages, "husband_id", "wife_id"),
        divorces=of(inputs.divorces, "husband_id", "wife_id"),
        births=of(inputs.births, "child_id", "mother_id", "father_id"),
        guardianship=of(inputs.guardianship, "child_id", "guardian_id"),
        students=of(inputs.students, "person_id"),
        disabled=of(inputs.disabled, "person_id"),
        addresses=of(inputs.addresses, "person_id"),
        rural=of(inputs.rural, "person_id"),
    )


def _sum_stats(parts: list[dict]) -> dict:
    def add(values: list):
        if isinstance(values[0], dict):
            return {k: add([v[k] for v in values]) for k in values[0]}
        return sum(values) if isinstance(values[0], int) else values[0]

    return add(parts)


def form_families(inputs: FormationInputs, rules: FormationRules | None = None,
                  part_residents: int | None = None) -> FamilyTables:
    """Every living resident in one family (the rules are in this module's docstring).

    More than ``part_residents`` residents (default ``PART_RESIDENTS``) are formed a part at a
    time: parts of related residents (``_parts``), each formed alone (``_form``) with the
    registry rows naming its residents and the addresses made once for every resident, so the
    arrays of one part are held at a time instead of every resident's. The tables are the ones
    the whole country formed at once gives."""
    rules = rules or FormationRules()
    size = PART_RESIDENTS if part_residents is None else part_residents
    golden = inputs.persons
    res = _residents(golden)
    if len(res) <= size:
        del res
        return _form(inputs, rules)
    address = _resident_addresses(res, inputs.addresses)
    parts = _parts(inputs, res, address.code, size)
    pid = res.person_id.to_numpy(np.int64)
    del res
    # a part forms its residents in person-id order, so its addresses are their rows in ``pid``
    tables = [_form(_part_inputs(inputs, ids), rules, address.take(np.searchsorted(pid, ids))) for ids in parts]
    members = pd.concat([t.members for t in tables], ignore_index=True)
    members = members.sort_values(["family_id", "person_id"], kind="mergesort").reset_index(drop=True)
    families = pd.concat([t.families for t in tables], ignore_index=True)
    families = families.sort_values(["family_id", "head_person_id"], kind="mergesort").reset_index(drop=True)
    stats = _sum_stats([t.stats for t in tables])
    stats["golden_alive_not_resident"] = int((golden.alive.astype(bool) & ~golden.resident.astype(bool)).sum())
    return FamilyTables(members=members, families=families, stats=stats)


# ------------------------------------------------------------------ formation
def _form(inputs: FormationInputs, rules: FormationRules, address: _Addresses | None = None) -> FamilyTables:
    on = inputs.as_of
    golden = inputs.persons
    res = _residents(golden)
    pid = res.person_id.to_numpy(np.int64)
    n = len(pid)
    idx = pd.Series(np.arange(n, dtype=np.int64), index=pid)

    def ix(ids: pd.Series | np.ndarray) -> np.ndarray:
        """Row index of person ids among the residents, -1 when not a living resident."""
        return idx.reindex(np.asarray(ids, dtype=np.int64)).fillna(-1).to_numpy(np.int64)

    age = age_years(res.birth_date, on)
    male = res.sex.astype("object").eq("M").to_numpy()
    female = res.sex.astype("object").eq("F").to_numpy()

    # a village family's head lives in a house: an address with no flat number (used at the end)
    address = _resident_addresses(res, inputs.addresses) if address is None else address
    addr_code, house, region = address.code, address.house, address.region
    del address
    # surnames as codes: equal codes are equal stems; an empty stem matches nobody
    stem_text = _stem(res.last_name)
    stem = _sorted_codes(stem_text)
    stem[pc.equal(stem_text, "").to_numpy(zero_copy_only=False)] = -1
    del stem_text

    student = np.zeros(n, bool)
    st = ix(inputs.students.person_id[inputs.students.full_time.astype(bool)])
    student[st[st >= 0]] = True
    disabled = np.zeros(n, bool)
    ds = ix(inputs.disabled.person_id[pd.to_numeric(inputs.disabled.disability_group, errors="coerce").fillna(0) > 0])
    disabled[ds[ds >= 0]] = True

    # ---------------------------------------------------------------- 1. marriages
    mar = inputs.marriages
    div = inputs.divorces
    last_div = (pd.concat([div[["husband_id", "wife_id", "divorce_date"]],
                           mar.loc[mar.divorce_date.notna(), ["husband_id", "wife_id", "divorce_date"]]])
                .groupby(["husband_id", "wife_id"], sort=False).divorce_date.max().rename("last_divorce").reset_index())
    m = mar[(mar.husband_id >= 0) & (mar.wife_id >= 0) & (mar.husband_id != mar.wife_id)]
    m = m.merge(last_div, on=["husband_id", "wife_id"], how="left")
    ended = m.divorce_date.notna() | (m.last_divorce.notna() & (m.marriage_date.isna() | (m.last_divorce >= m.marriage_date)))
    m = m[~ended.to_numpy()]
    m = pd.DataFrame({"a": ix(m.husband_id), "b": ix(m.wife_id), "date": m.marriage_date.to_numpy()})
    m = m[(m.a >= 0) & (m.b >= 0)]  # a pair recorded twice is kept once by _one_per_person
    married = _one_per_person(m.assign(date=m.date.fillna(pd.Timestamp.min)), ["date"], [False])

    partner = np.full(n, NONE)
    union_rule = np.full(n, NO_RULE, dtype=np.int8)  # codes into RULES: no text per person
    partner[married.a.to_numpy()] = married.b.to_numpy()
    partner[married.b.to_numpy()] = married.a.to_numpy()
    union_rule[married.a.to_numpy()] = RULE["marriage"]
    union_rule[married.b.to_numpy()] = RULE["marriage"]
    ever_divorced = pd.MultiIndex.from_arrays([ix(last_div.husband_id), ix(last_div.wife_id)])

    # ---------------------------------------------------------------- 2. cohabitation with a common child
    births = inputs.births
    b = pd.DataFrame({"child": ix(births.child_id), "mother": ix(births.mother_id), "father": ix(births.father_id)})
    # one birth record per child: the one naming most living parents, then the lowest record id
    b["known"] = (b.mother >= 0).astype(np.int64) + (b.father >= 0).astype(np.int64)
    b["record_id"] = births.record_id.astype("object").fillna("").astype(str).to_numpy()
    b = b[b.child >= 0].sort_values(["child", "known", "record_id"], ascending=[True, False, True], kind="mergesort")
    b = b.drop_duplicates("child")
    cp = b[(b.mother >= 0) & (b.father >= 0)]
    cp = cp.groupby(["father", "mother"], sort=True).size().rename("children").reset_index()
    cp = cp.rename(columns={"father": "a", "mother": "b"})
    free = (partner[cp.a.to_numpy()] < 0) & (partner[cp.b.to_numpy()] < 0)
    not_divorced = ~pd.MultiIndex.from_arrays([cp.a.to_numpy(), cp.b.to_numpy()]).isin(ever_divorced)
    ca, cb = addr_code[cp.a.to_numpy()], addr_code[cp.b.to_numpy()]
    same_addr = (ca == cb) | (ca < 0) | (cb < 0)
    cp = cp[free & not_divorced & same_addr]
    cohab = _one_per_person(cp, ["children"], [False])
    partner[cohab.a.to_numpy()] = cohab.b.to_numpy()
    partner[cohab.b.to_numpy()] = cohab.a.to_numpy()
    union_rule[cohab.a.to_numpy()] = RULE["cohabitation_shared_child"]
    union_rule[cohab.b.to_numpy()] = RULE["cohabitation_shared_child"]

    # ---------------------------------------------------------------- 4a. who is a dependent child
    grd = inputs.guardianship
    g = pd.DataFrame({"child": ix(grd.child_id), "guardian": ix(grd.guardian_id), "date": grd.established_date.to_numpy()})
    g = g[(g.child >= 0) & (g.guardian >= 0) & (g.child != g.guardian)]
    g = g.sort_values(["child", "date", "guardian"], ascending=[True, False, True], kind="mergesort",
                      na_position="last").drop_duplicates("child")
    mother = np.full(n, NONE)
    father = np.full(n, NONE)
    mother[b.child.to_numpy()] = b.mother.to_numpy()
    father[b.child.to_numpy()] = b.father.to_numpy()
    guardian = np.full(n, NONE)
    guardian[g.child.to_numpy()] = g.guardian.to_numpy()
    has_parent = (mother >= 0) | (father >= 0) | (guardian >= 0)
    at_parent_address = np.zeros(n, bool)
    for par in (mother, father, guardian):
        ok = par >= 0
        at_parent_address[ok] |= (addr_code[ok] >= 0) & (addr_code[ok] == addr_code[par[ok]])
    minor = (age >= 0) & (age < rules.adult_age)
    young_student = (age >= rules.adult_age) & (age <= rules.student_max_age) & student
    disabled_dep = disabled & at_parent_address & ~minor & ~young_student
    dependent = has_parent & (partner < 0) & (minor | young_student | disabled_dep)
    child_rule = np.where(minor, RULE["child_under_18"],
                          np.where(young_student, RULE["child_student_18_23"], RULE["child_disabled_dependent"]))
    child_rule = np.where(guardian >= 0, RULE["guardianship"], child_rule).astype(np.int8)

    # ---------------------------------------------------------------- 3. cohabitation at one address (no child)
    free_adult = (partner < 0) & ~dependent & (age >= rules.adult_age) & (addr_code >= 0) & (male | female)
    residents_at = np.bincount(addr_code[addr_code >= 0], minlength=max(int(addr_code.max()) + 1, 1))
    men = pd.DataFrame({"a": np.flatnonzero(free_adult & male)})
    men["addr"] = addr_code[men.a.to_numpy()]
    women = pd.DataFrame({"b": np.flatnonzero(free_adult & female)})
    women["addr"] = addr_code[women.b.to_numpy()]
    cand = men.merge(women, on="addr")
    if len(cand):
        a, bb = cand.a.to_numpy(), cand.b.to_numpy()
        gap = age[a] - age[bb]
        same_name = (stem[a] == stem[bb]) & (stem[a] >= 0)
        alone = residents_at[cand.addr.to_numpy()] == 2
        divorced = pd.MultiIndex.from_arrays([a, bb]).isin(ever_divorced)
        keep = (gap >= rules.cohabitation_min_gap) & (gap <= rules.cohabitation_max_gap) & (same_name | alone) & ~divorced
        cand = cand[keep].assign(named=same_name[keep].astype(np.int64), gap=np.abs(gap[keep] - rules.cohabitation_usual_gap))
        pairs = _one_per_person(cand[["a", "b", "named", "gap"]], ["named", "gap"], [False, True])
        man, woman = pairs.a.to_numpy(), pairs.b.to_numpy()
        partner[man], partner[woman] = woman, man
        union_rule[man] = RULE["cohabitation_address"]
        union_rule[woman] = RULE["cohabitation_address"]

    # ---------------------------------------------------------------- 4b. place every dependent child
    # anchor: the person whose family one belongs to (self for a head or a single person)
    in_union = partner >= 0
    mate = np.maximum(partner, 0)
    # the man heads a couple; a same-sex record (a data error) is headed by the lower row
    follows_partner = in_union & ((~male & male[mate]) | ((male == male[mate]) & (partner < np.arange(n))))
    anchor = np.arange(n, dtype=np.int64)
    anchor[follows_partner] = partner[follows_partner]

    kids = np.flatnonzero(dependent)
    mo, fa, gu = mother[kids], father[kids], guardian[kids]
    a_mo = np.where(mo >= 0, anchor[np.maximum(mo, 0)], NONE)
    a_fa = np.where(fa >= 0, anchor[np.maximum(fa, 0)], NONE)
    kid_addr = addr_code[kids]
    mo_here = (mo >= 0) & (kid_addr >= 0) & (addr_code[np.maximum(mo, 0)] == kid_addr)
    fa_here = (fa >= 0) & (kid_addr >= 0) & (addr_code[np.maximum(fa, 0)] == kid_addr)
    to = np.select(
        [gu >= 0, (a_mo >= 0) & (a_mo == a_fa), a_fa < 0, a_mo < 0, fa_here & ~mo_here],
        [anchor[np.maximum(gu, 0)], a_mo, a_mo, a_fa, a_fa],
        default=a_mo,
    )
    placed = np.arange(n, dtype=np.int64)
    placed[in_union] = anchor[in_union]
    placed[kids] = to
    # a minor with no birth or guardianship record joins an adult's family at the same address
    # (the one sharing the child's surname first, then the nearest in age to a parent's 25)
    lone_minor = minor & ~has_parent & (partner < 0) & (addr_code >= 0)
    by_address = np.zeros(n, bool)
    if lone_minor.any():
        kids_alone = pd.DataFrame({"k": np.flatnonzero(lone_minor)})
        kids_alone["addr"] = addr_code[kids_alone.k.to_numpy()]
        adults = pd.DataFrame({"p": np.flatnonzero((age >= rules.adult_age) & (addr_code >= 0) & ~dependent)})
        adults["addr"] = addr_code[adults.p.to_numpy()]
        hosts = kids_alone.merge(adults, on="addr")
        if len(hosts):
            k, h = hosts.k.to_numpy(), hosts.p.to_numpy()
            hosts["named"] = ((stem[k] == stem[h]) & (stem[k] >= 0)).astype(np.int64)
            hosts["gap"] = np.abs(age[h] - age[k] - rules.parent_usual_age)
            hosts = hosts.sort_values(["k", "named", "gap", "p"], ascending=[True, False, True, True], kind="mergesort")
            hosts = hosts.drop_duplicates("k")
            placed[hosts.k.to_numpy()] = anchor[hosts.p.to_numpy()]
            by_address[hosts.k.to_numpy()] = True
    # a dependent child's own child, or a ward of a dependent child, follows them: resolve chains
    for _ in range(rules.max_dependency_passes):
        nxt = placed[placed]
        if np.array_equal(nxt, placed):
            break
        placed = nxt
    cyclic = placed[placed] != placed
    placed[cyclic] = np.arange(n)[cyclic]

    # ---------------------------------------------------------------- roles, rules, families
    size = np.bincount(placed, minlength=n)
    is_head = placed == np.arange(n)
    has_child = np.zeros(n, bool)
    child_member = (dependent | by_address) & ~cyclic & (placed != np.arange(n))
    has_child[placed[child_member]] = True
    role = np.where(is_head, np.where(size == 1, ROLE["single"], ROLE["head"]),
                    np.where(in_union & (placed == anchor), ROLE["spouse"], ROLE["child"])).astype(np.int8)
    rule = np.where(in_union & (placed == anchor), union_rule, NO_RULE)
    rule = np.where(child_member, np.where(by_address, RULE["child_address"], child_rule), rule)
    lone_head = is_head & ~in_union
    rule = np.where(lone_head & has_child, RULE["single_parent"], rule)
    rule = np.where(lone_head & ~has_child & (size == 1), RULE["one_person"], rule)
    rule = np.where(rule == NO_RULE, RULE["one_person"], rule).astype(np.int8)  # left alone by a broken chain

    head_pid = pid[placed]
    fid = family_ids(head_pid)
    members = pd.DataFrame({"person_id": pid, "family_id": fid, "role": np.array(ROLES, dtype=object)[role],
                            "rule": np.array(RULES, dtype=object)[rule]})
    members = members.sort_values(["family_id", "person_id"], kind="mergesort").reset_index(drop=True)

    heads = np.flatnonzero(is_head)
    couple = in_union[heads] & (partner[heads] >= 0) & (placed[np.maximum(partner[heads], 0)] == heads)
    kids_in = has_child[heads]
    ftype = np.select([size[heads] == 1, couple & kids_in, couple, kids_in], ["single", "couple_kids", "couple", "single_parent"],
                      default="single")
    # a village family: a member is in a rural household book, or the head's address is a house
    # with no flat number (city dwellings are registered as flats)
    in_book = np.zeros(n, bool)
    rb = ix(inputs.rural.person_id)
    in_book[rb[rb >= 0]] = True
    village = np.bincount(placed[in_book], minlength=n) > 0
    village |= house
    families = pd.DataFrame({
        "family_id": fid[heads],
        "head_person_id": pid[heads],
        "members": size[heads].astype(np.int64),
        "family_type": ftype.astype(object),
        "region": np.asarray(region.take(pa.array(heads)).to_numpy(zero_copy_only=False), dtype=object),
        "settlement_type": np.where(village[heads], "village", "city").astype(object),
    }).sort_values("family_id", kind="mergesort").reset_index(drop=True)

    stats = {
        "residents": int(n),
        "golden_alive_not_resident": int((golden.alive.astype(bool) & ~golden.resident.astype(bool)).sum()),
        "families": int(len(families)),
        "unions": {"marriage": int(len(married)), "cohabitation_shared_child": int(len(cohab)),
                   "cohabitation_address": int((union_rule == RULE["cohabitation_address"]).sum() // 2)},
        "members_by_rule": {r: int((rule == RULE[r]).sum()) for r in RULES},
        "minors_alone": int((minor & (size == 1)).sum()),
        "as_of": on.isoformat(),
    }
    return FamilyTables(members=members, families=families, stats=stats)
