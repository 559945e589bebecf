"""Render an export in its agency's own format: column names, codes, dates, decimals,
regions, encoding and file type; then the manifest the agency sends with it."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from family_pipeline.catalog import Catalog, ColumnSpec, RegistrySpec
from family_pipeline.lib.alphabet import FOLD_TABLE
from family_pipeline.lib.lake import Lake
from family_pipeline.synth.exports import Export

CHUNK_ROWS = 500_000


def _text(values: np.ndarray) -> pd.Series:
    s = pd.Series(values, dtype=object)
    return s.where(s.notna(), None)


def format_column(col: ColumnSpec, values: np.ndarray, spec: RegistrySpec, catalog: Catalog) -> pa.Array:
    """Canonical values -> the agency's strings (null stays null)."""
    src = spec.source
    if col.type == "date":
        s = pd.Series(pd.to_datetime(values, errors="coerce"))
        out = s.dt.strftime(src.date_format)
        return pa.array(out.where(s.notna(), None), type=pa.string())
    if col.type in ("int",):
        s = pd.Series(values)
        num = pd.to_numeric(s, errors="coerce")
        return pa.array(num.round().astype("Int64").astype(str).where(num.notna(), None), type=pa.string())
    if col.type == "decimal":
        num = pd.to_numeric(pd.Series(values), errors="coerce").round(2)
        text = pa.compute.cast(pa.array(num, type=pa.float64()), pa.string())
        if src.decimal == ",":
            text = pa.compute.replace_substring(text, ".", ",")
        return text
    if col.type == "bool":
        s = pd.Series(values, dtype=object)
        canon = s.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else ("true" if bool(v) else "false"))
        return pa.array(_recode(canon, col), type=pa.string())
    if col.type in ("category", "sex"):
        return pa.array(_recode(_text(values).map(lambda v: None if v is None else str(v)), col), type=pa.string())
    if col.type == "region":
        s = _text(values)
        if src.region_format == "kato":
            table = {r.iso: r.kato for r in catalog.regions}
        elif src.region_format == "name_ru":
            table = {r.iso: r.name_ru for r in catalog.regions}
        else:
            table = None
        return pa.array(s if table is None else s.map(table), type=pa.string())
    s = _text(values)
    return pa.array(s.map(lambda v: None if v is None else str(v)), type=pa.string())


def _recode(canon: pd.Series, col: ColumnSpec) -> pd.Series:
    if not col.codes:
        return canon
    reverse: dict[str, str] = {}
    for agency, canonical in col.codes.items():
        reverse.setdefault(canonical, agency)
    return canon.map(lambda v: None if v is None else reverse.get(v, v))


def render(export: Export, catalog: Catalog) -> pa.Table:
    spec = export.spec
    arrays = [format_column(c, export.columns[c.name], spec, catalog) for c in spec.columns]
    return pa.table(arrays, names=[c.source for c in spec.columns])


