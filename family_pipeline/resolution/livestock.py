"""Animal records linked into animals, and the animals that should not exist as registered.

Every animal registry of the catalog refers to animals by ear tag (``animal.*`` roles). Tags are
typed by hand, so they arrive lower-cased, spaced, without their "KZ" prefix or with one digit
wrong, missing or swapped with its neighbour. :func:`link_animals` groups records by normalised
tag and attaches a lone mistyped record to the tag one edit away that the same owner (by IIN or
by name) or the same birth date supports. :func:`livestock_anomalies` then flags

* **virtual** animals: one animal registered in two or more settlements at once (subsidies paid
  twice for the same head of cattle, vaccinations that never happened);
* **phantom** animals: no record names a living owner the population register knows.

Everything is columnar (pyarrow/numpy/pandas); Python runs per distinct value only where a
library offers nothing columnar: name keys (once per distinct name) and the keyed hash of the
owners of flagged animals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rapidfuzz import process
from rapidfuzz.distance import OSA

from family_pipeline.catalog import Catalog, RegistrySpec
from family_pipeline.lib.alphabet import KAZAKH_TO_RUSSIAN
from family_pipeline.lib.identifiers import digits_matrix, valid_iin_mask
from family_pipeline.lib.lake import Lake
from family_pipeline.lib.pseudonym import pseudonyms
from family_pipeline.resolution.blocking import dictionary_codes
from family_pipeline.resolution.normalize import name_codes

__all__ = [
    "ANIMAL_RECORD_SCHEMA",
    "ANOMALY_INPUT",
    "ANOMALY_SCHEMA",
    "animal_records",
    "link_animals",
    "livestock_anomalies",
    "livestock_summary",
    "normalize_settlement",
    "normalize_tag",
    "person_name_key",
]

ANIMAL_RECORD_SCHEMA = pa.schema([
    ("registry", pa.string()),
    ("record_id", pa.string()),
    ("tag", pa.string()),
    ("tag_norm", pa.string()),
    ("species", pa.string()),
    ("sex", pa.string()),
    ("birth_date", pa.date32()),
    ("settlement", pa.string()),
    ("settlement_norm", pa.string()),
    ("region", pa.string()),
    ("owner_iin", pa.string()),
    ("owner_iin_valid", pa.bool_()),
    #: the owner's surname and first name as one comparable key ("aigerim|abenova", the two
    #: parts in alphabetical order), to find an owner in the population register when the IIN on
    #: the record is wrong
    ("owner_name_key", pa.string()),
    #: the record names its owner; null when the registry does not record owners' names
    ("owner_named", pa.bool_()),
])
ANOMALY_SCHEMA = pa.schema([
    ("animal_key", pa.string()),
    ("kind", pa.string()),
    #: why a phantom: owner_dead, owner_unknown (valid IIN not in gbd_fl), owner_invalid,
    #: owner_missing; null for virtual animals
    ("reason", pa.string()),
    ("species", pa.string()),
    ("region", pa.string()),
    ("settlement", pa.string()),
    ("settlements", pa.list_(pa.string())),
    ("n_settlements", pa.int64()),
    ("registries", pa.list_(pa.string())),
    ("records", pa.int64()),
    ("owner_key", pa.string()),
])
SUMMARY_SCHEMA = pa.schema([
    ("region", pa.string()),
    ("settlement", pa.string()),
    ("kind", pa.string()),
    ("animals", pa.int64()),
])
#: the country prefix of an ear tag number
TAG_PREFIX = "KZ"
#: tags longer than this are not searched for one-edit neighbours (garbage, not typos)
MAX_FUZZY_TAG = 24
#: registries whose death dates are believed
DEATH_SOURCES = ("gbd_fl", "zags_deaths")
POPULATION_REGISTER = "gbd_fl"
OWNER_KEY_LENGTH = 16
#: edits (OSA distance) between two owner name keys that still name one person when the IIN on
#: the register's side is broken (see ``_behind_broken_iin``)
OWNER_NAME_EDITS = 2
PHANTOM_REASONS = ("owner_dead", "owner_unknown", "owner_invalid", "owner_missing")
#: the columns of the linked animal records that :func:`livestock_anomalies` reads
ANOMALY_INPUT = ["registry", "species", "settlement", "settlement_norm", "region", "owner_iin", "owner_iin_valid",
                 "owner_name_key", "owner_named", "animal_key"]


# ---------------------------------------------------------------------------- normalising
def normalize_tag(tags: pa.Array) -> pa.Array:
    """'kz 0001-0009 5219', '000100095219' → 'KZ000100095219': upper case, only A-Z and 0-9,
    the "KZ" prefix restored on a tag that starts with a digit; empty → null."""
    text = pc.replace_substring_regex(pc.utf8_upper(tags.cast(pa.string())), r"[^A-Z0-9]", "")
    bare = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]"), False)
    text = pc.if_else(bare, pc.binary_join_element_wise(TAG_PREFIX, text, ""), text)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def normalize_settlement(names: pa.Array) -> pa.Array:
    """'Ақтоғай', 'Актогай ', 'АКТОГАЙ' → 'актогай': lower case, Kazakh letters folded to the
    Russian ones a cp1251 export writes, ё → е, only letters and digits; empty → null."""
    text = pc.utf8_lower(names.cast(pa.string()))
    for kazakh, russian in KAZAKH_TO_RUSSIAN.items():
        if kazakh.islower():
            text = pc.replace_substring(text, kazakh, russian)
    text = pc.replace_substring(text, "ё", "е")
    text = pc.replace_substring_regex(text, r"[^\p{L}\p{N}]", "")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def person_name_key(last: pa.Array, first: pa.Array) -> pa.Array:
    """'Әбенова', 'Айгерім' → 'aigerim|abenova' (see ``name_key``): the two parts in
    alphabetical order, so a surname written in the first-name field still meets its person;
    null unless both are known. Keys are computed once per distinct name, and rows reach them
    through Arrow's dictionary codes: no Python string per row (two per row of the population
    register, 20M rows at 20M persons)."""
    parts = []
    for names in (last, first):
        value, distinct = dictionary_codes(names.cast(pa.string()))
        codes, keys = name_codes(distinct.to_numpy(zero_copy_only=False))
        key = np.where(value >= 0, codes[np.maximum(value, 0)], -1) if len(codes) else np.full(len(value), -1)
        parts.append(pc.take(pa.array(keys, pa.string()), pa.array(key, mask=key < 0)) if len(keys)
                     else pa.nulls(len(value), pa.string()))
    return pc.binary_join_element_wise(pc.min_element_wise(parts[0], parts[1], skip_nulls=False),
                                       pc.max_element_wise(parts[0], parts[1], skip_nulls=False), "|")


def _list_element_or_null(lists: pa.Array, i: int) -> pa.Array:
    long_enough = pc.fill_null(pc.greater(pc.list_value_length(lists), i), False)
    safe = pc.if_else(long_enough, lists, pa.scalar([""] * (i + 1), lists.type))
    return pc.if_else(long_enough, pc.list_element(safe, i), pa.scalar(None, pa.string()))


# ---------------------------------------------------------------------------- records
def registry_animal_records(spec: RegistrySpec, clean: pa.Table) -> pa.Table:
    """The animal references of one registry's clean table."""
    n = clean.num_rows
    animal = spec.role_columns("animal")
    owner = spec.role_columns("owner")
    iin = animal.get("owner_iin") or owner.get("iin")

    def column(name: str | None, type_: pa.DataType) -> pa.Array:
        return pa.nulls(n, type_) if name is None else clean.column(name).combine_chunks().cast(type_)

    tag = column(animal.get("tag"), pa.string())
    settlement = column(animal.get("settlement"), pa.string())
    if "last_name" in owner and "first_name" in owner:
        last, first = column(owner["last_name"], pa.string()), column(owner["first_name"], pa.string())
    elif "full_name" in owner:
        words = pc.split_pattern(pc.utf8_trim_whitespace(column(owner["full_name"], pa.string())), " ", max_splits=2)
        last, first = pc.list_element(words, 0), _list_element_or_null(words, 1)
    else:
        last = first = pa.nulls(n, pa.string())
    name_key = person_name_key(last, first)
    named = pc.is_valid(name_key) if ("full_name" in owner or "last_name" in owner) else pa.nulls(n, pa.bool_())
    valid = clean.column(f"{iin}_valid").combine_chunks() if iin and f"{iin}_valid" in clean.column_names \
        else pa.nulls(n, pa.bool_())
    return pa.table({
        "registry": pa.array(np.full(n, spec.code, dtype=object), pa.string()),
        "record_id": column(spec.record_id, pa.string()),
        "tag": tag,
        "tag_norm": normalize_tag(tag),
        "species": column(animal.get("species"), pa.string()),
        "sex": column(animal.get("sex"), pa.string()),
        "birth_date": column(animal.get("birth_date"), pa.date32()),
        "settlement": settlement,
        "settlement_norm": normalize_settlement(settlement),
        "region": column(animal.get("region"), pa.string()),
        "owner_iin": column(iin, pa.string()),
        "owner_iin_valid": valid,
        "owner_name_key": name_key,
        "owner_named": named,
    }, schema=ANIMAL_RECORD_SCHEMA)


