"""Read one registry's export as an all-string Arrow table with the agency's column names.

A broken line does not fail the file: it is returned as a malformed row (row number and text)
for quarantine. A file that cannot be read at all — missing, empty, truncated, corrupt, wrongly
encoded, without the expected columns, or a database that cannot be reached — raises
``RegistryFileError`` naming the registry, the file and the problem.

A big export comes in parts: the manifest lists them (``"parts": [{"file", "rows"}, ...]``,
the first being the export's own file name), each a whole file in the agency's format (its own
header, BOM, encoding). They are read in order as one export; data row numbers run on across
parts. A part that is missing or broken fails the registry naming that part.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from family_pipeline.catalog import RegistrySpec
from family_pipeline.lib.lake import Lake

CHUNK = 16 << 20


class RegistryFileError(RuntimeError):
    def __init__(self, registry: str, path: str | Path, problem: str):
        self.registry = registry
        self.path = str(path)
        self.problem = problem
        super().__init__(f"registry {registry}: {path}: {problem}")


@dataclass
class RawExport:
    table: pa.Table  # agency column names, all strings, plus "_row" (1-based data row number)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (row number, raw text)
    source: str = ""
    bytes: int = 0
    extracted_at: str | None = None


def default_database_url(lake: Lake) -> str:
    return f"sqlite:///{lake.landing / 'registry_db.sqlite'}"


def read_manifest(spec: RegistrySpec, lake: Lake) -> dict:
    path = lake.landing_dir(spec.code) / "manifest.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegistryFileError(spec.code, path, f"manifest is not valid JSON: {exc}") from exc


def read_export(spec: RegistrySpec, lake: Lake, database_url: str | None = None) -> RawExport:
    manifest = read_manifest(spec, lake)
    if spec.source.location == "database":
        raw = _read_database(spec, database_url or default_database_url(lake))
        _check_columns(spec, raw)
    else:
        folder = lake.landing_dir(spec.code)
        files = export_files(spec, manifest, folder / "manifest.json")
        raws = []
        for name in files:
            part = _read_file(spec, folder / name)
            _check_columns(spec, part)
            raws.append(part)
        raw = raws[0] if len(raws) == 1 else _join_parts(spec, raws)
    raw.extracted_at = manifest.get("extracted_at")
    return raw


def export_files(spec: RegistrySpec, manifest: dict, where: Path) -> list[str]:
    """The export's file names in its landing folder: the parts its manifest lists, in order, or
    the one file of the catalog."""
    parts = manifest.get("parts")
    if not parts:
        return [spec.file_name]
    try:
        files = [str(p["file"]) for p in parts]
    except (TypeError, KeyError) as exc:
        raise RegistryFileError(spec.code, where, "manifest parts must be a list of {file, rows}") from exc
    if any(Path(f).name != f for f in files):
        raise RegistryFileError(spec.code, where, "a manifest part names a file outside the registry's folder")
    return files


def _read_file(spec: RegistrySpec, path: Path) -> RawExport:
    if not path.exists():
        raise RegistryFileError(spec.code, path, "file not found in the landing zone")
    size = path.stat().st_size
    if size == 0 and spec.source.format != "jsonl":  # JSON lines with no rows is 0 bytes
        raise RegistryFileError(spec.code, path, "file is empty (0 bytes): no header or footer")
    reader = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}[spec.source.format]
    raw = reader(spec, path)
    raw.bytes = size
    raw.source = str(path)
    return raw


def _join_parts(spec: RegistrySpec, raws: list[RawExport]) -> RawExport:
    """One export from its parts: the first part's columns (a part with other columns is an
    error naming it); row numbers of later parts continue after the rows of earlier ones."""
    names = raws[0].table.column_names
    tables, malformed, offset = [], [], 0
    for raw in raws:
        table = raw.table
        if table.column_names != names:
            if set(table.column_names) != set(names):
                extra = sorted(set(table.column_names) ^ set(names))
                raise RegistryFileError(spec.code, raw.source, "columns differ from the export's first part: "
                                        + ", ".join(extra))
            table = table.select(names)
        rows = pc.add(table.column("_row"), offset) if offset else table.column("_row")
        tables.append(table.set_column(names.index("_row"), "_row", rows))
        malformed.extend((n + offset if n > 0 else n, text) for n, text in raw.malformed)
        offset += table.num_rows + len(raw.malformed)
    joined = pa.concat_tables(tables)
    return RawExport(joined, malformed, source=raws[0].source, bytes=sum(r.bytes for r in raws))


def _check_columns(spec: RegistrySpec, raw: RawExport) -> None:
    missing = [c.source for c in spec.columns if c.source not in raw.table.column_names]
    if missing:
        raise RegistryFileError(spec.code, raw.source, f"expected agency column(s) missing: {', '.join(missing)}")


# ------------------------------------------------------------------------------- csv
def _to_utf8(spec: RegistrySpec, path: Path) -> bytes:
    """The file as UTF-8 bytes without a BOM: decoded strictly in chunks (a wrong encoding is a
    file error); a UTF-8 file is only checked, and its own bytes returned."""
    enc = spec.source.encoding
    utf8 = codecs.lookup(enc).name in ("utf-8", "utf-8-sig")
    decoder = codecs.getincrementaldecoder(enc)(errors="strict")
    out = io.BytesIO()
    offset = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            final = not chunk
            if offset == 0 and enc == "cp1251" and _looks_like_utf8(chunk):
                raise RegistryFileError(spec.code, path, "declared cp1251 but the file is UTF-8 (it would read as "
                                        "mojibake such as 'Р°', 'Рµ')")
            if offset == 0 and utf8 and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]
                offset = len(codecs.BOM_UTF8)
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                where = offset + exc.start
                hint = ""
                if enc.startswith("utf-8"):
                    hint = " (is it cp1251 or another single-byte encoding?)"
                raise RegistryFileError(spec.code, path, f"not valid {enc} at byte {where}{hint}") from exc
            if utf8:
                out.write(chunk)  # valid as it is: no second copy through str
            else:
                if offset == 0 and text.startswith("\ufeff"):
                    text = text[1:]
                out.write(text.encode("utf-8"))
            offset += len(chunk)
            if final:
                break
    return out.getvalue()


def _looks_like_utf8(chunk: bytes) -> bool:
    """Cyrillic in cp1251 is bytes 0xC0-0xFF in runs, which is never valid UTF-8; so non-ASCII
    bytes that decode as UTF-8 mean the agency sent UTF-8 while declaring cp1251."""
    if not chunk or chunk.isascii():
        return False
    try:
        codecs.getincrementaldecoder("utf-8")(errors="strict").decode(chunk, final=False)
        return True
    except UnicodeDecodeError:
        return False


def _read_csv(spec: RegistrySpec, path: Path) -> RawExport:
    data = _to_utf8(spec, path)
    newline = data.find(b"\n")
    header_line = data[: newline if newline >= 0 else len(data)].decode("utf-8").rstrip("\r")
    header = next(csv.reader([header_line], delimiter=spec.source.delimiter))
    if len(set(header)) != len(header):
        raise RegistryFileError(spec.code, path, "the header repeats a column name")
    malformed: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        malformed.append((int(row.number) - 1 if row.number is not None else -1, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=spec.source.delimiter, invalid_row_handler=on_invalid,
                                             newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise RegistryFileError(spec.code, path, f"cannot parse as CSV: {exc}") from exc
    total = table.num_rows + len(malformed)
    good = np.ones(total + 1, bool)
    good[0] = False
    numbers = np.fromiter((n for n, _ in malformed), dtype=np.int64, count=len(malformed))
    good[numbers[(numbers > 0) & (numbers <= total)]] = False
    rows = np.flatnonzero(good)
    if len(rows) != table.num_rows:  # row numbers unavailable: number rows in order
        rows = np.arange(1, table.num_rows + 1)
    return RawExport(table.append_column("_row", pa.array(rows, type=pa.int64())), malformed)


# ------------------------------------------------------------------------------- parquet
def _read_parquet(spec: RegistrySpec, path: Path) -> RawExport:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise RegistryFileError(spec.code, path, f"not a readable Parquet file (truncated or corrupt): {exc}") from exc
    cols = [c if pa.types.is_string(c.type) or pa.types.is_large_string(c.type) else c.cast(pa.string()) for c in table.columns]
    table = pa.table(cols, names=table.column_names)
    return RawExport(table.append_column("_row", pa.array(np.arange(1, table.num_rows + 1), type=pa.int64())))


# ------------------------------------------------------------------------------- json lines
def _read_jsonl(spec: RegistrySpec, path: Path) -> RawExport:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryFileError(spec.code, path, f"not valid utf-8 at byte {exc.start}") from exc
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    ok = np.array([ln.startswith(b"{") and ln.rstrip(b"\r").endswith(b"}") for ln in lines], dtype=bool)
    schema = pa.schema([(c.source, pa.string()) for c in spec.columns])
    good_idx = np.flatnonzero(ok)

    def parse(idx: np.ndarray) -> pa.Table:
        payload = b"\n".join(lines[i] for i in idx) + b"\n"
        return pajson.read_json(io.BytesIO(payload), parse_options=pajson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"))

    try:
        table = parse(good_idx) if len(good_idx) else schema.empty_table()
    except pa.ArrowInvalid:
        # a line that looks whole is still broken: find the culprits one by one
        keep = []
        for i in good_idx:
            try:
                json.loads(lines[i])
                keep.append(i)
            except json.JSONDecodeError:
                ok[i] = False
        good_idx = np.asarray(keep, dtype=np.int64)
        try:
            table = parse(good_idx) if len(good_idx) else schema.empty_table()
        except pa.ArrowInvalid as exc:
            raise RegistryFileError(spec.code, path, f"cannot parse JSON lines: {exc}") from exc
    malformed = [(int(i) + 1, lines[i].decode("utf-8", errors="replace")) for i in np.flatnonzero(~ok)]
    return RawExport(table.append_column("_row", pa.array(good_idx + 1, type=pa.int64())), malformed)


# ------------------------------------------------------------------------------- database
def _read_database(spec: RegistrySpec, url: str) -> RawExport:
    import sqlalchemy as sa

    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    where = f"{shown} table {spec.source.table}"
    try:
        engine = sa.create_engine(url)
        with engine.connect() as con:
            if not sa.inspect(con).has_table(spec.source.table):
                raise RegistryFileError(spec.code, where, "table not found in the database")
            result = con.execute(sa.text(f'SELECT * FROM "{spec.source.table}"'))
            names = list(result.keys())
            rows = result.fetchall()
    except RegistryFileError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        raise RegistryFileError(spec.code, where, f"database unreachable or unreadable: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc
    columns = list(zip(*rows)) if rows else [[] for _ in names]
    table = pa.table({n: pa.array([None if v is None else str(v) for v in col], type=pa.string()) for n, col in zip(names, columns)})
    table = table.append_column("_row", pa.array(np.arange(1, table.num_rows + 1), type=pa.int64()))
    return RawExport(table, [], source=where, bytes=0)