def write_export(export: Export, catalog: Catalog, lake: Lake, extracted_at: dt.datetime,
                 rng: np.random.Generator) -> dict:
    """Write the registry into the landing zone; returns its manifest."""
    spec = export.spec
    table = render(export, catalog)
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True, exist_ok=True)
    malformed = export.malformed
    if spec.source.location == "database":
        table = _garble_values(table, spec, malformed, rng)
        _write_database(table, spec, lake)
        path = lake.landing / "registry_db.sqlite"
    elif spec.source.format == "csv":
        path = folder / spec.file_name
        _write_csv(table, spec, malformed, rng, path)
    elif spec.source.format == "parquet":
        table = _garble_values(table, spec, malformed, rng)
        path = folder / spec.file_name
        pq.write_table(table, path, compression="zstd")
    else:
        path = folder / spec.file_name
        _write_jsonl(table, malformed, rng, path)
    manifest = {
        "registry": spec.code,
        "file": path.name if spec.source.location != "database" else None,
        "table": spec.source.table,
        "format": spec.source.format if spec.source.location != "database" else "sql",
        "extracted_at": extracted_at.isoformat(timespec="seconds"),
        "rows": len(table),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def _encode(text: str, encoding: str, first: bool) -> bytes:
    if encoding == "cp1251":
        return text.translate(FOLD_TABLE).encode("cp1251", errors="replace")
    if encoding == "utf-16":
        return text.encode("utf-16" if first else "utf-16-le")
    if encoding == "utf-8-sig":
        return text.encode("utf-8-sig" if first else "utf-8")
    return text.encode("utf-8")


def _malformed_line(row: list[str | None], delimiter: str, rng: np.random.Generator) -> str:
    """A line the agency's exporter broke: cut short, or a stray delimiter inside a field."""
    cells = ["" if v is None else v for v in row]
    if rng.random() < 0.5 and len(cells) > 2:
        return delimiter.join(cells[: max(1, len(cells) // 2)])
    i = int(rng.integers(0, len(cells)))
    cells[i] = cells[i] + delimiter + "??"
    return delimiter.join(cells)


def _write_csv(table: pa.Table, spec: RegistrySpec, malformed: np.ndarray, rng, path: Path) -> None:
    d = spec.source.delimiter
    bad = np.zeros(len(table), bool)
    bad[malformed] = True
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        first = True
        for start in range(0, max(len(table), 1), CHUNK_ROWS):
            chunk = table.slice(start, CHUNK_ROWS)
            mask = bad[start : start + len(chunk)]
            good = chunk.filter(pa.array(~mask))
            buf = io.BytesIO()
            pacsv.write_csv(good, buf, pacsv.WriteOptions(include_header=first, delimiter=d, quoting_style="needed"))
            text = buf.getvalue().decode("utf-8")
            broken = chunk.filter(pa.array(mask)).to_pylist()
            extra = "".join(_malformed_line(list(r.values()), d, rng) + "\n" for r in broken)
            fh.write(_encode(text + extra, spec.source.encoding, first))
            first = False
    os.replace(tmp, path)


def _garble_values(table: pa.Table, spec: RegistrySpec, malformed: np.ndarray, rng) -> pa.Table:
    """Typed-free stores cannot break a row's structure; the agency's bug shows as a value
    that does not parse (a date of 31 February, an amount with two separators)."""
    targets = [c for c in spec.columns if c.type in ("date", "int", "decimal") and c.name != spec.record_id]
    if not len(malformed) or not targets:
        return table
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    for r in malformed:
        c = targets[int(rng.integers(0, len(targets)))]
        cols[c.source][r] = "31.02.20x9" if c.type == "date" else "1,2,3.4"
    return pa.table({k: pa.array(v, type=pa.string()) for k, v in cols.items()})


def _write_jsonl(table: pa.Table, malformed: np.ndarray, rng, path: Path) -> None:
    bad = np.zeros(len(table), bool)
    bad[malformed] = True
    df = table.filter(pa.array(~bad)).to_pandas()
    text = df.to_json(orient="records", lines=True, force_ascii=False) if len(df) else ""
    if text and not text.endswith("\n"):
        text += "\n"
    for r in table.filter(pa.array(bad)).to_pylist():
        line = json.dumps(r, ensure_ascii=False)
        text += line[: max(2, int(len(line) * rng.uniform(0.3, 0.9)))] + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_database(table: pa.Table, spec: RegistrySpec, lake: Lake) -> None:
    db = lake.landing / "registry_db.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    try:
        cols = table.column_names
        con.execute(f'DROP TABLE IF EXISTS "{spec.source.table}"')
        con.execute(f'CREATE TABLE "{spec.source.table}" ({", ".join(chr(34) + c + chr(34) + " TEXT" for c in cols)})')
        rows = zip(*(table.column(c).to_pylist() for c in cols))
        con.executemany(
            f'INSERT INTO "{spec.source.table}" VALUES ({", ".join("?" for _ in cols)})', rows
        )
        con.commit()
    finally:
        con.close()
