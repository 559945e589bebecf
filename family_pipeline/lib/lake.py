"""Where every stage keeps its data: one data directory, columnar files under it.

    <root>/landing/<registry>/<file>      agency exports (the landing zone)
    <root>/landing/<registry>/manifest.json  extract time and row count sent by the agency
    <root>/truth/<table>.parquet           the synthetic country's ground truth (evaluation only)
    <root>/lake/<stage>/<table>.parquet    tables materialized by the pipeline
    <root>/reports/                        HTML reports and the evaluation JSON
    <root>/warehouse.duckdb                the embedded warehouse of marts

The root is ``$FAMILY_PIPELINE_DATA`` or ``./data``; it is read when a ``Lake`` is built, never
at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def default_data_dir() -> Path:
    return Path(os.environ.get("FAMILY_PIPELINE_DATA", "data")).resolve()


@dataclass(frozen=True)
class Lake:
    root: Path

    @classmethod
    def default(cls) -> Lake:
        return cls(default_data_dir())

    # -------------------------------------------------------------- locations
    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def truth_dir(self) -> Path:
        return self.root / "truth"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    def landing_dir(self, registry: str) -> Path:
        return self.landing / registry

    def truth(self, table: str) -> Path:
        return self.truth_dir / f"{table}.parquet"

    def table(self, stage: str, name: str) -> Path:
        return self.root / "lake" / stage / f"{name}.parquet"

    # -------------------------------------------------------------- I/O
    def write(self, stage: str, name: str, table: pa.Table) -> Path:
        return write_parquet(self.table(stage, name), table)

    def read(self, stage: str, name: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.table(stage, name), columns=columns)


#: rows per row group of every lake table
ROW_GROUP = 1 << 20


def write_parquet(path: Path, table: pa.Table) -> Path:
    """Write atomically (temp file + rename) so a killed run never leaves half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP)
    os.replace(tmp, path)
    return path


def write_columns(path: Path, columns: Mapping[str, np.ndarray | pa.Array | pa.ChunkedArray],
                  types: Mapping[str, pa.DataType] | None = None, rows_per_slice: int = 4 * ROW_GROUP) -> Path:
    """``write_parquet`` of the table these columns make (numpy arrays or Arrow, each cast to its
    entry in ``types``), made and written a slice of rows at a time: the cast copies exist for
    one slice, never for the whole table (the mention keys of 67M mentions at 5M persons, decoded
    to text, are 3 GB). The file is the one ``write_parquet`` writes."""
    if rows_per_slice % ROW_GROUP:
        raise ValueError(f"rows_per_slice must be a multiple of {ROW_GROUP} (the row groups of write_parquet)")
    types = types or {}
    n = len(next(iter(columns.values())))

    def rows(start: int, stop: int) -> pa.Table:
        out = {}
        for name, values in columns.items():
            part = values[start:stop]
            part = part if isinstance(part, (pa.Array, pa.ChunkedArray)) else pa.array(part)
            out[name] = part.cast(types[name]) if name in types else part
        return pa.table(out)

    return write_slices(path, (rows(s, min(s + rows_per_slice, n)) for s in range(0, max(n, 1), rows_per_slice)))


def write_slices(path: Path, slices: Iterable[pa.Table]) -> Path:
    """``write_parquet`` of the table the ``slices`` make one after another (each made only when
    the previous one is written; every slice but the last a multiple of ``ROW_GROUP`` rows, so
    the row groups are those of the whole table). One slice is written as ``write_parquet``
    writes it; several stream into a temporary file, renamed when the last is written."""
    slices = iter(slices)
    first = next(slices)
    second = next(slices, None)
    if second is None:
        return write_parquet(path, first)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with pq.ParquetWriter(tmp, first.schema, compression="zstd") as writer:
        writer.write_table(first, row_group_size=ROW_GROUP)
        del first
        writer.write_table(second, row_group_size=ROW_GROUP)
        del second
        for table in slices:
            writer.write_table(table, row_group_size=ROW_GROUP)
    os.replace(tmp, path)
    return path
