"""Person records → integer codes and signatures, a chunk of rows at a time. No Dagster here.

The linker works on signatures: the distinct records once normalised (the same IIN, name keys,
birth date, sex and region written alike). A national table of mentions (67M at 5M persons,
270M at 20M) is encoded a chunk of rows at a time:

- each chunk's distinct values are normalised, every raw value once over the whole run (a cache
  per normaliser), and their keys coded into vocabularies that grow chunk by chunk;
- each row's tuple of codes is numbered among the signatures by one hash table that lives
  across the chunks (and is checked against the tuples: two tuples sharing a hash start the
  numbering again with another hash);
- what stays per row is its signature alone; a chunk's text and codes are let go when it is done.

Signatures and identifiers are numbered in order of first appearance, so one chunk or many give
the same signatures and the same table of what they hold. Name keys are coded in the order a
chunk's columns meet them: their codes depend on the chunk size, the keys they stand for do not
(the linker only asks whether two codes are equal, and for the key behind a code).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas._libs import hashtable  # an incremental factorizer: one table for every chunk

from family_pipeline.lib.identifiers import iin_birth_days
from family_pipeline.resolution.blocking import dictionary_codes, tuple_hashes
from family_pipeline.resolution.comparisons import NO_DATE
from family_pipeline.resolution.normalize import name_key, patronymic_stem, sex_from_iin, split_full_names

__all__ = ["CHUNK_ROWS", "COLUMNS", "Encoded", "encode"]

#: what a column mapping may name
COLUMNS = ("national_id", "last_name", "first_name", "patronymic", "full_name", "birth_date", "sex", "region")
#: the fields of a signature, in the order they are hashed
FIELDS = ("national_id", "last_name", "first_name", "patronymic", "birth_date", "sex", "region")
#: records encoded at a time: a chunk's text and per-row codes are held, never the whole table's
CHUNK_ROWS = 2_000_000
#: columns of a chunk read and encoded at once (Arrow's dictionary encoding leaves the GIL)
THREADS = 2
_SEX = {"M": 0, "F": 1, "m": 0, "f": 1, "М": 0, "Ж": 1, "м": 0, "ж": 1, "male": 0, "female": 1}
#: every character Python counts as whitespace, and dashes: dropped from identifiers
_ID_NOISE = r"[\s\p{Z}\x0B\x1C-\x1F\x85\-]"
#: identifiers of at most this many digits are keyed by their number and length
_ID_DIGITS = 17
_TEXT_KEY = np.uint64(1 << 63)  # other identifiers: this bit and their number in a dictionary


@dataclass
class Encoded:
    #: signature per input row (int32: numbered 0..k-1 in order of first appearance)
    row_signature: np.ndarray
    #: per signature, the codes of each field (int32) and the birth date (int64 days; NO_DATE
    #: where missing)
    table: dict[str, np.ndarray]
    #: mentions per signature
    support: np.ndarray
    #: first input row of each signature
    first_row: np.ndarray
    #: "name" and "patronymic" keys per code, "national_id" text per code (Arrow: 22M ids at 20M
    #: persons) and whether it passes its check digit ("national_id_checked")
    vocabulary: dict[str, np.ndarray]

    def hand_over(self) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(row_signature, table, support, first_row, vocabulary), no longer held here: the caller
        holds the only references, and can let the table go while it still works (a decorator's
        frame or a caller's variable holding this object would keep it otherwise)."""
        parts = (self.row_signature, self.table, self.support, self.first_row, self.vocabulary)
        self.row_signature = self.table = self.support = self.first_row = self.vocabulary = None
        return parts


class _HashCollision(Exception):
    """Two distinct tuples of codes shared a 64-bit hash."""


class _Vocabulary:
    """Keys coded 0..k-1 in order of first appearance; no key (None) is -1."""

    def __init__(self) -> None:
        self._codes: dict = {}
        self.keys: list = []

    def code(self, key) -> int:
        if key is None:
            return -1
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self.keys)
            self.keys.append(key)
        return code

    def array(self) -> np.ndarray:
        return np.array(self.keys + [None], dtype=object)[:-1]


class _Normaliser:
    """Codes of raw values: each raw value is normalised once for the whole run (``how``) and its
    key coded in ``vocabulary`` (shared by the columns whose keys must meet: last and first
    names and the parts of full names)."""

    def __init__(self, how, vocabulary: _Vocabulary) -> None:
        self.how, self.vocabulary = how, vocabulary
        self._cache: dict = {}

    def codes(self, values) -> np.ndarray:
        """int64 code per value, -1 where it has no key."""
        out = np.empty(len(values), np.int64)
        cache, how, vocabulary = self._cache, self.how, self.vocabulary
        for k, value in enumerate(values):
            code = cache.get(value)
            if code is None:
                code = cache[value] = vocabulary.code(how(value))
            out[k] = code
        return out


