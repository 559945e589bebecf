"""Map agency columns to the canonical schema, normalise values and decide, per row, whether it
is clean or quarantined (with the first reason in a fixed precedence). Columnar throughout."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.catalog import Catalog, ColumnSpec, RegistrySpec
from family_pipeline.lib.identifiers import valid_bin_mask, valid_iin_mask

#: quarantine reasons, in the order a row's first failure is chosen
REASONS = (
    "malformed_row",
    "missing_required",
    "invalid_identifier",
    "unparsable_date",
    "unparsable_number",
    "value_not_allowed",
    "out_of_range",
    "duplicate_key",
)
QUARANTINE_SCHEMA = pa.schema([
    ("_row", pa.int64()),
    ("record_id", pa.string()),
    ("reason", pa.string()),
    ("column", pa.string()),
    ("raw", pa.string()),
])
_NUMBER = r"^[+-]?\d+(\.\d+)?$"
_BOOL = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
         "да": True, "нет": False, "y": True, "n": False}


#: a column is normalised through its distinct values when a sample of its first rows repeats
#: itself at least this often (names, dates, codes); unique columns (record ids) go row by row
DISTINCT_SAMPLE, DISTINCT_SHARE = 8192, 0.5


def _where(arr: pa.Array, mask: pa.Array, fn) -> pa.Array:
    """``fn`` applied to the rows of ``mask`` only; the others, which ``fn`` would leave as they
    are, are not touched (a regex over a million identifiers that are already clean is costly)."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return arr
    return pc.replace_with_mask(arr, mask, fn(arr.filter(mask)))


def _rows_with(text: pa.Array, hit) -> pa.Array:
    """Rows of a string array whose UTF-8 bytes contain a match of ``hit`` (bytes -> where the
    matches start and how many bytes they span; a match across two rows is none): one numpy pass over the data
    buffer instead of a string kernel per row."""
    text = text.cast(pa.string())
    out = np.zeros(len(text), bool)
    offsets_buf, data_buf = text.buffers()[1], text.buffers()[2]
    if len(text) == 0 or data_buf is None:
        return pa.array(out)
    offsets = np.frombuffer(offsets_buf, np.int32)[text.offset: text.offset + len(text) + 1]
    data = np.frombuffer(data_buf, np.uint8)[offsets[0]: offsets[-1]]
    start, width = hit(data)
    start = start + offsets[0]
    rows = np.searchsorted(offsets, start, side="right") - 1
    inside = start + width <= offsets[rows + 1]
    out[rows[inside]] = True
    return pa.array(out)


