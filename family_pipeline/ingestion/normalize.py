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
    text = _null_if_empty(raw.cast(pa.string()))
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    fail: dict[str, np.ndarray] = {}
    if col.required:
        fail["missing_required"] = ~present

    if col.type in ("string", "name"):
        v = pc.replace_substring_regex(text, r"\s+", " ")
        return ColumnResult(pc.utf8_normalize(v, "NFC"), fail)

    if col.type in ("iin", "bin"):
        v = pc.replace_substring_regex(text, r"[\s\-]", "")
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
        v = pc.replace_substring_regex(text, "[\\s\u00a0]", "")
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
    reason = np.full(n, None, dtype=object)
    column = np.full(n, None, dtype=object)
    for r in REASONS[1:-1]:
        for c in spec.columns:
            mask = results[c.name].failures.get(r)
            if mask is None:
                continue
            hit = mask & (reason == None)  # noqa: E711 - elementwise on an object array
            reason[hit] = r
            column[hit] = c.name
    rid = results[spec.record_id].values
    rid_np = np.asarray(rid.to_numpy(zero_copy_only=False), dtype=object)
    candidate = (reason == None) & pc.is_valid(rid).to_numpy(zero_copy_only=False)  # noqa: E711
    import pandas as pd

    dup = np.zeros(n, bool)
    if candidate.any():
        ids = pd.Series(rid_np[candidate])
        dup[np.flatnonzero(candidate)[ids.duplicated(keep="first").to_numpy()]] = True
    reason[dup] = "duplicate_key"
    column[dup] = spec.record_id

    clean_mask = reason == None  # noqa: E711
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
    raw_rid = raw.column(spec.column(spec.record_id).source).to_numpy(zero_copy_only=False) if n else np.array([])
    agency = [c.source for c in spec.columns]
    raw_rows = raw.select(agency).take(pa.array(bad, type=pa.int64())).to_pylist() if len(bad) else []
    q_rows = {
        "_row": [int(x) for x in raw.column("_row").to_numpy()[bad]] if len(bad) else [],
        "record_id": [None if raw_rid[i] is None else str(raw_rid[i]) for i in bad],
        "reason": list(reason[bad]),
        "column": list(column[bad]),
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
