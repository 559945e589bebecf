"""Checks of one registry against others: the population register (ГБД ФЛ) and the civil
register's deaths (ЗАГС), and the livestock anomalies found by resolution.

What every registry's checks share — the resolved persons, the population register's IINs and
names, the crosswalk of every registry — is a :class:`Reference` built once per lake state; a
registry's checks then cost a pass over its own rows. Names are compared through their distinct
(written, reference) pairs, IINs as int64, so no Python runs per row.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.catalog import RegistrySpec
from family_pipeline.lib.alphabet import FOLD_TABLE
from family_pipeline.lib.identifiers import valid_iin_mask
from family_pipeline.lib.parquet_columns import ParquetRuns
from family_pipeline.quality.checks import CROSS_CHECKS, CheckOutcome
from family_pipeline.resolution.normalize import name_codes

__all__ = ["POPULATION_REGISTER", "UNRESOLVED", "Reference", "RegionTally", "after_death", "align_persons",
           "duplicate_candidates", "duplicates", "fact_columns", "iin_numbers", "join_parts", "livestock",
           "population_register", "region_follows", "region_pairs", "region_votes", "row_hashes", "tag_disputes"]

POPULATION_REGISTER = "gbd_fl"
#: the national ear-tag format: country code and twelve digits
TAG_PATTERN = r"KZ\d{12}"
#: share of checked references above which a register mismatch is an ERROR
ERROR_SHARE = 0.20
#: a region column no role ties to a person is compared with the region of the registry's person
#: group it agrees with on at least this share of its rows (the column evidently records where
#: that person lives: an animal's owner, a newborn's mother); a looser agreement means the column
#: records something else (where a marriage was registered) and a difference proves nothing
REGION_FOLLOWS = 0.98
#: ... measured on at least this many rows
REGION_MIN_ROWS = 200
_PARTS = ("last_name", "first_name", "patronymic")
#: gendered patronymic endings as written (longest first): -ович/-ұлы forms of one father's name
#: legitimately vary between registries, anything else in a patronymic is a spelling
_PATRONYMIC_ENDINGS = ("овича", "евича", "ович", "евич", "овна", "евна", "ична", "ич", "ұлы", "улы", "қызы", "кызы",
                       "оглы", "кызи")
_NO_IIN = np.int64(-1)


def _arrow(values) -> pa.Array:
    """A string column as an Arrow array, without a round trip through Python objects where the
    column is Arrow-backed already (pandas' string dtype)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(pa.string())
    if isinstance(values, pa.Array):
        return values.cast(pa.string())
    if not isinstance(values, pd.Series):
        values = pd.Series(values, dtype=object)
    if values.dtype == object:
        values = values.where(values.notna(), None)
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr if arr.type == pa.string() else arr.cast(pa.string())


def _text(values: pd.Series) -> pa.Array:
    """A column of identifiers as Arrow text (numbers written as text)."""
    return _arrow(values if pd.api.types.is_string_dtype(values.dtype) else values.astype(str))


def iin_numbers(values) -> np.ndarray:
    """IINs as int64 (-1 where missing or not twelve digits): set lookups without strings."""
    arr = _arrow(values)
    ok = pc.fill_null(pc.match_substring_regex(arr, r"^[0-9]{12}$"), False)
    return pc.if_else(ok, arr, "-1").cast(pa.int64()).to_numpy(zero_copy_only=False)


def _member(values: np.ndarray, sorted_set: np.ndarray | pd.Index) -> np.ndarray:
    """``values`` (int64) found in ``sorted_set`` (sorted int64, or an index of it: a hash
    lookup, which a set asked about a million times over pays back)."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), bool)
    if isinstance(sorted_set, pd.Index):
        return (sorted_set.get_indexer(values) >= 0) & (values >= 0)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return (sorted_set[at] == values) & (values >= 0)


def _recode(codes: np.ndarray, values: np.ndarray, vocabulary: pd.Index) -> np.ndarray:
    """Codes into ``values`` (as :func:`name_codes` gives them) as codes into ``vocabulary``
    (-1 missing, or a value the vocabulary lacks)."""
    if not len(values) or not len(vocabulary):
        return np.full(len(codes), -1, np.int64)
    mapped = vocabulary.get_indexer(values)
    return np.where(codes >= 0, mapped[np.maximum(codes, 0)], -1).astype(np.int64)


def _name_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """:func:`name_codes` of a column; a category column is keyed once per category."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        per_category, keys = name_codes(pd.Series(values.cat.categories.to_numpy(dtype=object), dtype=object))
        codes = values.cat.codes.to_numpy().astype(np.int64)
        return np.where(codes >= 0, per_category[np.maximum(codes, 0)] if len(per_category) else -1, -1), keys
    return name_codes(pd.Series(values, dtype=object))


class NameBirthKeys:
    """Name-and-birth keys as int64: the (surname, first name) pairs the reference's own names
    make, numbered, times a million plus the birth date as YYMMDD. Names are compared in the
    alphabet-free keys of resolution; a name or a pair the reference lacks makes no key (-1), as
    a missing part or birth date does, since nothing in the reference could match it. No text is
    held per key: 'surname|first name|YYMMDD' strings held 70 MB at 1M persons before their
    hash table, and their Python objects were copied into every process checking registries."""

    def __init__(self, sources: list[tuple[object, object]]):
        """``sources``: the (surnames, first names) columns every key of the reference is made of."""
        last = [_name_codes(s) for s, _ in sources]
        first = [_name_codes(f) for _, f in sources]
        self.last = self._vocabulary(last)
        self.first = self._vocabulary(first)
        #: each source's (surname, first name) codes in the vocabularies, in the sources' order
        self.codes = [(_recode(*lc, self.last), _recode(*fc, self.first)) for lc, fc in zip(last, first)]
        pairs = [self._pair(lc, fc) for lc, fc in self.codes]
        self.pairs = np.unique(np.concatenate(pairs)) if pairs else np.empty(0, np.int64)
        self.pairs = self.pairs[self.pairs >= 0]

    @staticmethod
    def _vocabulary(coded: list[tuple[np.ndarray, np.ndarray]]) -> pd.Index:
        values = [v for _, v in coded if len(v)]
        return pd.Index(np.unique(np.concatenate(values)) if values else np.empty(0, object), dtype=object)

    def take_codes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """:attr:`codes`, handed over once: the keys keep only their vocabularies (the codes
        are two int64 a row of every source, 0.6 GB at 20M persons, needed only to build)."""
        codes, self.codes = self.codes, []
        return codes

    def _pair(self, last: np.ndarray, first: np.ndarray) -> np.ndarray:
        return np.where((last >= 0) & (first >= 0), last * len(self.first) + first, -1)

    def of_codes(self, last: np.ndarray, first: np.ndarray, birth: np.ndarray) -> np.ndarray:
        """Keys of names already coded in the vocabularies (see :attr:`codes`)."""
        pair = self._pair(last, first)
        if not len(self.pairs):
            return np.full(len(pair), -1, np.int64)
        at = np.minimum(np.searchsorted(self.pairs, pair), len(self.pairs) - 1)
        known = (pair >= 0) & (self.pairs[at] == pair) & (birth >= 0)
        return np.where(known, at * 1_000_000 + np.asarray(birth, np.int64), -1)

    def __call__(self, last, first, birth: np.ndarray) -> np.ndarray:
        """The keys of names as written (``birth`` YYMMDD as an integer, -1 unknown)."""
        return self.of_codes(_recode(*name_codes(pd.Series(last, dtype=object)), self.last),
                             _recode(*name_codes(pd.Series(first, dtype=object)), self.first), birth)


def _birth_yymmdd(dates) -> np.ndarray:
    """Dates as the integer YYMMDD an IIN begins with (-1 unknown), without formatting strings."""
    d = pd.to_datetime(pd.Series(dates), errors="coerce").to_numpy().astype("datetime64[D]")
    known = ~np.isnat(d)
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return np.where(known, (year % 100) * 10000 + month * 100 + day, -1)


def _unique_index(keys: np.ndarray, iins: np.ndarray, valid: np.ndarray, birth: np.ndarray) -> pd.Series:
    """key -> IIN for keys that name one IIN only (namesakes born the same day prove nothing),
    and only IINs that pass their check digit and begin with the birth date they are filed with
    (an IIN the reference itself got wrong is no reference)."""
    number = iin_numbers(iins)
    number = np.where(valid & (number >= 0) & (number // 1_000_000 == birth), number, -1)
    frame = pd.DataFrame({"k": keys, "i": number})
    frame = frame[(frame.k >= 0) & (frame.i >= 0)].drop_duplicates()
    frame = frame[~frame.k.duplicated(keep=False)]
    return frame.set_index("k").i.sort_index()


def _compact(frame: pd.DataFrame, iins: np.ndarray | None = None) -> pd.DataFrame:
    """The reference's columns of ``frame`` as the checks read them, with no Python object per
    row: dates as datetime64, names and regions as categories (a few hundred thousand distinct
    names for millions of rows), the IIN (``iins``, given as numbers) as int64, -1 missing. A
    reference is shared by the processes that check registries, and an object a process touches
    is copied into it (its reference count is written)."""
    out = pd.DataFrame(index=frame.index)
    if iins is not None:
        out["iin"] = iins
    for column in ("iin_disputed", "birth_date", "region", "mentions", *_PARTS):
        if column not in frame:
            continue
        values = frame[column]
        if column == "birth_date":
            values = pd.to_datetime(values, errors="coerce")
        elif column in ("region", *_PARTS):
            values = values.astype("category")
        out[column] = values
    return out


class Reference:
    """What the other registries say about people: the resolved persons (golden records, which
    follow the majority of registries, so one registry's typo does not become the reference),
    which person each mention is, and the IINs, names and birth dates the population register
    knows. Built once and shared by every registry's checks."""

    def __init__(self, persons: pd.DataFrame, register_iins: pd.Series, register: pd.DataFrame | None = None,
                 xref: pa.Table | str | None = None):
        persons = persons.set_index("person_id")
        #: IIN -> records of the resolved person carrying it: which of two IINs the country uses
        carried = iin_numbers(persons["iin"])
        self.golden = _compact(persons, carried)
        self.register_iins = np.unique(iin_numbers(register_iins))
        self.register_iins = self.register_iins[self.register_iins >= 0]
        #: IINs a resolved person seen in two or more records carries: unknown to the register, but
        #: not to the country (a one-off mistyped IIN makes a person of one record only)
        repeated = (persons["mentions"] >= 2).to_numpy()
        numbers = carried[repeated]
        self.person_iins = np.unique(numbers[numbers >= 0])
        self.iin_mentions = pd.Series(persons["mentions"].to_numpy(np.int64)[carried >= 0], index=carried[carried >= 0])
        self.iin_mentions = self.iin_mentions[~self.iin_mentions.index.duplicated()].sort_index()
        self.death = pd.to_datetime(persons["death_date"], errors="coerce").dropna()
        has_register = register is not None and len(register) > 0
        #: name-and-birth keys of the names the reference knows: the register's and the persons'
        self.name_keys = NameBirthKeys([*([(register["last_name"], register["first_name"])] if has_register else []),
                                        (persons["last_name"], persons["first_name"])])
        codes = self.name_keys.take_codes()
        last, first = codes[-1]
        person_birth = _birth_yymmdd(persons["birth_date"])
        # the register by name and birth date: the IIN it gives the person so named and born
        if has_register:
            birth = _birth_yymmdd(register["birth_date"])
            keys = self.name_keys.of_codes(*codes[0], birth)
            valid = register["iin_valid"].fillna(False).to_numpy(dtype=bool) if "iin_valid" in register \
                else valid_iin_mask(register["iin"].to_numpy(dtype=object))
            # only entries whose IIN the resolved persons give the same name and birth date: a
            # register IIN mistyped into another real person's IIN names that person, not this one
            person_key = pd.Series(self.name_keys.of_codes(last, first, person_birth), index=carried)
            person_key = person_key[person_key.index >= 0]
            person_key = person_key[~person_key.index.duplicated(keep=False)].sort_index()
            agrees = person_key.reindex(iin_numbers(register["iin"])).fillna(-1).to_numpy(np.int64) == keys
            self.register_by_name = _unique_index(keys, register["iin"], valid & agrees, birth)
            # the register's own record of each IIN it holds once and valid: the reference for a
            # record resolution left on its own (a mistyped name that matched nobody)
            number = np.where(valid, iin_numbers(register["iin"]), -1)
            once = (number >= 0) & ~pd.Series(number).duplicated(keep=False).to_numpy()
            by_iin = register[[c for c in ("birth_date", *_PARTS) if c in register]][once]
            self.register_by_iin = _compact(by_iin.set_axis(pd.Index(number[once]))).sort_index()
        else:
            self.register_by_name = pd.Series([], dtype=np.int64)
            self.register_by_iin = pd.DataFrame()
        # persons the other registries know (two or more records) under an IIN the register lacks
        outside = np.flatnonzero(repeated)[~_member(numbers, self.register_iins) & (numbers >= 0)]
        iins = persons["iin"].iloc[outside].to_numpy(dtype=object)  # only theirs as text
        self.outside_by_name = _unique_index(self.name_keys.of_codes(last[outside], first[outside], person_birth[outside]),
                                             iins, valid_iin_mask(iins), person_birth[outside])
        #: a crosswalk too large to hold is read registry by registry from its file (a path)
        self._xref_path = xref if isinstance(xref, str) else None
        self._xref_runs = None  # where each registry's references lie in that file, found on first use
        self._xref = self._split(xref) if isinstance(xref, pa.Table) else {}
        #: person -> the region their records agree on (see :func:`region_votes`); the golden
        #: record's until votes are counted
        self.region = self.golden["region"]

    def warm(self) -> None:
        """Build every lookup's hash table now. A table is built on its first lookup, and a
        process forked from this one would build its own copy (each of the two checking a
        national registry at 5M persons built some 0.6 GB of them); built here, they are shared.
        The indexes by IIN and name key are kept sorted: pandas looks a sorted unique index of
        more than a million keys up by binary search and builds no hash table for it (26 bytes
        a key, 0.13 GB for each of three at 5M persons, 0.5 GB at 20M)."""
        for index in (self.lookup("register_iins"), self.lookup("person_iins"), self.golden.index, self.region.index,
                      self.death.index, self.iin_mentions.index, self.register_by_name.index,
                      self.outside_by_name.index, self.register_by_iin.index):
            if len(index):
                index.get_indexer(index[:1])

    def lookup(self, name: str) -> pd.Index:
        """A hash index of the IIN set ``name`` (``register_iins``, ``person_iins``), built once."""
        cache = self.__dict__.setdefault("_lookups", {})
        if name not in cache:
            cache[name] = pd.Index(getattr(self, name))
        return cache[name]

    @staticmethod
    def _split(xref: pa.Table) -> dict[str, pa.Table]:
        """The crosswalk cut by registry once: each registry's checks take their slice. A
        crosswalk written registry by registry is sliced in place; any other is sorted first."""
        registry = xref.column("registry").combine_chunks()
        if not pa.types.is_dictionary(registry.type):
            registry = pc.dictionary_encode(registry)
        codes = registry.indices.to_numpy(zero_copy_only=False)
        names = registry.dictionary.to_pylist()
        xref = xref.drop_columns(["registry"])
        if len(codes) == 0:
            return {}
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        if len(np.unique(codes[starts])) < len(starts):  # a registry in several runs: sort
            order = np.argsort(codes, kind="stable")
            xref, codes = xref.take(pa.array(order)), codes[order]
            starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        return {str(names[codes[s]]): xref.slice(s, e - s) for s, e in zip(starts, ends)}

    def xref_of(self, code: str) -> pd.DataFrame:
        if self._xref_path is not None:
            # the crosswalk is written registry after registry: read from the row groups holding it
            if self._xref_runs is None:
                self._xref_runs = ParquetRuns(self._xref_path, "registry")
            return self._xref_runs.read(code, ["record_id", "group", "person_id"], read_dictionary=("group",)).to_pandas()
        table = self._xref.get(code)
        if table is None:
            return pd.DataFrame({"record_id": pd.Series([], dtype=object), "group": pd.Series([], dtype=object),
                                 "person_id": pd.Series([], dtype=np.int64)})
        return table.to_pandas()


#: a reference resolution left without a person (person ids are positive)
UNRESOLVED = -1


def _person_of(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, group: str) -> pd.Series:
    """The resolved person id of each row's reference ``group`` (int64, :data:`UNRESOLVED` where
    none: person ids use all 63 bits, so they never pass through floats)."""
    if "record_id" not in xref.columns:  # already aligned to the rows (see align_persons)
        return xref[group] if group in xref.columns else pd.Series(UNRESOLVED, index=clean.index, dtype=np.int64)
    x = xref[xref.group == group]
    rows = pc.index_in(_text(clean[spec.record_id]), value_set=_text(x.record_id))
    rows = pc.fill_null(rows, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    persons = x.person_id.to_numpy(dtype=np.int64)
    person = np.where(rows >= 0, persons[np.maximum(rows, 0)] if len(persons) else UNRESOLVED, UNRESOLVED)
    return pd.Series(person.astype(np.int64), index=clean.index)


def align_persons(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame) -> pd.DataFrame:
    """The person id of every reference group, one column per group, aligned to ``clean``'s rows:
    looked up once and shared by all of the registry's checks (which accept it for ``xref``)."""
    return pd.DataFrame({g: _person_of(spec, clean, xref, g) for g in spec.person_groups}, index=clean.index)


def _patronymic_stem(text: str) -> str:
    for ending in _PATRONYMIC_ENDINGS:
        if text.lower().endswith(ending) and len(text) > len(ending) + 1:
            return text[: -len(ending)]
    return text


def _dictionary(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """A text column as int64 codes (-1 missing) into a dictionary of its values: a category
    column's own (the reference's names), any other encoded in Arrow."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return (values.cat.codes.to_numpy().astype(np.int64),
                pa.array(values.cat.categories.to_numpy(dtype=object), pa.string()))
    encoded = pc.dictionary_encode(_arrow(values))
    return encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary


def _spelling_differs(written: pd.Series, theirs: pd.Series, fold: bool, patronymic: bool) -> np.ndarray:
    """Whether a name part is written otherwise than the reference has it, judged once per
    distinct (written, reference) pair. A registry that folds Kazakh letters is compared folded;
    a patronymic may change its gendered form (-ович / -ұлы) but not its father's name; Latin
    letters in a Cyrillic register are a spelling of their own."""
    ca, da = _dictionary(written)
    cb, db = _dictionary(theirs)
    both = (ca >= 0) & (cb >= 0)
    out = np.zeros(len(ca), bool)
    if not both.any():
        return out
    if not fold and not patronymic:
        # the texts differ once trimmed: both dictionaries trimmed and numbered together, in Arrow
        trimmed = pc.dictionary_encode(pc.utf8_trim_whitespace(pa.concat_arrays([da, db]))).indices
        ids = trimmed.to_numpy(zero_copy_only=False)
        ids_a, ids_b = ids[:len(da)], ids[len(da):]
        out[both] = ids_a[ca[both]] != ids_b[cb[both]]
        return out
    va = np.asarray(da.to_pylist(), dtype=object)
    vb = np.asarray(db.to_pylist(), dtype=object)

    def differs(x: str, y: str) -> bool:
        x, y = str(x).strip(), str(y).strip()
        if fold:
            x, y = x.translate(FOLD_TABLE), y.translate(FOLD_TABLE)
        if patronymic:
            latin = any("a" <= ch.lower() <= "z" for ch in x)
            # a Kazakh letter written as its Russian look-alike counts anywhere, the ending too
            folded = x != y and x.translate(FOLD_TABLE) == y.translate(FOLD_TABLE)
            return latin or folded or _patronymic_stem(x) != _patronymic_stem(y)
        return x != y

    # most rows write the reference's very string: judged once per written value (the same
    # string differs from itself only as a patronymic in Latin letters)
    b_as_a = pc.index_in(db, value_set=da).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    same = both & (b_as_a[np.maximum(cb, 0)] == ca)
    if patronymic and same.any():
        values, at = np.unique(ca[same], return_inverse=True)
        out[same] = np.array([differs(va[v], va[v]) for v in values], bool)[at]
    other = both & ~same
    if other.any():
        pair = ca[other] * (len(vb) + 1) + cb[other]
        uniq, codes = np.unique(pair, return_inverse=True)
        verdict = np.array([differs(x, y) for x, y in zip(va[uniq // (len(vb) + 1)], vb[uniq % (len(vb) + 1)])], bool)
        out[other] = verdict[codes]
    return out


def _birth_key_of(clean: pd.DataFrame, roles: dict[str, str], number: np.ndarray) -> np.ndarray:
    """The birth date part of a name-and-birth key: the record's birth date, else its IIN's."""
    own = _birth_yymmdd(clean[roles["birth_date"]]) if "birth_date" in roles else np.full(len(clean), -1)
    return np.where(own >= 0, own, np.where(number >= 0, number // 1_000_000, -1))


def _name_parts(clean: pd.DataFrame, roles: dict[str, str]) -> dict[str, pd.Series]:
    parts = {p: clean[roles[p]] for p in _PARTS if p in roles}
    if "full_name" in roles:
        full = pc.utf8_trim_whitespace(_arrow(clean[roles["full_name"]]))
        words = pc.split_pattern(pc.replace_substring_regex(full, r"\s+", " "), " ", max_splits=2)
        for k, p in enumerate(_PARTS):
            if p not in parts:
                word = pc.list_element(pc.if_else(pc.greater(pc.list_value_length(words), k), words, None), k) \
                    if len(words) else pa.array([], pa.string())
                parts[p] = pd.Series(word.to_numpy(zero_copy_only=False), index=clean.index, dtype=object)
    return parts


def _region_reference(spec: RegistrySpec, clean: pd.DataFrame, column: str, regions: dict[str, pd.Series]) -> str | None:
    """The person group whose region a region column without a person role evidently records."""
    best, best_share = None, 0.0
    values = clean[column]
    for group, theirs in regions.items():
        both = values.notna() & theirs.notna()
        if both.sum() < REGION_MIN_ROWS:
            continue
        share = float((values[both] == theirs[both]).mean())
        if share >= REGION_FOLLOWS and share > best_share:
            best, best_share = group, share
    return best


def region_pairs(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, ref: Reference) -> pd.DataFrame:
    """(person_id, region) of every region this registry gives a resolved person: a person's
    region column, or a region column that follows one of its person groups."""
    persons = {g: _person_of(spec, clean, xref, g) for g in spec.person_groups}
    golden = None  # each group's golden region, looked up only for a region column without a person
    out = []
    for col in spec.columns:
        if col.type != "region":
            continue
        if col.role_group in (None, "animal"):
            if golden is None:
                golden = {g: pd.Series(ref.golden["region"].reindex(p.to_numpy()).to_numpy(), index=clean.index)
                          for g, p in persons.items()}
            group = _region_reference(spec, clean, col.name, golden)
        else:
            group = col.role_group
        if group in persons:
            out.append(pd.DataFrame({"person_id": persons[group].to_numpy(), "region": clean[col.name].to_numpy(dtype=object)}))
    if not out:
        return pd.DataFrame({"person_id": pd.Series([], dtype=np.int64), "region": pd.Series([], dtype=object)})
    pairs = pd.concat(out, ignore_index=True).dropna()
    return pairs[pairs.person_id != UNRESOLVED]


class RegionTally:
    """How many records give each person each region, counted registry by registry into one
    matrix of persons by regions, so the votes never hold every registry's (person, region)
    pairs at once: 28M pairs at 5M persons took 1.9 GB as a table and 6.3 GB at the vote's peak,
    the matrix of counts 0.4 GB."""

    def __init__(self, golden: pd.Series):
        self.golden = golden
        self.names: list[str] = []
        self.counts = np.zeros((len(golden), 0), np.uint32)

    def add(self, pairs: pd.DataFrame) -> None:
        """Count (person_id, region) pairs; persons not among the golden records are not counted."""
        if pairs.empty:
            return
        at = self.golden.index.get_indexer(pairs.person_id.to_numpy(dtype=np.int64))
        encoded = pc.dictionary_encode(pa.array(pairs.region.to_numpy(dtype=object), pa.string()))
        values = [str(v) for v in encoded.dictionary.to_pylist()]
        self.names += [v for v in values if v not in self.names]
        if self.counts.shape[1] < len(self.names):  # a region not seen before: a column more
            grown = np.zeros((len(self.golden), len(self.names)), np.uint32)
            grown[:, :self.counts.shape[1]] = self.counts
            self.counts = grown
        column = np.array([self.names.index(v) for v in values], np.int64)
        region = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        known = at >= 0
        np.add.at(self.counts.reshape(-1), at[known] * len(self.names) + column[region[known]], 1)

    def votes(self) -> pd.Series:
        """person -> the region most of their records give (a registry's wrong region is outvoted
        by the person's other records: their address, their animals, their children's births);
        on a tie the golden record's region when it is among the tied, else none; the golden
        record's region for a person no record gives a region. Regions are held as categories
        (one byte a person), as the reference holds them."""
        if not self.names:
            return self.golden.astype("category")
        out = pd.Series(self.golden.to_numpy(dtype=object), index=self.golden.index, name=self.golden.name)
        names = np.asarray(self.names, dtype=object)
        golden = pd.Index(names).get_indexer(self.golden.to_numpy(dtype=object))
        voted = np.empty(len(out), dtype=object)
        given = np.zeros(len(out), bool)
        for start in range(0, len(out), 1_000_000):  # a million persons at a time: bounded temporaries
            counts = self.counts[start:start + 1_000_000]
            top = counts.max(axis=1)
            mine = golden[start:start + 1_000_000]
            golden_tops = (mine >= 0) & (counts[np.arange(len(counts)), np.maximum(mine, 0)] == top)
            alone = (counts == top[:, None]).sum(axis=1) == 1
            given[start:start + len(counts)] = top > 0
            voted[start:start + len(counts)] = np.where(golden_tops, names[np.maximum(mine, 0)],
                                                        np.where(alone, names[counts.argmax(axis=1)], None))
        out.iloc[np.flatnonzero(given)] = voted[given]
        return out.astype("category")


def region_votes(pairs: pd.DataFrame, golden: pd.Series) -> pd.Series:
    """person -> the region most of ``pairs`` (person_id, region) give them: see
    :meth:`RegionTally.votes`."""
    tally = RegionTally(golden)
    tally.add(pairs)
    return tally.votes()


def region_follows(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, ref: Reference) -> dict[str, str]:
    """Region column no role ties to a person -> the person group whose (voted) region it
    follows (see :data:`REGION_FOLLOWS`): judged on the whole registry, so that each part of a
    registry checked a part at a time is compared with the same group. ``clean`` needs only the
    region columns."""
    columns = [c.name for c in spec.columns if c.type == "region" and c.role_group in (None, "animal")]
    if not columns or not spec.person_groups:
        return {}
    regions = {g: pd.Series(ref.region.reindex(_person_of(spec, clean, xref, g).to_numpy()).to_numpy(), index=clean.index)
               for g in spec.person_groups}
    follows = {}
    for column in columns:
        group = _region_reference(spec, clean, column, regions)
        if group is not None:
            follows[column] = group
    return follows


def _replaced(values: pd.Series, rows: np.ndarray, theirs: pd.Series) -> pd.Series:
    """``values`` with ``theirs`` (one value per True of the mask ``rows``) in those rows. A
    category column stays one: its codes are set, and names new to it become categories (a
    column turned into Python strings cost more than the rest of a registry's checks)."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        out = values.to_numpy(copy=True)
        out[rows] = theirs.to_numpy()
        return pd.Series(out, index=values.index, name=values.name)
    new = theirs.to_numpy(dtype=object)
    categories = values.cat.categories
    unseen = pd.Index(pd.unique(new[pd.notna(new)])).difference(categories)
    categories = categories.append(unseen) if len(unseen) else categories
    codes = values.cat.codes.to_numpy(copy=True)
    codes[rows] = categories.get_indexer(new)  # -1 (missing) where theirs is missing
    return pd.Series(pd.Categorical.from_codes(codes, categories), index=values.index, name=values.name)


def _differs(written: pd.Series, theirs: pd.Series) -> np.ndarray:
    """Both given, and ``written`` is not ``theirs`` (a category column, compared through its codes)."""
    if not isinstance(theirs.dtype, pd.CategoricalDtype):
        return (written.notna() & theirs.notna() & (written != theirs)).fillna(False).to_numpy(dtype=bool)
    codes, categories = _dictionary(theirs)
    as_theirs = pc.index_in(_arrow(written), value_set=categories).fill_null(-1).to_numpy(zero_copy_only=False)
    return written.notna().to_numpy() & (codes >= 0) & (as_theirs != codes)


def population_register(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, ref: Reference,
                        follows: dict[str, str] | None = None) -> CheckOutcome:
    """The registry's rows against the population register and the resolved persons. A large
    registry is checked a part of its rows at a time, with ``follows`` judged on all of them
    (:func:`region_follows`), and the parts' outcomes joined by :func:`join_parts`."""
    out = CheckOutcome("population_register", True, "WARN", CROSS_CHECKS["population_register"])
    fold = spec.source.encoding == "cp1251"  # the agency cannot write Kazakh letters
    checked = 0
    masks: dict[str, np.ndarray] = {}
    n = len(clean)

    def flag(reason: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool)
        masks[reason] = masks[reason] | mask if reason in masks else mask

    regions: dict[str, pd.Series] = {}
    for group in spec.person_groups:
        roles = spec.role_columns(group)
        person = _person_of(spec, clean, xref, group)
        parts = _name_parts(clean, roles)
        # the golden record's fields this group is compared on (the others are not looked up)
        wanted = {*parts, *(("iin", "iin_disputed", "mentions") if "iin" in roles else ()),
                  *(("birth_date",) if "birth_date" in roles else ())}
        golden = ref.golden[[c for c in ref.golden.columns if c in wanted]].reindex(person.to_numpy())
        golden.index = clean.index
        golden["region"] = ref.region.reindex(person.to_numpy()).array  # a category column stays one
        regions[group] = golden["region"]
        resolved = (person != UNRESOLVED).to_numpy()
        if "iin" in roles:
            iin = clean[roles["iin"]]
            number = iin_numbers(iin)
            present = iin.notna().to_numpy()
            valid = clean.get(f"{roles['iin']}_valid", pd.Series(True, index=clean.index)).fillna(False).astype(bool).to_numpy()
            checked += int(present.sum())
            registered = _member(number, ref.lookup("register_iins"))
            known = _member(number, ref.lookup("person_iins"))
            # a record resolution left alone is its own golden record: compare it with the
            # register's record of the same valid IIN instead
            alone = valid & registered & (golden["mentions"].fillna(0).to_numpy() <= 1)
            if spec.code != POPULATION_REGISTER and alone.any() and len(ref.register_by_iin):
                theirs = ref.register_by_iin.reindex(number[alone])
                for column in (c for c in theirs.columns if c in golden.columns):
                    golden[column] = _replaced(golden[column], alone, theirs[column])
            flag("iin_unknown", present & valid & ~registered & ~known)
            golden_number = golden["iin"].fillna(-1).to_numpy().astype(np.int64)
            # the record carries another IIN than the person it describes (mistyped, a relative's)
            flag("iin_differs", resolved & (number >= 0) & (golden_number >= 0) & (number != golden_number))
            # the IIN belongs to another resolved person (a relative's, copied onto this record)
            flag("iin_of_another_person", resolved & present & (golden_number < 0)
                 & golden["iin_disputed"].fillna(False).astype(bool).to_numpy() & known)
            # the person so named and born is known under another IIN: to the register (a record
            # elsewhere with a mistyped IIN), or — for the register's own record — to the other
            # registries, whose IIN the register lacks (the register's IIN is the mistyped one)
            # asked only of the records that could be suspect: IINs unknown to the register
            # elsewhere, every IIN in the register itself
            ask = valid & (number >= 0) & (registered if spec.code == POPULATION_REGISTER else ~registered)
            if "last_name" in parts and "first_name" in parts and ask.any():
                rows = np.flatnonzero(ask)
                key = ref.name_keys(parts["last_name"].iloc[rows].to_numpy(dtype=object),  # only theirs as text
                                    parts["first_name"].iloc[rows].to_numpy(dtype=object),
                                    _birth_key_of(clean.iloc[rows], roles, number[rows]))
                index = ref.outside_by_name if spec.code == POPULATION_REGISTER else ref.register_by_name
                other = np.full(n, -1, np.int64)
                if len(index):
                    other[rows] = index.reindex(key).fillna(-1).to_numpy(dtype=np.int64)
                # ... and the other IIN is the one more records use (a register that mistyped an
                # IIN must not make every correct record of the person look wrong)
                uses = ref.iin_mentions
                own = uses.reindex(number).fillna(0).to_numpy() if len(uses) else np.zeros(n)
                theirs = uses.reindex(other).fillna(0).to_numpy() if len(uses) else np.zeros(n)
                suspect = valid & (number >= 0) & (other >= 0) & (other != number) & (theirs > own)
                if spec.code != POPULATION_REGISTER:
                    suspect &= ~registered
                flag("iin_registered_otherwise", suspect)
        if "birth_date" in roles:
            a = pd.to_datetime(clean[roles["birth_date"]], errors="coerce")
            b = pd.to_datetime(golden["birth_date"], errors="coerce")
            flag("birth_date_differs", (a.notna() & b.notna() & (a != b)).to_numpy())
        spelled = np.zeros(n, bool)
        for p, values in parts.items():
            spelled |= _spelling_differs(values, golden[p], fold, p == "patronymic")
        flag("name_differs", spelled)
        if "region" in roles:
            flag("region_differs", _differs(clean[roles["region"]], golden["region"]))
    # region columns no role ties to a person: compared with the person group they follow
    if follows is None:
        follows = region_follows(spec, clean, xref, ref)
    for column, group in follows.items():
        flag("region_differs", _differs(clean[column], regions[group]))
        out.details[f"{column}_follows"] = group
    ids = clean[spec.record_id]
    for reason in sorted(masks):
        if masks[reason].any():
            out.flagged[reason] = sorted(set(ids[masks[reason]].astype(str)))
            out.counts[reason] = len(out.flagged[reason])
    out.details["references_checked"] = checked
    return _register_verdict(out)


def _register_verdict(out: CheckOutcome) -> CheckOutcome:
    out.passed = not out.flagged
    checked = out.details["references_checked"]
    serious = len(set(out.flagged.get("iin_unknown", [])) | set(out.flagged.get("iin_differs", [])))
    out.severity = "ERROR" if checked and serious / checked > ERROR_SHARE else "WARN"
    return out


#: checks whose flagged ids are listed in the registry's row order, with their reasons in this order
#: (the others list each reason's ids sorted, their reasons sorted)
_ROW_ORDER = {"after_death": ("dead_subject", "dated_after_death")}


def join_parts(parts: list[CheckOutcome]) -> CheckOutcome:
    """One registry's outcome of a check from the outcomes of its parts (disjoint rows, in the
    rows' order; the population register's with the same ``follows``): what the check gives the
    whole registry at once. Flagged ids are joined per reason, references counted over all
    parts, and the population register's severity judged on the whole registry."""
    if len(parts) == 1:
        return parts[0]
    check = parts[0].check
    out = CheckOutcome(check, True, "WARN", parts[0].description)
    in_rows = _ROW_ORDER.get(check)
    for reason in in_rows or sorted({r for part in parts for r in part.flagged}):
        ids = [i for part in parts for i in part.flagged.get(reason, ())]
        if ids:
            out.flagged[reason] = ids if in_rows else sorted(set(ids))
            out.counts[reason] = len(out.flagged[reason])
    out.details = {k: v for k, v in parts[0].details.items() if k != "references_checked"}
    if check == "population_register":
        out.details["references_checked"] = sum(part.details["references_checked"] for part in parts)
        return _register_verdict(out)
    out.passed = not out.flagged
    return out


def fact_columns(spec: RegistrySpec) -> list[str]:
    """The columns :func:`duplicates` compares as written: all but the record id and the
    persons' (who they are is compared as resolved)."""
    person_cols = {c.name for c in spec.columns if c.role_group and c.role_group != "animal"}
    return [c.name for c in spec.columns if c.name not in person_cols and c.name != spec.record_id]


def _duplicate_key(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame) -> pd.DataFrame:
    """What makes two records the same record: the facts as written and the persons as resolved."""
    key = clean[fact_columns(spec)].copy()
    for group in spec.person_groups:
        key[f"_{group}"] = _person_of(spec, clean, xref, group)
    return key


def row_hashes(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's :func:`duplicates` key, the same for rows the check finds
    equal in any part of the registry (text is hashed by value; other columns of Python
    objects are numbered first, so missing values are equal as the check has them)."""
    key = _duplicate_key(spec, clean, xref)
    if key.shape[1] == 0:
        return np.zeros(len(clean), np.uint64)
    key = pd.DataFrame({c: _part_independent(key[c]) for c in key.columns}, index=key.index)
    return pd.util.hash_pandas_object(key, index=False, categorize=True).to_numpy(np.uint64)


def _part_independent(values: pd.Series) -> pd.Series:
    """A column as every part of a registry has it, whatever that part holds: a part with a
    missing number has its integers as floats, and one with a missing flag its flags as Python
    objects, which hash otherwise (numbers become floats, flags and other objects their text,
    missing values stay missing)."""
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    if values.dtype.kind == "b" or values.dtype == object:
        codes, uniques = pd.factorize(values)
        text = np.array([str(u) for u in uniques] + [None], dtype=object)
        return pd.Series(text[codes], index=values.index, dtype=object)
    return values


def duplicate_candidates(hashes: np.ndarray) -> np.ndarray:
    """Rows (ascending) whose hash another row shares: every group of copies is among them,
    with the few rows whose hashes merely collide."""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    shared = np.zeros(len(hashes), bool)
    shared[1:] |= same
    shared[:-1] |= same
    return np.sort(order[shared])


def duplicates(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, rows: int | None = None) -> CheckOutcome:
    """The same record again under another id: the same resolved persons and the same facts
    (a re-keyed copy often has its names retyped or its IIN mistyped, so persons are compared as
    resolved, not as written).

    ``clean`` may hold only the candidates of a registry of ``rows`` rows (see
    :func:`duplicate_candidates`): rows that share no hash have no copy, so the outcome is the
    whole registry's, its share of copies counted over all ``rows``."""
    out = CheckOutcome("duplicates", True, "WARN", CROSS_CHECKS["duplicates"])
    if clean.empty:
        return out
    key = _duplicate_key(spec, clean, xref)
    if key.shape[1] == 0:
        return out
    # every member of a group of copies is flagged: which one is the original is the owner's call
    dup = key.duplicated(keep=False)
    if spec.person_groups:
        dup &= (key[[f"_{g}" for g in spec.person_groups]] != UNRESOLVED).any(axis=1)
    if dup.any():
        out.passed = False
        out.flagged["duplicate_record"] = clean.loc[dup, spec.record_id].astype(str).tolist()
        out.counts["duplicate_record"] = int(dup.sum())
        if int(dup.sum()) / (rows or len(clean)) > ERROR_SHARE:
            out.severity = "ERROR"
    return out


def after_death(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, ref: Reference, extracted_at: str | None) -> CheckOutcome:
    """A living-persons registry that lists a dead subject; any record dated after its subject's death."""
    out = CheckOutcome("after_death", True, "WARN", CROSS_CHECKS["after_death"])
    if "subject" not in spec.person_groups or clean.empty:
        return out
    person = _person_of(spec, clean, xref, "subject")
    death = ref.death.reindex(person.to_numpy())
    death.index = clean.index
    ids = clean[spec.record_id].astype(str)
    if spec.living_only:
        when = pd.Timestamp(dt.datetime.fromisoformat(extracted_at).date()) if extracted_at else pd.Timestamp.max
        dead = death.notna() & (death <= when)
        if dead.any():
            out.flagged["dead_subject"] = ids[dead].tolist()
    dated = [c.name for c in spec.columns if c.type == "date" and c.role is None and c.name != "death_date"]
    late = pd.Series(False, index=clean.index)
    for col in dated:
        late |= (pd.to_datetime(clean[col], errors="coerce") > death).fillna(False)
    if late.any():
        out.flagged["dated_after_death"] = ids[late].tolist()
    out.counts = {k: len(v) for k, v in out.flagged.items()}
    out.passed = not out.flagged
    return out


def _codes(values: pd.Series) -> np.ndarray:
    """Dense int64 codes of a string column (-1 missing), in Arrow."""
    return pc.dictionary_encode(_arrow(values)).indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _per_group(group: np.ndarray, values: np.ndarray, how) -> np.ndarray:
    """``how`` (np.maximum or np.add) of ``values`` over each group, spread back to its rows."""
    out = np.zeros(int(group.max(initial=-1)) + 1, values.dtype) if how is np.add else \
        np.full(int(group.max(initial=-1)) + 1, np.iinfo(np.int64).min)
    how.at(out, group, values)
    return out[group]


def tag_disputes(linked: pd.DataFrame) -> pd.Series:
    """Per linked animal record: its tag is not the one the animal's records agree on. Within an
    animal that resolution linked across records, the animal's tag is the one most of its
    records carry, a tag in the standard form first; when two standard tags are carried equally
    often nobody can tell which one is mistyped, so every record carrying one of them is asked
    about. Vectorised over integer codes of animals and tags."""
    keyed = (linked.tag_norm.notna() & ~linked.animal_key.str.contains("#", regex=False).fillna(True)).to_numpy()
    disputed = np.zeros(len(linked), bool)
    if not keyed.any():
        return pd.Series(disputed, index=linked.index)
    animal = _codes(linked.animal_key[keyed])
    tag = _codes(linked.tag_norm[keyed])
    standard = linked.tag_norm[keyed].str.fullmatch(TAG_PATTERN).fillna(False).to_numpy(dtype=bool)
    pair = animal * (int(tag.max()) + 1) + tag
    _, pair_code, pair_size = np.unique(pair, return_inverse=True, return_counts=True)
    # votes: standard form first, then the number of records carrying the tag
    votes = standard.astype(np.int64) * (len(pair) + 1) + pair_size[pair_code]
    top = _per_group(animal, votes, np.maximum)
    first_of_pair = np.zeros(len(pair_size), np.int64)
    first_of_pair[pair_code] = np.arange(len(pair))
    is_first = first_of_pair[pair_code] == np.arange(len(pair))  # one row per (animal, tag)
    tags = _per_group(animal, is_first.astype(np.int64), np.add)
    tied = _per_group(animal, (is_first & (votes == top)).astype(np.int64), np.add)
    disputed[keyed] = (tags > 1) & ((votes < top) | (tied > 1))
    return pd.Series(disputed, index=linked.index)


def livestock(spec: RegistrySpec, linked: pd.DataFrame, anomalies: pd.DataFrame) -> CheckOutcome:
    """Records of this registry whose animal resolution found in several settlements at once
    (``virtual_animal``) or without a living, known owner (``phantom_animal``), whose tag other
    records of the same animal write otherwise (``tag_differs``) or whose tag is not in the
    standard form (``tag_format``). ``linked`` holds the animal records of every registry (a
    tag is judged against the animal's records elsewhere)."""
    out = CheckOutcome("livestock", True, "WARN", CROSS_CHECKS["livestock"])
    if "disputed" not in linked:
        linked = linked.assign(disputed=tag_disputes(linked))
    mine = linked[linked.registry == spec.code]
    if "tag" in mine:
        # a tag written otherwise than the animal's (a typo resolution corrected, or the animal's
        # records disagree), or not in the standard form ("KZ" and twelve digits)
        misspelt = (mine.tag_norm.notna() & ~mine.animal_key.str.contains("#", regex=False)
                    & (mine.tag_norm != mine.animal_key)) | mine.disputed
        malformed = mine.tag.notna() & ((mine.tag != mine.tag_norm)
                                        | ~mine.tag_norm.fillna("").str.fullmatch(TAG_PATTERN))
        for reason, mask in (("tag_differs", misspelt), ("tag_format", malformed)):
            if mask.any():
                out.flagged[reason] = sorted(set(mine.loc[mask, "record_id"].astype(str)))
                out.counts[reason] = len(out.flagged[reason])
    for kind, animals in anomalies.groupby("kind").animal_key:
        ids = mine.loc[mine.animal_key.isin(set(animals)), "record_id"].astype(str)
        if len(ids):
            out.flagged[f"{kind}_animal"] = sorted(set(ids))
            out.counts[f"{kind}_animal"] = len(out.flagged[f"{kind}_animal"])
    out.passed = not out.flagged
    return out