def animal_records(lake: Lake, catalog: Catalog) -> pa.Table:
    """Every animal reference of every ingested animal registry, in one table."""
    tables = []
    for spec in catalog.registries:
        if spec.has_animals and lake.table("registries", spec.code).exists():
            tables.append(registry_animal_records(spec, lake.read("registries", spec.code)))
    return pa.concat_tables(tables) if tables else ANIMAL_RECORD_SCHEMA.empty_table()


# ---------------------------------------------------------------------------- linking
def _codes(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Dense int64 codes of a column, -1 for null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.dictionary_encode(values).indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_BASE = np.uint64(0x100000001B3)  # odd, so invertible modulo 2**64
_BASE_INV = np.uint64(pow(int(_BASE), -1, 2**64))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads structured integers over 64 bits."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _deletion_hashes(tags: pa.Array):
    """For distinct ASCII tags: (full-string hash, generator of (position, hash with that one
    character deleted)). Polynomial hashes modulo 2**64: del_i = prefix_i + (total -
    prefix_{i+1}) / base, so each position costs one pass over the tags, not a copy of them."""
    tags = tags.cast(pa.string())
    offsets = np.frombuffer(tags.buffers()[1], dtype=np.int32)[tags.offset: tags.offset + len(tags) + 1].astype(np.int64)
    data = np.frombuffer(tags.buffers()[2], dtype=np.uint8) if len(tags) else np.zeros(0, np.uint8)
    length = np.diff(offsets)
    width = int(min(length.max(initial=0), MAX_FUZZY_TAG))

    def char(i: int) -> np.ndarray:
        inside = length > i
        out = np.zeros(len(length), np.uint64)
        out[inside] = data[offsets[:-1][inside] + i]
        return out

    with np.errstate(over="ignore"):
        power = np.uint64(1)
        total = np.zeros(len(length), np.uint64)
        for i in range(width):
            total += char(i) * power
            power *= _BASE

    def deletions():
        with np.errstate(over="ignore"):
            prefix = np.zeros(len(length), np.uint64)
            power = np.uint64(1)
            for i in range(width):
                nxt = prefix + char(i) * power
                yield i, length > i, prefix + (total - nxt) * _BASE_INV
                prefix = nxt
                power *= _BASE

    return total, length <= MAX_FUZZY_TAG, deletions()


def _join(left_key: np.ndarray, left_id: np.ndarray,
          right_key: np.ndarray, right_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equi-join of two (key, id) lists: every (left id, right id) with equal keys. The left
    side is the small one: the right is first cut to the keys it has (a hash lookup)."""
    if len(left_key) == 0 or len(right_key) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    hit = pd.Series(right_key).isin(left_key).to_numpy()
    right_key, right_id = right_key[hit], right_id[hit]
    m = pd.DataFrame({"k": left_key, "a": left_id}).merge(pd.DataFrame({"k": right_key, "b": right_id}), on="k")
    return m.a.to_numpy(np.int64), m.b.to_numpy(np.int64)


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code per value, index of the first value of each code)."""
    codes, uniques = pd.factorize(values)
    first = np.full(len(uniques), len(values), np.int64)
    np.minimum.at(first, codes, np.arange(len(values)))
    return codes.astype(np.int64), first


def _distinct_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.DataFrame({"a": a, "b": b}).drop_duplicates()
    return frame.a.to_numpy(np.int64), frame.b.to_numpy(np.int64)


def _one_edit_neighbours(combo_tag: np.ndarray, combo_context: np.ndarray, asked: np.ndarray,
                         tags: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b) of indices into (tag code, context code) combinations: ``a`` one that is
    ``asked`` about, ``b`` any with the same context and a tag one substitution, deletion or
    adjacent transposition away.

    Blocking by deletion neighbourhood, one tag position at a time so memory stays linear: two
    tags one substitution apart are equal without the same position, a transposition makes them
    equal without neighbouring positions, a deletion makes one equal to the other without one
    position. Candidates are then checked with the optimal-string-alignment distance."""
    salt = _mix(combo_context.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15))
    full, fuzzy, deletions = _deletion_hashes(tags)
    every = np.flatnonzero(fuzzy[combo_tag])
    query = np.flatnonzero(fuzzy[combo_tag] & asked)
    if len(query) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    full_query = _mix(full[combo_tag[query]] ^ salt[query])
    found: list[tuple[np.ndarray, np.ndarray]] = []
    asked_keys, asked_ids = [], []
    previous = None
    for _, has, deleted in deletions:
        at_all = every[has[combo_tag[every]]]
        key_all = _mix(deleted[combo_tag[at_all]] ^ salt[at_all])
        at_query = query[has[combo_tag[query]]]
        key_query = _mix(deleted[combo_tag[at_query]] ^ salt[at_query])
        left_key, left_id = [key_query, full_query], [at_query, query]  # substitution; asked is shorter
        if previous is not None:
            left_key.append(previous[2])  # transposition: asked without i-1, other without i
            left_id.append(previous[3])
            found.append(_join(key_query, at_query, previous[0], previous[1]))  # and the other way
        found.append(_join(np.concatenate(left_key), np.concatenate(left_id), key_all, at_all))
        asked_keys.append(key_query)
        asked_ids.append(at_query)
        previous = (key_all, at_all, key_query, at_query)
    # asked is longer: without one position it is the other tag
    if asked_keys:
        found.append(_join(np.concatenate(asked_keys), np.concatenate(asked_ids),
                           _mix(full[combo_tag[every]] ^ salt[every]), every))
    a = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    b = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
    differ = (combo_tag[a] != combo_tag[b]) & (combo_context[a] == combo_context[b])
    a, b = _distinct_pairs(a[differ], b[differ])
    if len(a):
        text = tags.to_numpy(zero_copy_only=False)
        distance = np.asarray(process.cpdist(text[combo_tag[a]], text[combo_tag[b]], scorer=OSA.distance, workers=-1))
        a, b = a[distance <= 1], b[distance <= 1]
    return a, b


def _candidate_records(tag: np.ndarray, species: np.ndarray, evidences: list[np.ndarray], asked: np.ndarray,
                       tags: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Record pairs (an ``asked`` record, another record) with tags one edit apart, the same
    species and the same value of one of the ``evidences`` (codes, -1 unknown)."""
    found_a, found_b = [], []
    for evidence in evidences:
        rows = np.flatnonzero((tag >= 0) & (species >= 0) & (evidence >= 0))
        context = species[rows] * (int(evidence.max(initial=0)) + 2) + evidence[rows]
        combo, first = _factorize(tag[rows] * (int(context.max(initial=0)) + 1) + context)
        combo_asked = np.zeros(len(first), bool)
        combo_asked[combo[asked[rows]]] = True
        ca, cb = _one_edit_neighbours(tag[rows][first], context[first], combo_asked, tags)
        if len(ca) == 0:
            continue
        # combinations back to records: the asked ones on the left, all on the right
        members = pd.DataFrame({"c": combo, "r": rows})
        pairs = pd.DataFrame({"ca": ca, "cb": cb})
        m = pairs.merge(members[asked[rows]].rename(columns={"c": "ca", "r": "ra"}), on="ca")
        m = m.merge(members.rename(columns={"c": "cb", "r": "rb"}), on="cb")
        found_a.append(m.ra.to_numpy(np.int64))
        found_b.append(m.rb.to_numpy(np.int64))
    if not found_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return _distinct_pairs(np.concatenate(found_a), np.concatenate(found_b))


def _iin_numbers(iins: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """12-digit IINs as int64, -1 where missing or not 12 digits."""
    text = iins.combine_chunks() if isinstance(iins, pa.ChunkedArray) else iins
    ok = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]{12}$"), False)
    return pc.if_else(ok, text, "-1").cast(pa.int64()).to_numpy(zero_copy_only=False)


_POWERS = 10 ** np.arange(12, dtype=np.int64)


def _digits_apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of differing digits between two arrays of 12-digit numbers."""
    return ((a[:, None] // _POWERS) % 10 != (b[:, None] // _POWERS) % 10).sum(axis=1)


def _near_tag_mate(tag: np.ndarray, number: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """For the records in ``ask``: another record under the same tag has an IIN (``number``,
    -1 unknown) that differs in exactly one digit. Only the tag groups asked about are looked at."""
    out = np.zeros(len(tag), bool)
    looked_at = np.zeros(int(tag.max(initial=0)) + 1, bool)
    looked_at[tag[ask & (tag >= 0)]] = True
    rows = np.flatnonzero(looked_at[np.maximum(tag, 0)] & (tag >= 0) & (number >= 0))
    if not ask.any() or len(rows) < 2:
        return out
    t, num = tag[rows], number[rows]
    for power in _POWERS:
        masked = num - (num // power % 10) * power
        frame = pd.DataFrame({"t": t, "m": masked, "x": num})
        close = frame.groupby(["t", "m"], sort=False).x.transform("nunique").to_numpy() >= 2
        out[rows[close]] = True
    return out & ask


def _group_sizes(*columns: np.ndarray) -> np.ndarray:
    """For each row, the number of rows with the same values in all ``columns``."""
    codes = pd.MultiIndex.from_arrays(columns).codes if len(columns) > 1 else None
    key = columns[0] if codes is None else np.ravel_multi_index(codes, [int(c.max(initial=0)) + 1 for c in codes])
    inverse, _ = pd.factorize(key)
    return np.bincount(inverse)[inverse]


def _group_sums(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each row, the sum of ``values`` over the rows of its group."""
    inverse, _ = pd.factorize(group)
    return np.bincount(inverse, weights=values)[inverse].astype(np.int64)


def _out_of_place(tag: np.ndarray, species: np.ndarray, evidences: list[np.ndarray], valid: np.ndarray,
                  number: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per record: (records under its tag, anchored: a tag-mate of the same species agrees on
    owner IIN (or one digit off it), owner name or birth date; in conflict: a tag-mate of another
    species or another valid owner IIN; a stranger: a valid IIN and a name no tag-mate shares
    while others carry both)."""
    name = evidences[1]
    in_tag = _group_sizes(tag)
    valid_in_tag = _group_sums(tag, valid)
    named_in_tag = _group_sums(tag, name >= 0)
    anchored = np.zeros(len(tag), bool)
    for evidence in evidences:
        anchored |= (_group_sizes(tag, species, evidence) >= 2) & (species >= 0) & (evidence >= 0)
    anchored |= _near_tag_mate(tag, number, ~anchored & valid & (valid_in_tag >= 2))
    conflict = (_group_sizes(tag, species) < in_tag) | (valid & (valid_in_tag >= 2))
    stranger = valid & (valid_in_tag >= 2) & (name >= 0) & (_group_sizes(tag, name) == 1) & (named_in_tag >= 2)
    return in_tag, anchored, conflict, stranger


def link_animals(records: pa.Table) -> pa.Table:
    """``records`` (see :func:`animal_records`) with ``animal_key``: the linked animal.

    Two records agree when they have the same species and the same owner (IIN, or surname and
    first name) or the same birth date, unless both carry valid owner IINs more than one digit
    apart.

    1. Records with the same normalised tag are one animal.
    2. A record in conflict with its tag-mates (another species or owner) and agreeing with none
       of them is taken out of its tag group when it agrees with a record under a tag one edit
       away, or when it names another owner by both IIN and name: a typo that happens to spell
       another animal's tag.
    3. A unit of one record attaches to the best supported agreeing unit one edit away (more
       records, then the smaller tag): only to a unit that attaches nowhere itself, so a link
       never chains through another typo; never a unit of several records, so two animals with
       neighbouring tags and a common owner stay two; and not to a unit that already has a
       record of the same registry at the same settlement (a registry lists an animal once per
       place: that is the owner's next animal) — unless the record it neighbours there has the
       same owner IIN and birth date: the same listing again under a mistyped tag.

    The key is the normalised tag of the unit the record ends in, or, for a record taken out of
    its tag group or without a tag, the tag (if any) with ``#registry/record_id``.
    """
    n = records.num_rows
    tag_norm = records.column("tag_norm").combine_chunks()
    tag_enc = pc.dictionary_encode(tag_norm)
    tags = tag_enc.dictionary
    tag = tag_enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    species = _codes(records.column("species"))
    owner = _codes(records.column("owner_iin"))
    valid = pc.fill_null(records.column("owner_iin_valid"), False).to_numpy(zero_copy_only=False) & (owner >= 0)
    number = np.where(valid, _iin_numbers(records.column("owner_iin")), -1)
    birth = _codes(records.column("birth_date"))
    evidences = [owner, _codes(records.column("owner_name_key")), birth]

    # 2. records out of place under their tag
    in_tag, anchored, conflict, stranger = _out_of_place(tag, species, evidences, valid, number)
    # neighbours are looked up for the records that may move: alone under their tag, or in conflict
    asked = (tag >= 0) & ((in_tag == 1) | (conflict & ~anchored))
    del in_tag
    ra, rb = _candidate_records(tag, species, evidences, asked, tags)
    del evidences, owner, species
    agree = (number[ra] < 0) | (number[rb] < 0) | (_digits_apart(number[ra], number[rb]) <= 1)
    ra, rb = ra[agree], rb[agree]
    has_candidate = np.zeros(n, bool)
    has_candidate[ra] = True
    alone = (~anchored & (tag >= 0) & conflict & (has_candidate | stranger)) | (tag < 0)
    del anchored, conflict, stranger, has_candidate
    unit, unit_codes = pd.factorize(np.where(alone, len(tags) + np.arange(n), tag))
    n_units = len(unit_codes)
    del unit_codes

    # 3. units of one record attach to the best supported unit among their neighbours
    size = np.bincount(unit, minlength=n_units)
    unit_first = np.full(n_units, n, np.int64)
    np.minimum.at(unit_first, unit, np.arange(n))
    tag_order = np.empty(len(tags), np.int64)
    tag_order[pc.sort_indices(tags).to_numpy()] = np.arange(len(tags))
    unit_tag = np.where(tag[unit_first] >= 0, tag_order[np.maximum(tag[unit_first], 0)], -1)
    # rank: more records first, then the smaller tag, then the unit of the earlier record
    rank = np.empty(n_units, np.int64)
    rank[np.lexsort((unit_first, unit_tag, -size))] = np.arange(n_units)
    ua, ub = unit[ra], unit[rb]
    place = _codes(pc.binary_join_element_wise(records.column("registry"),
                                               pc.fill_null(records.column("settlement_norm"), ""), "|"))
    n_places = int(place.max(initial=0)) + 1
    listed_twice = pd.Series(ub * n_places + place[ra]).isin(unit * n_places + place).to_numpy()
    # ... unless the record is that listing again under a mistyped tag (a re-keyed copy): the same
    # registry and place, owner IIN and birth date as the record it neighbours
    copy = ((place[ra] == place[rb]) & (number[ra] >= 0) & (number[ra] == number[rb])
            & (birth[ra] >= 0) & (birth[ra] == birth[rb]))
    movable = (ua != ub) & (size[ua] == 1) & (rank[ub] < rank[ua]) & (~listed_twice | copy)
    ua, ub = ua[movable], ub[movable]
    root = np.ones(n_units, bool)
    root[ua] = False
    target = np.arange(n_units)
    take = root[ub]
    if take.any():
        best = pd.DataFrame({"u": ua[take], "r": rank[ub[take]], "v": ub[take]}).sort_values(["u", "r"]).drop_duplicates("u")
        target[best.u.to_numpy()] = best.v.to_numpy()

    # the key of the unit a record ends in
    keeper = pa.array(unit_first[target[unit]])
    key_tag = pc.fill_null(pc.take(tag_norm, keeper), "")
    suffix = pc.binary_join_element_wise(
        "#", pc.take(records.column("registry").combine_chunks(), keeper), "/",
        pc.take(records.column("record_id").combine_chunks(), keeper), "")
    suffix = pc.if_else(pc.take(pa.array(alone), keeper), suffix, "")
    return records.append_column("animal_key", pc.binary_join_element_wise(key_tag, suffix, ""))


# ---------------------------------------------------------------------------- anomalies
def _birth_part(dates: pa.Array) -> pa.Array:
    """Dates as the YYMMDD an IIN starts with."""
    return pc.strftime(dates.cast(pa.timestamp("s")), format="%y%m%d")


REGISTER_SCHEMA = pa.schema([
    ("iin", pa.string()),
    ("iin_valid", pa.bool_()),
    ("own_iin", pa.bool_()),
    ("birth", pa.string()),
    ("name_key", pa.string()),
    ("dead", pa.bool_()),
    ("population", pa.bool_()),
])


def _register(lake: Lake) -> pa.Table:
    """What the population register and the civil registry say about people: IIN, whether the
    row's IIN is its own (check digit passes and it encodes the row's birth date: a relative's
    IIN on a row does not), YYMMDD of birth, name key, death."""
    tables = []
    for code in dict.fromkeys((POPULATION_REGISTER, *DEATH_SOURCES)):
        if not lake.table("registries", code).exists():
            continue
        t = lake.read("registries", code, columns=["iin", "iin_valid", "last_name", "first_name", "birth_date", "death_date"])
        iin = t.column("iin").combine_chunks()
        birth = _birth_part(t.column("birth_date").combine_chunks())
        own = pc.and_(pc.fill_null(t.column("iin_valid").combine_chunks(), False),
                      pc.fill_null(pc.equal(pc.utf8_slice_codeunits(iin, 0, 6), birth), True))
        tables.append(pa.table({
            "iin": iin,
            "iin_valid": pc.fill_null(t.column("iin_valid").combine_chunks(), False),
            "own_iin": pc.fill_null(own, False),
            "birth": birth,
            "name_key": person_name_key(t.column("last_name").combine_chunks(), t.column("first_name").combine_chunks()),
            "dead": pc.is_valid(t.column("death_date")),
            "population": pa.array(np.full(t.num_rows, code == POPULATION_REGISTER)),
        }))
    # rows of the population register that could not be parsed still name a person it holds
    quarantine = lake.table("quarantine", POPULATION_REGISTER)
    if quarantine.exists():
        raw = pq.read_table(quarantine, columns=["raw"]).column("raw").combine_chunks()
        tokens = pc.list_flatten(pc.split_pattern_regex(pc.fill_null(raw, ""), r"[^0-9]+"))
        iins = pc.unique(tokens.filter(pc.equal(pc.utf8_length(tokens), 12)))
        k = len(iins)
        tables.append(pa.table({"iin": iins, "iin_valid": pa.array(valid_iin_mask(iins)),
                                "own_iin": pa.array(np.zeros(k, bool)), "birth": pa.nulls(k, pa.string()),
                                "name_key": pa.nulls(k, pa.string()), "dead": pa.array(np.zeros(k, bool)),
                                "population": pa.array(np.ones(k, bool))}))
    return pa.concat_tables([t.cast(REGISTER_SCHEMA) for t in tables]) if tables else REGISTER_SCHEMA.empty_table()


def _in(keys: pa.Array, values: pa.Array) -> np.ndarray:
    """Per key: whether ``values`` hold it (a null key is never held). The hash table is built
    on the smaller side's distinct values and the larger side only probes it: the owners' keys
    against the whole register's, the register's 5.2M distinct keys at 5M persons made a table
    of some 0.4 GB, and its distinct values another copy."""
    if len(values) > len(keys):  # keep the values the keys ask for: at most as many as the keys
        values = values.filter(pc.fill_null(pc.is_in(values, value_set=pc.unique(keys.drop_null())), False))
    return pc.fill_null(pc.is_in(keys, value_set=pc.unique(values.drop_null())), False).to_numpy(zero_copy_only=False)


def _distinct_rows(*columns: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct row each row is, numbered by first appearance; the first row of each) over
    ``columns`` (strings and booleans; a null is a value of its own)."""
    def text(column: pa.Array) -> pa.Array:
        if pa.types.is_boolean(column.type):
            column = pc.if_else(column, "1", "0")
        # a null and every string differ: the key of a null carries no '=' (written values do)
        return pc.fill_null(pc.binary_join_element_wise("=", column, ""), "")

    encoded = pc.dictionary_encode(pc.binary_join_element_wise(*(text(c) for c in columns), "\x1f"))
    row = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    first = np.full(len(encoded.dictionary), -1, np.int64)
    first[row[::-1]] = np.arange(len(row) - 1, -1, -1)
    return row, first


def _near_names(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per pair of name keys: at most ``OWNER_NAME_EDITS`` edits apart (OSA distance)."""
    return np.asarray(process.cpdist(a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False),
                                     scorer=OSA.distance, workers=-1)) <= OWNER_NAME_EDITS


def _behind_broken_iin(asked: np.ndarray, iin: pa.Array, name_key: pa.Array, population: pa.Table) -> np.ndarray:
    """Which ``asked`` references (valid IINs the register does not hold) name a person the
    register holds under a broken IIN: a row born on the day the reference's IIN encodes, whose
    IIN is not its own (a relative's) or is one digit away from the reference's (a typo that kept
    the check digit), and whose name key is at most ``OWNER_NAME_EDITS`` edits from the
    reference's (one side's spelling may be off too). A namesake born the same day under an IIN
    of their own is someone else."""
    found = np.zeros(len(iin), bool)
    at = np.flatnonzero(asked & pc.is_valid(name_key).to_numpy(zero_copy_only=False))
    if not len(at):
        return found
    refs = pa.table({"ref": pa.array(at), "birth": pc.utf8_slice_codeunits(iin.take(pa.array(at)), 0, 6),
                     "ref_iin": iin.take(pa.array(at)), "ref_key": name_key.take(pa.array(at))})
    rows = population.select(["iin", "own_iin", "birth", "name_key"]).filter(
        pc.and_(pc.is_in(population.column("birth"), value_set=pc.unique(refs.column("birth"))),
                pc.is_valid(population.column("name_key"))))
    pairs = refs.join(rows, "birth", join_type="inner")
    if not pairs.num_rows:
        return found
    (ref_digits, _), (row_digits, row_ok) = (digits_matrix(pairs.column(c).combine_chunks()) for c in ("ref_iin", "iin"))
    one_digit = row_ok & ((ref_digits != row_digits).sum(axis=1) == 1)
    broken = ~pairs.column("own_iin").to_numpy(zero_copy_only=False) | one_digit
    found[pairs.column("ref").to_numpy()[broken & _near_names(pairs.column("ref_key"), pairs.column("name_key"))]] = True
    return found


def _held_under_another_name(rows: pa.Table, population: pa.Table) -> np.ndarray:
    """Which ``rows`` carry an IIN that the population register holds, but only under names more
    than ``OWNER_NAME_EDITS`` edits from the row's (rows or holders without a name are not judged)."""
    at = pa.table({"row": pa.array(np.arange(rows.num_rows)), "iin": rows.column("iin"), "key": rows.column("name_key")})
    at = at.filter(pc.is_valid(at.column("key")))
    # only the holders of the rows' IINs, found by a set of those IINs, go into the join, which
    # builds its hash table on them: the whole register there took 1.5 GB at 5M persons
    holders = population.select(["iin", "name_key"]).filter(
        pc.and_(pc.is_valid(population.column("name_key")),
                pc.is_in(population.column("iin"), value_set=pc.unique(at.column("iin").drop_null()))))
    pairs = at.join(holders, "iin", join_type="inner")
    out = np.zeros(rows.num_rows, bool)
    if not pairs.num_rows:
        return out
    row = pairs.column("row").to_numpy()
    out[row] = True
    out[row[_near_names(pairs.column("key"), pairs.column("name_key"))]] = False  # some holder's name is near
    return out


def _owner_status(lake: Lake, iin: pa.Array, iin_valid: np.ndarray, name_key: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(known to the population register, dead per it or the civil registry) for owner
    references. A person is found by IIN, or (when the IIN on either side is mistyped) by the
    birth date the IIN encodes together with surname and first name; a death counts from a row
    whose IIN is its own by that IIN, and by birth date and name only where one side's IIN
    cannot tell who it is: the death row's IIN is not its own or is held by no one, or the
    register does not hold the reference's IIN under the reference's name (otherwise a namesake
    born the same day, who has an IIN of their own, would die for the reference's person)."""
    register = _register(lake)
    population = register.filter(register.column("population"))
    by_iin = pc.if_else(pa.array(iin_valid), iin, pa.scalar(None, pa.string()))
    person = pc.binary_join_element_wise(pc.utf8_slice_codeunits(iin, 0, 6), name_key, "|")
    known = _in(by_iin, population.column("iin"))
    known |= _in(person, pc.binary_join_element_wise(population.column("birth"), population.column("name_key"), "|"))
    # the register's own typo: one of its IINs fails the check digit one digit away from ours
    mistyped = population.filter(pc.invert(population.column("iin_valid"))).column("iin").combine_chunks()
    asked = pc.if_else(pa.array(iin_valid & ~known), iin, pa.scalar(None, pa.string()))
    for i in range(12):
        known |= _in(pc.utf8_replace_slice(asked, start=i, stop=i + 1, replacement="?"),
                     pc.utf8_replace_slice(mistyped, start=i, stop=i + 1, replacement="?"))
    known |= _behind_broken_iin(iin_valid & ~known, iin, name_key, population)
    deaths = register.filter(register.column("dead"))
    # a death row's own IIN counts for that IIN only when the register holds it under (nearly) the
    # row's name: a death registered under a mistyped IIN that happens to be a living person's
    # (one digit off, the same birth date) is not that person's
    misnamed = _held_under_another_name(deaths, population)
    own = deaths.filter(pa.array(deaths.column("own_iin").to_numpy() & ~misnamed))
    dead = _in(by_iin, own.column("iin"))

    def died(rows: pa.Table) -> np.ndarray:
        return _in(person, pc.binary_join_element_wise(rows.column("birth"), rows.column("name_key"), "|"))

    # the death row's IIN cannot tell: not its own, or its own with a typo nobody holds
    unsure = (~deaths.column("own_iin").to_numpy() | misnamed
              | ~_in(deaths.column("iin").combine_chunks(), population.column("iin")))
    dead |= died(deaths.filter(pa.array(unsure)))
    # the reference's IIN cannot tell: not one the register holds under the reference's name
    dead |= ~_in(pc.binary_join_element_wise(by_iin, name_key, "|"),
                 pc.binary_join_element_wise(population.column("iin"), population.column("name_key"), "|")) & died(own)
    return known, dead


def _mode(group: np.ndarray, values: pa.Array, n_groups: int) -> pa.Array:
    """Per group 0..n_groups-1, the most frequent non-null value (ties: the smallest)."""
    enc = pc.dictionary_encode(values)
    dictionary = enc.dictionary
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(len(dictionary), np.int64)
    rank[order] = np.arange(len(dictionary))
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    ok = codes >= 0
    best = np.full(n_groups, -1, np.int64)
    if ok.any():
        pair = group[ok] * len(dictionary) + rank[codes[ok]]
        inverse, pairs = pd.factorize(pair)
        count = np.bincount(inverse)
        g, r = pairs // len(dictionary), pairs % len(dictionary)
        first = np.lexsort((r, -count, g))
        g, r = g[first], r[first]
        lead = np.r_[True, g[1:] != g[:-1]]
        best[g[lead]] = r[lead]
    return pc.take(pc.take(dictionary, pa.array(order)), pa.array(best, mask=best < 0))


def _lists(group: np.ndarray, values: pa.Array, ids: np.ndarray, same: pa.Array | None = None) -> pa.Array:
    """For the groups ``ids`` (ascending), the sorted distinct non-null values of each; with
    ``same``, values with equal ``same`` count once (the smallest spelling)."""
    frame = pd.DataFrame({"g": group, "v": values.to_numpy(zero_copy_only=False),
                          "k": (values if same is None else same).to_numpy(zero_copy_only=False)}).dropna()
    wanted = np.zeros(int(max(group.max(initial=0), ids.max(initial=0))) + 1, bool)
    wanted[ids] = True
    frame = frame[wanted[frame.g.to_numpy()]].sort_values(["g", "k", "v"]).drop_duplicates(["g", "k"]).sort_values(["g", "v"])
    counts = np.bincount(frame.g.to_numpy(), minlength=len(wanted))[ids]
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(frame.v.to_numpy(dtype=object), pa.string()))


def _phantom_reasons(linked: pa.Table, animal: np.ndarray, n_animals: int, lake: Lake) -> np.ndarray:
    """Per animal: why it is a phantom (see ``PHANTOM_REASONS``), None when a record names a
    living owner the population register knows."""
    iin = linked.column("owner_iin").combine_chunks()
    present = pc.is_valid(iin).to_numpy(zero_copy_only=False)
    valid = pc.fill_null(linked.column("owner_iin_valid"), False).to_numpy(zero_copy_only=False) & present
    # a record without the owner's name (a vaccination record) borrows the name its animal's
    # other records give most often
    own_name = linked.column("owner_name_key").combine_chunks()
    name_key = pc.coalesce(own_name, pc.take(_mode(animal, own_name, n_animals), pa.array(animal)))
    # an owner's status is a function of the (IIN, valid, name) a record gives, and owners hold
    # several animals on several records each: asked once per distinct owner (158k of 1.8M
    # records at 1M persons), the register's lookups are over that many keys, not every record's
    owner, first = _distinct_rows(iin, pa.array(valid), name_key)
    take = pa.array(first)
    known, dead = _owner_status(lake, iin.take(take), valid[first], name_key.take(take))
    known, dead = known[owner], dead[owner]
    # a registry that records owners' names left it blank
    unnamed = ~pc.fill_null(linked.column("owner_named"), True).to_numpy(zero_copy_only=False)

    def any_of(mask: np.ndarray) -> np.ndarray:
        return np.bincount(animal[mask], minlength=n_animals) > 0

    living = any_of(known & ~dead)
    has_valid = any_of(valid)
    nameless = any_of(unnamed) & ~any_of(pc.is_valid(own_name).to_numpy(zero_copy_only=False))
    reason = np.full(n_animals, None, dtype=object)
    # a missing or mistyped IIN says nothing on its own: only when a registry that names owners
    # names nobody
    reason[~living & ~has_valid & nameless] = "owner_missing"
    reason[~living & ~has_valid & any_of(present & ~valid) & nameless] = "owner_invalid"
    reason[~living & any_of(valid & ~known)] = "owner_unknown"
    reason[~living & any_of(dead)] = "owner_dead"
    return reason


def livestock_anomalies(linked: pa.Table, lake: Lake) -> pa.Table:
    """One row per flagged animal and kind (``virtual`` or ``phantom``): where it is registered,
    in which registries, on how many records, and a pseudonymous key of its owner (keyed hash
    of the owner IIN; the IIN and name never leave this function). Of ``linked`` only the
    columns :data:`ANOMALY_INPUT` are read."""
    key_enc = pc.dictionary_encode(linked.column("animal_key").combine_chunks())
    animal = key_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_animals = len(key_enc.dictionary)

    # virtual: two or more settlements in the registries that register animals at a place
    at_place = pc.is_valid(linked.column("settlement_norm")).combine_chunks()
    settlements = _codes(linked.column("settlement_norm").filter(at_place))
    places = pd.DataFrame({"a": animal[at_place.to_numpy(zero_copy_only=False)], "s": settlements}).drop_duplicates()
    n_settlements = np.bincount(places.a.to_numpy(), minlength=n_animals)
    virtual = n_settlements >= 2
    reason = _phantom_reasons(linked, animal, n_animals, lake)
    phantom = pd.notna(reason)
    if not (virtual | phantom).any():
        return ANOMALY_SCHEMA.empty_table()

    # describe the flagged animals from their records only
    rows = (virtual | phantom)[animal]
    sub = linked.filter(pa.array(rows))
    a = animal[rows]
    # the owner named most often: the valid IIN, else any IIN
    iins = sub.column("owner_iin").combine_chunks()
    valid_iins = pc.if_else(pc.fill_null(sub.column("owner_iin_valid"), False).combine_chunks(), iins,
                            pa.scalar(None, pa.string()))
    owner_iin = pc.coalesce(_mode(a, valid_iins, n_animals), _mode(a, iins, n_animals))
    spelling = pc.if_else(pc.is_valid(sub.column("settlement_norm")), sub.column("settlement"), pa.scalar(None, pa.string()))
    described = {
        "species": _mode(a, sub.column("species").combine_chunks(), n_animals),
        "region": _mode(a, sub.column("region").combine_chunks(), n_animals),
        "settlement": _mode(a, sub.column("settlement").combine_chunks(), n_animals),
    }
    records = np.bincount(a, minlength=n_animals)

    out = []
    for kind, mask in (("virtual", virtual), ("phantom", phantom)):
        ids = np.flatnonzero(mask)
        take = pa.array(ids)
        owners = pc.take(owner_iin, take)
        distinct_owner = pc.unique(owners.drop_null())
        owner_key = pc.take(pa.array(pseudonyms(distinct_owner.to_pylist(), OWNER_KEY_LENGTH), pa.string()),
                            pc.index_in(owners, value_set=distinct_owner))
        out.append(pa.table({
            "animal_key": pc.take(key_enc.dictionary, take),
            "kind": pa.array(np.full(len(ids), kind, dtype=object), pa.string()),
            "reason": pa.array(reason[ids] if kind == "phantom" else np.full(len(ids), None, dtype=object), pa.string()),
            **{name: pc.take(values, take) for name, values in described.items()},
            "settlements": _lists(a, spelling, ids, sub.column("settlement_norm").combine_chunks()),
            "n_settlements": pa.array(n_settlements[ids], pa.int64()),
            "registries": _lists(a, sub.column("registry").combine_chunks(), ids),
            "records": pa.array(records[ids], pa.int64()),
            "owner_key": owner_key,
        }, schema=ANOMALY_SCHEMA))
    return pa.concat_tables(out)


def livestock_summary(anomalies: pa.Table) -> pa.Table:
    """Flagged animals per region, settlement and kind: a virtual animal counts under each of
    its settlements, a phantom under the settlement most of its records give."""
    listed = pc.list_value_length(anomalies.column("settlements")).combine_chunks()
    has_list = pc.fill_null(pc.greater(listed, 0), False)
    lists = pc.if_else(has_list, anomalies.column("settlements").combine_chunks(),
                       _single_lists(anomalies.column("settlement").combine_chunks()))
    row = pc.list_parent_indices(lists)
    exploded = pa.table({
        "region": pc.take(anomalies.column("region"), row),
        "settlement": pc.list_flatten(lists),
        "kind": pc.take(anomalies.column("kind"), row),
        "animal_key": pc.take(anomalies.column("animal_key"), row),
    })
    counts = exploded.group_by(["region", "settlement", "kind"]).aggregate([("animal_key", "count_distinct")])
    counts = counts.rename_columns(["region", "settlement", "kind", "animals"]).cast(SUMMARY_SCHEMA)
    return counts.sort_by([("region", "ascending"), ("settlement", "ascending"), ("kind", "ascending")])


def _single_lists(values: pa.Array) -> pa.Array:
    """Each value as a list of one (null stays a one-element list holding null)."""
    return pa.ListArray.from_arrays(pa.array(np.arange(len(values) + 1, dtype=np.int32)), values)
