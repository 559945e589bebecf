"""Each engine's native bulk path. SQLAlchemy opens the connection and the transaction; the rows
themselves never pass through it:

- DuckDB: ``INSERT INTO … SELECT …`` over Parquet or Arrow inside the warehouse database itself;
- PostgreSQL: one ``COPY … FROM STDIN (FORMAT csv)`` fed by a stream that turns Arrow record
  batches into CSV one batch at a time, so a national table never sits in memory.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from family_pipeline.warehouse.shaping import MartQuery, quote

__all__ = ["BATCH_ROWS", "CsvStream", "duckdb_insert", "postgres_copy"]

#: rows per Arrow batch streamed into COPY
BATCH_ROWS = 100_000


def duckdb_insert(con: duckdb.DuckDBPyConnection, table: str, query: MartQuery) -> int:
    """Insert the mart's rows into ``table`` (schema-qualified, quoted) of the DuckDB ``con``."""
    columns = ", ".join(quote(c) for c in query.columns)
    result = con.execute(f"INSERT INTO {table} ({columns}) {query.sql}", query.parameters).fetchone()
    return int(result[0]) if result else 0


class CsvStream(io.RawIOBase):
    """A read-only file of CSV text (no header) produced lazily from Arrow record batches; what
    ``copy_expert`` reads. Strings are quoted and nulls are left empty, so PostgreSQL tells an
    empty string from a null."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self._batches = iter(batches)
        self._buffer = memoryview(b"")
        self._options = pacsv.WriteOptions(include_header=False, quoting_style="needed")

    def readable(self) -> bool:
        return True

    def _refill(self) -> bool:
        for batch in self._batches:
            if batch.num_rows:
                sink = io.BytesIO()
                pacsv.write_csv(batch, sink, write_options=self._options)
                self._buffer = memoryview(sink.getvalue())
                return True
        return False

    def readinto(self, target) -> int:
        if not self._buffer and not self._refill():
            return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def postgres_copy(dbapi_connection, table: str, query: MartQuery, source: duckdb.DuckDBPyConnection) -> int:
    """COPY the mart's rows, computed by DuckDB on ``source`` and streamed in batches, into
    ``table`` (schema-qualified, quoted) over a psycopg2 connection already in a transaction."""
    reader = query.relation(source).to_arrow_reader(BATCH_ROWS)
    columns = ", ".join(quote(c) for c in query.columns)
    with dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)",
                           io.BufferedReader(CsvStream(reader), buffer_size=1 << 20))
        return int(cursor.rowcount)
