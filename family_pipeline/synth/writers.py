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
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from family_pipeline.catalog import Catalog, ColumnSpec, RegistrySpec
from family_pipeline.lib.alphabet import KAZAKH_TO_RUSSIAN
from family_pipeline.lib.lake import Lake
from family_pipeline.synth.exports import Export

CHUNK_ROWS = 500_000


def _strings(values: np.ndarray) -> pa.Array:
    """Object/str values -> an Arrow string array (None and NaN become null)."""
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(pd.Series(values, dtype=object).map(lambda v: None if pd.isna(v) else str(v)), type=pa.string())


def _map_values(arr: pa.Array, table: dict[str, str] | None) -> pa.Array:
    """Replace values found in ``table`` (vectorised); others pass unchanged."""
    if not table:
        return arr
    keys = pa.array(list(table.keys()), type=pa.string())
    idx = pc.index_in(arr, value_set=keys)
    mapped = pc.take(pa.array(list(table.values()), type=pa.string()), idx)
    return pc.if_else(pc.is_null(idx), arr, mapped)


def _reverse_codes(col: ColumnSpec) -> dict[str, str] | None:
    if not col.codes:
        return None
    reverse: dict[str, str] = {}
    for agency, canonical in col.codes.items():
        reverse.setdefault(canonical, agency)
    return reverse


def format_column(col: ColumnSpec, values: np.ndarray, spec: RegistrySpec, catalog: Catalog) -> pa.Array:
    """Canonical values -> the agency's strings (null stays null)."""
    src = spec.source
    if col.type == "date":
        # dates repeat (birth dates, periods): format each distinct one once
        days, at = np.unique(np.asarray(values, dtype="datetime64[D]"), return_inverse=True)
        ts = pa.array(days.astype("datetime64[s]"), type=pa.timestamp("s"))
        return pc.take(pc.strftime(ts, format=src.date_format), pa.array(at.reshape(-1)))
    if col.type == "int":
        num = pd.to_numeric(pd.Series(values), errors="coerce").round()
        return pc.cast(pa.array(num.astype("Int64"), type=pa.int64()), pa.string())
    if col.type == "decimal":
        num = pd.to_numeric(pd.Series(values), errors="coerce").round(2)
        text = pc.cast(pa.array(num, type=pa.float64(), from_pandas=True), pa.string())
        return pc.replace_substring(text, ".", ",") if src.decimal == "," else text
    if col.type == "bool":
        b = pd.Series(values, dtype=object)
        text = np.where(b.isna(), None, np.where(b.fillna(False).astype(bool), "true", "false"))
        return _map_values(_strings(text), _reverse_codes(col))
    if col.type in ("category", "sex"):
        return _map_values(_strings(values), _reverse_codes(col))
    if col.type == "region":
        if src.region_format == "kato":
            return _map_values(_strings(values), {r.iso: r.kato for r in catalog.regions})
        if src.region_format == "name_ru":
            return _map_values(_strings(values), {r.iso: r.name_ru for r in catalog.regions})
    return _strings(values)


def render(export: Export, catalog: Catalog) -> pa.Table:
    spec = export.spec
    arrays = [format_column(c, export.columns[c.name], spec, catalog) for c in spec.columns]
    return pa.table(arrays, names=[c.source for c in spec.columns])


def part_file_name(file_name: str, part: int) -> str:
    """``gbd_fl.csv`` -> ``gbd_fl.part0003.csv``: shard ``part`` of a sharded country's export
    (shard 0 is the file itself)."""
    if part == 0:
        return file_name
    p = Path(file_name)
    return f"{p.stem}.part{part:04d}{p.suffix}"


def write_export(export: Export, catalog: Catalog, lake: Lake, extracted_at: dt.datetime | None,
                 rng: np.random.Generator, *, part: int = 0, spool: Path | None = None,
                 manifest: bool = True) -> dict:
    """Write the registry into the landing zone; returns its manifest.

    ``part > 0``: a later shard of a sharded country, written as a part file beside the export
    (a database registry's rows go to an Arrow file in ``spool`` for the parent to append);
    the parent writes the manifest of all parts (``manifest=False`` here)."""
    spec = export.spec
    table = render(export, catalog)
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True, exist_ok=True)
    malformed = export.malformed
    if spec.source.location == "database" and part:
        table = _garble_values(table, spec, malformed, rng)
        spool.mkdir(parents=True, exist_ok=True)
        path = spool / f"{spec.code}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
    elif spec.source.location == "database":
        table = _garble_values(table, spec, malformed, rng)
        _write_database(table, spec, lake)
        path = lake.landing / "registry_db.sqlite"
    elif spec.source.format == "csv":
        path = folder / part_file_name(spec.file_name, part)
        _write_csv(table, spec, malformed, rng, path)
    elif spec.source.format == "parquet":
        table = _garble_values(table, spec, malformed, rng)
        path = folder / part_file_name(spec.file_name, part)
        pq.write_table(table, path, compression="zstd")
    else:
        path = folder / part_file_name(spec.file_name, part)
        _write_jsonl(table, malformed, rng, path)
    if not manifest:
        return {"registry": spec.code, "file": path.name, "rows": len(table)}
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


def fold_for_cp1251(table: pa.Table) -> pa.Table:
    """cp1251 cannot hold Kazakh letters: legacy exporters write the Russian ones instead."""
    cols = []
    for col in table.columns:
        # only text with a non-ASCII letter can hold a Kazakh one (dates, numbers, codes cannot)
        if pc.any(pc.not_equal(pc.binary_length(col), pc.utf8_length(col))).as_py():
            for kz, ru in KAZAKH_TO_RUSSIAN.items():
                col = pc.replace_substring(col, kz, ru)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _encode(text: str, encoding: str, first: bool) -> bytes:
    if encoding == "cp1251":
        return text.encode("cp1251", errors="replace")
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
    if spec.source.encoding == "cp1251":
        table = fold_for_cp1251(table)
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


def _write_database(table: pa.Table, spec: RegistrySpec, lake: Lake, append: bool = False) -> None:
    db = lake.landing / "registry_db.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    try:
        cols = table.column_names
        if not append:
            con.execute(f'DROP TABLE IF EXISTS "{spec.source.table}"')
            con.execute(f'CREATE TABLE "{spec.source.table}" ({", ".join(chr(34) + c + chr(34) + " TEXT" for c in cols)})')
        rows = zip(*(table.column(c).to_pylist() for c in cols))
        con.executemany(
            f'INSERT INTO "{spec.source.table}" VALUES ({", ".join("?" for _ in cols)})', rows
        )
        con.commit()
    finally:
        con.close()


def append_database_part(path: Path, spec: RegistrySpec, lake: Lake) -> int:
    """Append a later shard's rows of a database registry (written by ``write_export``)."""
    with pa.memory_map(str(path), "r") as src:
        table = pa.ipc.open_file(src).read_all()
    for start in range(0, table.num_rows, CHUNK_ROWS):
        _write_database(table.slice(start, CHUNK_ROWS), spec, lake, append=True)
    return table.num_rows
