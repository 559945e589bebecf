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
from dataclasses import dataclass
from pathlib import Path

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


def write_parquet(path: Path, table: pa.Table) -> Path:
    """Write atomically (temp file + rename) so a killed run never leaves half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)
    os.replace(tmp, path)
    return path