def _as_is(value):
    return None if value is None or value != value else value  # None or NaN: missing


class _Identifiers:
    """National ids: cleaned (spaces and dashes dropped, upper case) and coded in order of first
    appearance, with the birth date each encodes and whether it passes its check digit (IINs
    only), and the sex its seventh digit gives. Coded by one hash table of numbers: an id of up
    to 17 digits is its number and length, any other its number in a dictionary of such text."""

    def __init__(self, capacity: int, iin: bool) -> None:
        self.iin = iin
        self._table = hashtable.UInt64HashTable(1 << 16)
        self._text: dict[str, int] = {}
        self.texts: list[pa.Array] = []  # Arrow text: 16 bytes an id, 70 as a Python string
        self.count = 0
        self.birth_days = np.empty(capacity, np.int64)  # untouched beyond ``count``: not resident
        self.checked = np.empty(capacity, bool)
        self.sex = np.empty(capacity, np.int64)

    def codes(self, values: pd.Series | pa.ChunkedArray) -> np.ndarray:
        raw, distinct = _distinct_text(values)
        cleaned = pc.utf8_upper(pc.replace_substring_regex(distinct, _ID_NOISE, ""))
        cleaned = pc.if_else(pc.greater(pc.utf8_length(cleaned), 0), cleaned, None)
        present = np.flatnonzero(pc.is_valid(cleaned).to_numpy(zero_copy_only=False))
        cleaned = cleaned.take(pa.array(present))
        labels = self._table.get_labels(self._keys(cleaned), hashtable.UInt64Vector(), self.count, -1)
        new = _first_of_new(labels, self.count)
        if len(new):
            self._add(cleaned.take(pa.array(new)))
        of_distinct = np.full(len(distinct), -1, np.int64)
        of_distinct[present] = labels
        return _through(raw, of_distinct)

    def _keys(self, cleaned: pa.Array) -> np.ndarray:
        length = pc.utf8_length(cleaned)
        numeric = pc.and_(pc.utf8_is_digit(cleaned), pc.less_equal(length, _ID_DIGITS)).to_numpy(zero_copy_only=False)
        keys = np.empty(len(cleaned), np.uint64)
        number = pc.cast(pc.if_else(numeric, cleaned, "0"), pa.uint64()).to_numpy(zero_copy_only=False)
        keys[:] = number | (length.to_numpy(zero_copy_only=False).astype(np.uint64) << np.uint64(58))
        for k in np.flatnonzero(~numeric):
            text = cleaned[int(k)].as_py()
            keys[k] = _TEXT_KEY | np.uint64(self._text.setdefault(text, len(self._text)))
        return keys

    def _add(self, ids: pa.Array) -> None:
        start, stop = self.count, self.count + len(ids)
        self.texts.append(ids.cast(pa.string()))
        if self.iin:
            self.birth_days[start:stop], self.checked[start:stop] = iin_birth_days(ids)
            text = ids.to_numpy(zero_copy_only=False).astype(object)
            self.sex[start:stop] = pd.Series(sex_from_iin(text)).map(_SEX).fillna(-1).astype(np.int64).to_numpy()
        else:
            self.birth_days[start:stop], self.checked[start:stop], self.sex[start:stop] = 0, False, -1
        self.count = stop

    def vocabulary(self) -> dict[str, np.ndarray]:
        text = pa.concat_arrays(self.texts) if self.texts else pa.array([], pa.string())
        return {"national_id": text, "national_id_checked": self.checked[:self.count].copy()}


def _first_of_new(labels: np.ndarray, count: int) -> np.ndarray:
    """Rows holding a label not seen before ``count`` for the first time (labels numbered in order
    of first appearance): a new label raises the running maximum, which starts below ``count``
    (a label seen before is never new, whatever the new ones so far)."""
    if len(labels) == 0:
        return np.empty(0, np.int64)
    seen = np.maximum.accumulate(np.maximum(labels, count - 1))
    return np.flatnonzero(np.diff(seen, prepend=count - 1) > 0)