def _whitespace_runs(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Where ``\\s+`` finds something to change: a tab, newline, form feed or carriage return
    (RE2's ``\\s`` besides the space), or two spaces."""
    single = np.flatnonzero((data == 9) | (data == 10) | (data == 12) | (data == 13))
    double = np.flatnonzero((data[:-1] == 32) & (data[1:] == 32))
    return np.concatenate([single, double]), np.r_[np.ones(len(single), np.int64), np.full(len(double), 2, np.int64)]


def _not_nfc_inert(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Where NFC might change something: any character outside ASCII and the Cyrillic block
    U+0400-U+04FF, or one of the block's combining marks U+0483-U+0487 (lead byte D2, then
    83-87). A text of the other characters is NFC already and stays as it is."""
    lead = (data >= 0xC0) & ((data < 0xD0) | (data > 0xD3))
    mark = np.zeros(len(data), bool)
    mark[:-1] = (data[:-1] == 0xD2) & (data[1:] >= 0x83) & (data[1:] <= 0x87)
    return np.flatnonzero(lead | mark), 2


def _collapse_spaces(text: pa.Array) -> pa.Array:
    """Runs of whitespace as one space (``\\s+`` -> " "), computed for the rows that have a run
    or a whitespace other than the space; the rest would come out as they are."""
    return _where(text, _rows_with(text, _whitespace_runs), lambda a: pc.replace_substring_regex(a, r"\s+", " "))


def _nfc(text: pa.Array) -> pa.Array:
    """Unicode NFC, computed for the rows that are not NFC by construction."""
    return _where(text, _rows_with(text, _not_nfc_inert), lambda a: pc.utf8_normalize(a, "NFC"))


def _strip_chars(text: pa.Array, pattern: str) -> pa.Array:
    """``pattern`` (a class of separators) removed from rows that are not all digits."""
    return _where(text, pc.invert(pc.utf8_is_digit(text)), lambda a: pc.replace_substring_regex(a, pattern, ""))


def _null_if_empty(arr: pa.Array) -> pa.Array:
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _map(arr: pa.Array, table: dict[str, str]) -> pa.Array:
    """Values found in ``table`` replaced; others unchanged (vectorised)."""
    if not table:
        return arr
    idx = pc.index_in(arr, value_set=pa.array(list(table), type=pa.string()))
    mapped = pc.take(pa.array(list(table.values()), type=pa.string()), idx)
    return pc.if_else(pc.is_null(idx), arr, mapped)


class ColumnResult:
    """A canonical column and the rows it fails, by reason."""

    def __init__(self, values: pa.Array, failures: dict[str, np.ndarray] | None = None, extra: dict[str, pa.Array] | None = None):
        self.values = values
        self.failures = failures or {}
        self.extra = extra or {}


def normalize_column(col: ColumnSpec, raw: pa.Array, spec: RegistrySpec, catalog: Catalog) -> ColumnResult:
    """One column normalised; a repetitive column (names, dates, codes) through its distinct
    values, spread back to the rows — the same result, computed once per value."""
    raw = raw.cast(pa.string())
    if len(raw) > DISTINCT_SAMPLE:
        sample = raw.slice(0, DISTINCT_SAMPLE)
        if len(pc.unique(sample)) <= DISTINCT_SHARE * len(sample):
            encoded = pc.dictionary_encode(raw, null_encoding="encode")
            if len(encoded.dictionary) <= DISTINCT_SHARE * len(raw):
                once = _normalize_values(col, encoded.dictionary, spec, catalog)
                rows = encoded.indices
                at = rows.to_numpy(zero_copy_only=False)
                return ColumnResult(once.values.take(rows), {r: m[at] for r, m in once.failures.items()},
                                    {name: extra.take(rows) for name, extra in once.extra.items()})
    return _normalize_values(col, raw, spec, catalog)


def _normalize_values(col: ColumnSpec, raw: pa.Array, spec: RegistrySpec, catalog: Catalog) -> ColumnResult:
    text = _null_if_empty(raw)
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    fail: dict[str, np.ndarray] = {}
    if col.required:
        fail["missing_required"] = ~present

    if col.type in ("string", "name"):
        return ColumnResult(_nfc(_collapse_spaces(text)), fail)

    if col.type in ("iin", "bin"):
        v = _strip_chars(text, r"[\s\-]")
        eleven = pc.and_(pc.equal(pc.utf8_length(v), 11), pc.utf8_is_digit(v))
        v = pc.if_else(pc.fill_null(eleven, False), pc.binary_join_element_wise("0", v, ""), v)
        well_formed = pc.fill_null(pc.and_(pc.equal(pc.utf8_length(v), 12), pc.utf8_is_digit(v)), False).to_numpy(zero_copy_only=False)
        fail["invalid_identifier"] = present & ~well_formed
        v = pc.if_else(pa.array(well_formed), v, pa.scalar(None, pa.string()))
        valid = (valid_iin_mask if col.type == "iin" else valid_bin_mask)(v)
        return ColumnResult(v, fail, {f"{col.name}_valid": pa.array(valid & well_formed)})

    if col.type == "date":
        ts = pc.strptime(text, format=spec.source.date_format, unit="s", error_is_null=True)
        fail["unparsable_date"] = present & ~pc.is_valid(ts).to_numpy(zero_copy_only=False)
        return ColumnResult(ts.cast(pa.date32()), fail)

    if col.type in ("int", "decimal"):
        v = _strip_chars(text, "[\\s\u00a0]")
        if spec.source.decimal == ",":
            v = pc.replace_substring(v, ",", ".")
        ok = pc.fill_null(pc.match_substring_regex(v, _NUMBER), False).to_numpy(zero_copy_only=False)
        fail["unparsable_number"] = present & ~ok
        num = pc.if_else(pa.array(ok), v, pa.scalar(None, pa.string())).cast(pa.float64())
        out_of_range = np.zeros(len(num), bool)
        values = num.to_numpy(zero_copy_only=False)
        if col.min is not None:
            out_of_range |= ok & (values < col.min)
        if col.max is not None:
            out_of_range |= ok & (values > col.max)
        fail["out_of_range"] = out_of_range
        if col.type == "int":
            whole = ok & np.isclose(np.nan_to_num(values), np.round(np.nan_to_num(values)))
            fail["unparsable_number"] |= ok & ~whole
            num = pc.if_else(pa.array(whole), num, pa.scalar(None, pa.float64())).cast(pa.int64())
        return ColumnResult(num, fail)

    if col.type == "bool":
        v = _map(text, col.codes or {})
        low = pc.utf8_lower(v)
        known = pc.fill_null(pc.is_in(low, value_set=pa.array(list(_BOOL))), False).to_numpy(zero_copy_only=False)
        fail["value_not_allowed"] = present & ~known
        truthy = pc.is_in(low, value_set=pa.array([k for k, b in _BOOL.items() if b]))
        return ColumnResult(pc.if_else(pa.array(known), truthy, pa.scalar(None, pa.bool_())), fail)

    if col.type in ("category", "sex"):
        v = _map(text, col.codes or {})
        allowed = ("M", "F") if col.type == "sex" else col.values
        ok = pc.fill_null(pc.is_in(v, value_set=pa.array(list(allowed), type=pa.string())), False).to_numpy(zero_copy_only=False)
        fail["value_not_allowed"] = present & ~ok
        return ColumnResult(pc.if_else(pa.array(ok), v, pa.scalar(None, pa.string())), fail)

    if col.type == "region":
        fmt = spec.source.region_format
        if fmt == "kato":
            key = pc.utf8_slice_codeunits(pc.replace_substring_regex(text, r"\D", ""), 0, 2)
            v = _map(key, {r.kato: r.iso for r in catalog.regions})
        elif fmt == "name_ru":
            v = _map(pc.utf8_lower(text), {r.name_ru.lower(): r.iso for r in catalog.regions})
        else:
            v = pc.utf8_upper(text)
        isos = pa.array([r.iso for r in catalog.regions], type=pa.string())
        ok = pc.fill_null(pc.is_in(v, value_set=isos), False).to_numpy(zero_copy_only=False)
        fail["value_not_allowed"] = present & ~ok
        return ColumnResult(pc.if_else(pa.array(ok), v, pa.scalar(None, pa.string())), fail)

    raise ValueError(f"unknown column type {col.type}")  # pragma: no cover - the model forbids it


def _salvage_record_id(spec: RegistrySpec, text: str) -> str | None:
    """The record id of a line that could not be parsed, where it can still be read: the first
    field of a CSV line (record ids lead every export), the id's key in a cut JSON line."""
    if spec.source.format == "csv":
        first = text.split(spec.source.delimiter, 1)[0].strip().strip('"')
        return first or None
    source = re.escape(spec.column(spec.record_id).source)
    found = re.search(rf'"{source}"\s*:\s*"([^"]*)"', text)
    return found.group(1) if found and found.group(1) else None


def normalize(spec: RegistrySpec, raw: pa.Table, malformed: list[tuple[int, str]], catalog: Catalog) -> tuple[pa.Table, pa.Table]:
    """(clean, quarantine) tables for one registry's raw export."""
    n = raw.num_rows
    results = {c.name: normalize_column(c, raw.column(c.source).combine_chunks() if n else pa.array([], pa.string()), spec, catalog)
               for c in spec.columns}
    # the first failure of each row, as indices into REASONS and spec.columns (-1: none yet)
    reason_at = np.full(n, -1, np.int8)
    column_at = np.full(n, -1, np.int32)
    for k, r in enumerate(REASONS):
        if r in ("malformed_row", "duplicate_key"):
            continue
        for j, c in enumerate(spec.columns):
            mask = results[c.name].failures.get(r)
            if mask is None:
                continue
            hit = mask & (reason_at < 0)
            reason_at[hit] = k
            column_at[hit] = j
    rid = results[spec.record_id].values
    candidate = (reason_at < 0) & pc.is_valid(rid).to_numpy(zero_copy_only=False)
    # a record id seen before in a row that is otherwise clean: the first one is kept
    dup = np.zeros(n, bool)
    if candidate.any():
        rows = np.flatnonzero(candidate)
        codes = pc.dictionary_encode(rid.take(pa.array(rows))).indices.to_numpy(zero_copy_only=False)
        first = np.zeros(len(codes), bool)
        first[np.unique(codes, return_index=True)[1]] = True
        dup[rows[~first]] = True
    reason_at[dup] = REASONS.index("duplicate_key")
    column_at[dup] = [c.name for c in spec.columns].index(spec.record_id)
    reason = np.array(REASONS, dtype=object)
    column = np.array([c.name for c in spec.columns], dtype=object)

    clean_mask = reason_at < 0
    keep = pa.array(clean_mask)
    arrays, names = [], []
    for c in spec.columns:
        res = results[c.name]
        arrays.append(res.values.filter(keep))
        names.append(c.name)
        for extra_name, extra in res.extra.items():
            arrays.append(extra.filter(keep))
            names.append(extra_name)
    arrays.append(raw.column("_row").combine_chunks().filter(keep) if n else pa.array([], pa.int64()))
    names.append("_row")
    clean = pa.table(arrays, names=names)

    bad = np.flatnonzero(~clean_mask)
    at_bad = pa.array(bad, type=pa.int64())
    raw_rid = raw.column(spec.column(spec.record_id).source).take(at_bad).to_pylist() if len(bad) else []
    agency = [c.source for c in spec.columns]
    raw_rows = raw.select(agency).take(at_bad).to_pylist() if len(bad) else []
    q_rows = {
        "_row": [int(x) for x in raw.column("_row").to_numpy()[bad]] if len(bad) else [],
        "record_id": [None if r is None else str(r) for r in raw_rid],
        "reason": list(reason[reason_at[bad]]),
        "column": list(column[column_at[bad]]),
        "raw": [json.dumps(r, ensure_ascii=False) for r in raw_rows],
    }
    for number, text in malformed:
        q_rows["_row"].append(number)
        q_rows["record_id"].append(_salvage_record_id(spec, text))
        q_rows["reason"].append("malformed_row")
        q_rows["column"].append(None)
        q_rows["raw"].append(text)
    quarantine = pa.table(q_rows, schema=QUARANTINE_SCHEMA).sort_by("_row")
    return clean, quarantine
