"""A Parquet table read one column at a time, when a column is asked for.

National tables (13M person mentions at 1M persons, 67M at 5M) are processed field by field: the
linker encodes each column into integer codes, golden records vote one field after another. Read
whole, the table's text columns would sit in memory together for the whole stage; read this
way, only the column being encoded is there, and it is freed as soon as its codes are.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ParquetColumns"]


class ParquetColumns:
    """``column(name)`` reads that column from the file (every call reads it again); the rest
    mirrors the parts of ``pyarrow.Table`` the resolution code uses."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file = pq.ParquetFile(self.path)
        self.schema = self._file.schema_arrow
        self.num_rows = self._file.metadata.num_rows

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def __len__(self) -> int:
        return self.num_rows

    def column(self, name: str) -> pa.ChunkedArray:
        if name not in self.schema.names:
            raise KeyError(name)
        return pq.read_table(self.path, columns=[name]).column(0)

    def read(self, columns: list[str]) -> pa.Table:
        return pq.read_table(self.path, columns=columns)