def _through(codes: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """mapping[codes] with -1 (missing) kept: the mapping's extra last slot reads -1."""
    return np.append(np.asarray(mapping, np.int64), np.int64(-1))[codes]


def _distinct(values: pd.Series | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(code per row into the distinct values in order of first appearance, -1 missing; the
    distinct values as Python objects)."""
    if isinstance(values, (pa.ChunkedArray, pa.Array)):
        codes, dictionary = dictionary_codes(values)
        return codes, np.array(dictionary.to_pylist() + [None], dtype=object)[:-1]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, np.int64), np.asarray(uniques, dtype=object)


def _distinct_text(values: pd.Series | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """``_distinct`` with the distinct values as Arrow text (numbers and mixed values as their text)."""
    if isinstance(values, (pa.ChunkedArray, pa.Array)):
        codes, dictionary = dictionary_codes(values)
        if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
            return codes, dictionary
        uniques = np.array(dictionary.to_pylist() + [None], dtype=object)[:-1]
    else:
        codes, uniques = _distinct(values)
    try:
        return codes, pa.array(uniques, pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or mixed values: as text
        return codes, pa.array(pd.Series(uniques, dtype="string").to_numpy(dtype=object, na_value=None), pa.string())


def _birth_days(values: pd.Series | pa.ChunkedArray) -> np.ndarray:
    """Days since 1970 per row, NO_DATE where missing or not a date."""
    if isinstance(values, (pa.ChunkedArray, pa.Array)) and pa.types.is_date32(values.type):
        days = pc.fill_null(values.cast(pa.int32()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        days[~pc.is_valid(values).to_numpy(zero_copy_only=False)] = NO_DATE
        return days
    if isinstance(values, (pa.ChunkedArray, pa.Array)):
        values = values.to_pandas(date_as_object=False)
    bd = pd.to_datetime(values, errors="coerce").to_numpy().astype("datetime64[D]")
    return np.where(np.isnat(bd), NO_DATE, bd.astype(np.int64))


def _own_ids(id_c: np.ndarray, iin_days: np.ndarray, valid: np.ndarray, days: np.ndarray) -> np.ndarray:
    """IIN codes per record, missing (-1) where a valid IIN encodes another birth date than the
    record's own: that IIN is someone else's (a parent's on a child's record, a spouse's), and
    compared as the record's own it would only keep the record from its person."""
    if not len(valid):
        return id_c
    code = np.maximum(id_c, 0)
    foreign = (id_c >= 0) & (days != NO_DATE) & valid[code] & (iin_days[code] != days)
    return np.where(foreign, -1, id_c)


def _chunks(records, names: list[str], rows: int) -> Iterator[tuple[int, dict]]:
    """(first row, {column: values}) for consecutive chunks of ``rows`` records."""
    if hasattr(records, "slices"):  # a ParquetColumns: read as the file is read
        for start, table in records.slices(names, rows):
            yield start, {c: table.column(c) for c in names}
        return
    n = len(records)
    for start in range(0, max(n, 1), rows):
        if isinstance(records, pd.DataFrame):
            part = records.iloc[start:start + rows]
            yield start, {c: part[c] for c in names}
        else:
            part = records.slice(start, rows)
            yield start, {c: part.column(c) for c in names}


class _Encoder:
    """One run's vocabularies and signatures, fed a chunk of records at a time."""

    def __init__(self, columns: Mapping[str, str], national_id: str, n: int, salt: int) -> None:
        self.columns, self.n, self.salt = dict(columns), n, salt
        names, patronymics = _Vocabulary(), _Vocabulary()
        self.names, self.patronymics = names, patronymics
        self.name = _Normaliser(name_key, names)
        self.patronymic = _Normaliser(patronymic_stem, patronymics)
        self.region = _Normaliser(_as_is, _Vocabulary())
        self.ids = _Identifiers(n, national_id == "iin")
        self._signatures = hashtable.UInt64HashTable(1 << 16)
        self.count = 0
        # per signature, filled as signatures appear (untouched rows beyond ``count`` are not resident)
        self.table = {f: np.empty(n, np.int64 if f == "birth_date" else np.int32) for f in FIELDS}
        self.first_row = np.empty(n, np.int32)  # rows are numbered in int32, as in row_signature
        self.row_signature = np.empty(n, np.int32)

    def add(self, start: int, chunk: dict[str, pd.Series | pa.ChunkedArray], pool: ThreadPoolExecutor) -> None:
        m = len(next(iter(chunk.values()))) if chunk else 0
        absent = np.full(m, -1, np.int64)
        work = {name: pool.submit(_distinct, chunk[name]) for name in ("last_name", "first_name", "patronymic", "sex", "region")
                if name in chunk}
        if "full_name" in chunk:
            work["full_name"] = pool.submit(_distinct_text, chunk["full_name"])
        if "birth_date" in chunk:
            work["birth_date"] = pool.submit(_birth_days, chunk["birth_date"])

        def coded(name: str, normaliser: _Normaliser) -> np.ndarray:
            if name not in work:
                return absent.copy()  # filled in place from the full name below
            raw, distinct = work.pop(name).result()
            return _through(raw, normaliser.codes(distinct))

        ln, fn, pt = coded("last_name", self.name), coded("first_name", self.name), coded("patronymic", self.patronymic)
        if "full_name" in work:
            full, distinct = work.pop("full_name").result()
            parts = split_full_names(distinct)
            for code, part, normaliser in ((ln, "last_name", self.name), (fn, "first_name", self.name),
                                           (pt, "patronymic", self.patronymic)):
                missing = np.flatnonzero(code < 0)  # a part the record lacks: its full name's
                code[missing] = _through(full[missing], normaliser.codes(parts[part].to_pylist()))
            del full, parts, distinct
        days = work.pop("birth_date").result() if "birth_date" in work else np.full(m, NO_DATE, np.int64)
        ids = self.ids
        id_c = ids.codes(chunk["national_id"]) if "national_id" in chunk else absent
        id_c = _own_ids(id_c, ids.birth_days[:ids.count], ids.checked[:ids.count], days)  # before the IIN's sex
        if "sex" in work:
            sex_raw, sex_values = work.pop("sex").result()
            sex = _through(sex_raw, np.array([_SEX.get(v, -1) for v in sex_values], np.int64))
        else:
            sex = absent.copy()
        if ids.iin:
            sex = np.where(sex < 0, _through(id_c, ids.sex[:ids.count]), sex)
        region = coded("region", self.region)
        self._number({"national_id": id_c, "last_name": ln, "first_name": fn, "patronymic": pt, "birth_date": days,
                      "sex": sex, "region": region}, start)

    def _number(self, rec: dict[str, np.ndarray], start: int) -> None:
        """Each row's tuple numbered among the signatures; new tuples join the table."""
        m = len(rec["national_id"])
        labels = self._signatures.get_labels(tuple_hashes([rec[f] for f in FIELDS], self.salt),
                                             hashtable.UInt64Vector(), self.count, -1)
        new = _first_of_new(labels, self.count)
        stop = self.count + len(new)
        for f in FIELDS:
            self.table[f][self.count:stop] = rec[f][new]
            if not np.array_equal(self.table[f][labels], rec[f]):
                raise _HashCollision
        self.first_row[self.count:stop] = start + new
        self.row_signature[start:start + m] = labels
        self.count = stop

    def result(self) -> Encoded:
        k = self.count
        support = np.bincount(self.row_signature, minlength=k) if self.n else np.zeros(0, np.int64)
        vocabulary = {"name": self.names.array(), "patronymic": self.patronymics.array(), **self.ids.vocabulary()}
        return Encoded(row_signature=self.row_signature, table={f: v[:k] for f, v in self.table.items()},
                       support=support, first_row=self.first_row[:k], vocabulary=vocabulary)


def encode(records, columns: Mapping[str, str], national_id: str = "any", chunk_rows: int = CHUNK_ROWS) -> Encoded:
    """Codes and signatures of ``records`` (a DataFrame, an Arrow table or a ``ParquetColumns``)
    under the column mapping ``columns`` (keys of ``COLUMNS``), ``chunk_rows`` records at a time."""
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown mapping key(s) {sorted(unknown)}; expected some of {COLUMNS}")
    names_in = records.columns if isinstance(records, pd.DataFrame) else records.column_names
    missing = [c for c in columns.values() if c not in names_in]
    if missing:
        raise KeyError(f"columns {missing} are not in the records")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    wanted = list(dict.fromkeys(columns.values()))
    for salt in range(8):  # a collision of 64-bit hashes is rare: numbered again with another hash
        encoder = _Encoder(columns, national_id, len(records), salt)
        try:
            with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="link-encode") as pool:
                for start, part in _chunks(records, wanted, chunk_rows):
                    encoder.add(start, {key: part[name] for key, name in columns.items()}, pool)
        except _HashCollision:
            continue
        return encoder.result()
    raise RuntimeError("signatures kept colliding under eight hashes")  # never seen: 2^-64 per pair
