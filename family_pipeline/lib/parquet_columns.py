"""A Parquet table read one column at a time, when a column is asked for.

National tables (13M person mentions at 1M persons, 67M at 5M) are processed field by field: the
linker encodes each column into integer codes, golden records vote one field after another. Read
whole, the table's text columns would sit in memory together for the whole stage; read this
way, only the column being encoded is there, and it is freed as soon as its codes are.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ParquetColumns", "ParquetRuns"]


class ParquetColumns:
    """``column(name)`` reads that column from the file, every call again; ``slices`` reads a few
    columns a slice of rows at a time; the rest mirrors the parts of ``pyarrow.Table`` the
    resolution code uses."""

    def __init__(self, path: Path | str, encoded: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        #: columns of few distinct values that ``column`` returns dictionary-encoded (as
        #: ``dictionary`` reads them): the registry of each of 67M mentions at 5M persons costs
        #: 0.3 GB of codes instead of 1.3 GB of text, and no text is decoded or hashed again
        self.encoded = frozenset(encoded)
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
        if name in self.encoded:
            return self.dictionary(name)
        return pq.read_table(self.path, columns=[name]).column(0)

    def dictionary(self, name: str) -> pa.ChunkedArray:
        """The column dictionary-encoded as the file stores it (cheap for few distinct values:
        no text is materialised), one dictionary for every chunk."""
        if name not in self.schema.names:
            raise KeyError(name)
        table = pq.read_table(self.path, columns=[name], read_dictionary=[name])
        return table.unify_dictionaries().column(0)

    def slices(self, columns: list[str], rows: int) -> Iterator[tuple[int, pa.Table]]:
        """(first row, table of ``columns``) for consecutive slices of ``rows`` rows (the last
        may be shorter), read as the file is read, whatever its row groups: a national table
        costs one slice's memory and a row group's. Columns of ``encoded`` come
        dictionary-encoded, with the dictionary of their slice.

        The file is read a row group at a time, each cut where a slice ends: Arrow's batch
        reader (``iter_batches``) held more and more of what it had read, the 67M mentions at
        5M persons 0.27 GB after the first 2M rows and 1.2 GB at the end."""
        wanted = [c for c in columns if c not in self.schema.names]
        if wanted:
            raise KeyError(wanted)
        source = pq.ParquetFile(self.path, read_dictionary=[c for c in columns if c in self.encoded])
        pieces: list[pa.Table] = []
        count = start = 0
        for group in range(source.metadata.num_row_groups):
            part = source.read_row_group(group, columns=columns, use_threads=True)
            while part.num_rows:
                take = min(rows - count, part.num_rows)
                pieces.append(part.slice(0, take))
                part = part.slice(take)
                count += take
                if count == rows:
                    table = pa.concat_tables(pieces).combine_chunks()
                    pieces, count = [], 0
                    yield start, table
                    del table  # the caller's, not held while the next slice is read
                    start += rows
            del part
        if count or not start:
            schema = pa.schema([source.schema_arrow.field(c) for c in columns])
            yield start, pa.concat_tables(pieces).combine_chunks() if pieces else schema.empty_table()


class ParquetRuns:
    """A Parquet file whose rows come in runs of one value of ``column`` (a crosswalk written
    registry after registry): where each value's run lies, found once, and a run read from the
    row groups that hold it only.

    A filter on the column cannot do as well: a row group spanning two registries has statistics
    from the smaller to the larger name, so it is read for every registry named between them. At
    5M persons (67M references in 65 row groups, the registries not in name order) a registry's
    filtered read touched 14-19 row groups: 2.6 s for 124k references. A value found in several
    runs is read through the filter (the same rows, in file order)."""

    def __init__(self, path: Path | str, column: str) -> None:
        self.path = Path(path)
        self.column = column
        meta = pq.ParquetFile(self.path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        #: first row of each row group, and the file's row count last
        self.group_starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.runs: dict = {}
        self.scattered: set = set()
        source = pq.ParquetFile(self.path, read_dictionary=[column])
        at, current, start = 0, None, 0
        for i in range(meta.num_row_groups):  # one row group's codes at a time
            chunk = source.read_row_group(i, columns=[column]).column(0).combine_chunks()
            values = chunk.dictionary.to_pylist()
            codes = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            if not len(codes):
                continue
            changes = np.flatnonzero(codes[1:] != codes[:-1]) + 1
            for pos in np.r_[0, changes].astype(np.int64).tolist():
                value = values[codes[pos]] if codes[pos] >= 0 else None
                if at + pos == 0 or value != current:
                    self._close(current, start, at + pos)
                    current, start = value, at + pos
            at += len(codes)
        self._close(current, start, at)

    def _close(self, value, start: int, stop: int) -> None:
        if stop <= start:
            return
        if value in self.runs or value in self.scattered:
            self.runs.pop(value, None)
            self.scattered.add(value)
        else:
            self.runs[value] = (start, stop)

    def read(self, value, columns: list[str], read_dictionary: tuple[str, ...] = ()) -> pa.Table:
        """The rows whose ``column`` is ``value``, in file order (an empty table when none)."""
        if value in self.scattered:
            return pq.read_table(self.path, columns=columns, filters=[(self.column, "=", value)],
                                 read_dictionary=list(read_dictionary))
        source = pq.ParquetFile(self.path, read_dictionary=list(read_dictionary))
        start, stop = self.runs.get(value, (0, 0))
        if stop <= start:
            return source.schema_arrow.empty_table().select(columns)
        first = int(np.searchsorted(self.group_starts, start, side="right")) - 1
        last = int(np.searchsorted(self.group_starts, stop, side="left")) - 1
        table = source.read_row_groups(list(range(first, last + 1)), columns=columns)
        return table.slice(start - int(self.group_starts[first]), stop - start)
