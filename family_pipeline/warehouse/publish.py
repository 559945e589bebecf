"""Publishing a mart: one transaction per mart and snapshot.

    BEGIN
      CREATE SCHEMA IF NOT EXISTS <schema>; CREATE TABLE IF NOT EXISTS <schema>.<mart> (…)
      ALTER TABLE … ADD COLUMN  (columns the source gained since the table was made)
      DELETE FROM <schema>.<mart> WHERE snapshot_date = <snapshot>     -- a rerun replaces its snapshot
      <bulk load: DuckDB INSERT … SELECT / PostgreSQL COPY>
      DELETE snapshots older than the newest <keep_snapshots>
    COMMIT

Readers see the previous snapshot until the commit; a run that fails or is killed midway leaves
the table as it was. SQLAlchemy makes the connection, the transaction and the schema; the rows
go through each engine's native bulk path (``family_pipeline.warehouse.bulk``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from family_pipeline.warehouse.bulk import duckdb_insert, postgres_copy
from family_pipeline.warehouse.catalog import MartSpec
from family_pipeline.warehouse.shaping import MartQuery, mart_query, quote

__all__ = ["PublishResult", "Snapshot", "Warehouse", "embedded_url", "sql_type"]

_SOURCE_VIEW = "mart_source"


def embedded_url(path: Path | str) -> str:
    """SQLAlchemy URL of the embedded DuckDB warehouse file at ``path``."""
    return f"duckdb:///{Path(path).resolve()}"


@dataclass(frozen=True)
class Snapshot:
    """What a publish replaces: every row of ``date`` in the mart. ``run_id`` says who wrote it."""

    date: dt.date
    run_id: str


@dataclass(frozen=True)
class PublishResult:
    mart: str
    schema: str
    table: str
    snapshot: Snapshot
    rows: int
    #: rows of the same snapshot that the publish replaced (a rerun)
    replaced_rows: int
    #: snapshots older than the newest ``keep_snapshots`` that were deleted
    expired_snapshots: int
    snapshots: int
    columns: tuple[tuple[str, str], ...]
    dropped: tuple[str, ...]
    pseudonymized: tuple[str, ...]
    dialect: str
    bulk_path: str
    seconds: float
    added_columns: tuple[str, ...] = field(default=())

    @property
    def rows_per_second(self) -> float:
        return round(self.rows / self.seconds, 1) if self.seconds > 0 else float(self.rows)


def sql_type(t: pa.DataType) -> sa.types.TypeEngine:
    """The SQL column type of an Arrow type (the same on DuckDB and PostgreSQL)."""
    if pa.types.is_dictionary(t):
        return sql_type(t.value_type)
    if pa.types.is_boolean(t):
        return sa.Boolean()
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return sa.SmallInteger()
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return sa.Integer()
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return sa.BigInteger()
    if pa.types.is_uint64(t):
        return sa.Numeric(20, 0)
    if pa.types.is_floating(t):
        return sa.Double()
    if pa.types.is_decimal(t):
        return sa.Numeric(t.precision, t.scale)
    if pa.types.is_date(t):
        return sa.Date()
    if pa.types.is_timestamp(t):
        return sa.DateTime(timezone=t.tz is not None)
    if pa.types.is_time(t):
        return sa.Time()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return sa.LargeBinary()
    return sa.Text()


class Warehouse:
    """A SQL warehouse reached through SQLAlchemy: DuckDB (``duckdb:///<file>``, embedded) or
    PostgreSQL (``postgresql+psycopg2://…``)."""

    def __init__(self, url: str, lock_wait_seconds: float = 300):
        parsed = sa.engine.make_url(url)
        if parsed.drivername == "postgresql":  # SQLAlchemy 2.1 would pick psycopg 3; COPY here uses psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg2")
        self.engine = sa.create_engine(parsed)
        self.lock_wait_seconds = lock_wait_seconds
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("duckdb", "postgresql"):
            raise ValueError(f"warehouse dialect {self.dialect!r} is not supported (duckdb or postgresql)")
        if self.dialect == "postgresql" and self.engine.dialect.driver != "psycopg2":
            raise ValueError("a PostgreSQL warehouse is reached with psycopg2 (postgresql+psycopg2://…) for COPY")
        if self.dialect == "duckdb":
            Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ publishing
    def publish(self, spec: MartSpec, source: Path | str | pa.Table, snapshot: Snapshot,
                keep_snapshots: int = 1) -> PublishResult:
        """Publish ``source`` (a Parquet file or folder, or an Arrow table) as the mart's ``snapshot``,
        replacing that snapshot if it exists, in one transaction."""
        t0 = time.perf_counter()
        shaper = duckdb.connect()  # the PostgreSQL path shapes rows here; the DuckDB path in the warehouse
        try:
            if isinstance(source, pa.Table):
                shaper.register(_SOURCE_VIEW, source)
                expression = _SOURCE_VIEW
            else:
                expression = parquet_scan(source)
            schema = shaper.sql(f"SELECT * FROM {expression} LIMIT 0").to_arrow_table().schema
            query = mart_query(spec, schema, expression, snapshot.date, snapshot.run_id)
            out_schema = query.relation(shaper).limit(0).to_arrow_table().schema
            with self._connect() as conn, conn.begin():
                if self.dialect == "postgresql":
                    # one publisher per mart at a time (two runs racing would both keep their rows)
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": spec.table_name})
                table, added = self._ensure_table(conn, spec, out_schema)
                target = f"{quote(spec.schema_name)}.{quote(spec.name)}"
                replaced = conn.execute(sa.delete(table).where(table.c.snapshot_date == snapshot.date)).rowcount
                rows = self._bulk(conn, target, query, source, shaper)
                expired = self._expire(conn, table, keep_snapshots)
                snapshots = conn.execute(sa.select(sa.func.count(sa.distinct(table.c.snapshot_date)))).scalar()
        finally:
            shaper.close()
        columns = tuple((f.name, str(f.type)) for f in out_schema)
        return PublishResult(mart=spec.name, schema=spec.schema_name, table=f"{spec.schema_name}.{spec.name}",
                             snapshot=snapshot, rows=rows, replaced_rows=max(int(replaced or 0), 0),
                             expired_snapshots=expired, snapshots=int(snapshots), columns=columns,
                             dropped=query.dropped, pseudonymized=query.pseudonymized, dialect=self.dialect,
                             bulk_path="duckdb insert-select" if self.dialect == "duckdb" else "postgresql copy",
                             seconds=round(time.perf_counter() - t0, 3), added_columns=added)

    def _connect(self) -> sa.Connection:
        """A connection; the embedded DuckDB file admits one writing process at a time, so a
        publisher that finds it locked (another run publishing) waits for it a while."""
        deadline = time.monotonic() + self.lock_wait_seconds
        while True:
            try:
                return self.engine.connect()
            except sa.exc.DBAPIError as exc:
                if self.dialect != "duckdb" or "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def _bulk(self, conn: sa.Connection, target: str, query: MartQuery, source, shaper) -> int:
        if self.dialect == "postgresql":
            return postgres_copy(conn.connection.dbapi_connection, target, query, shaper)
        warehouse = conn.connection.driver_connection
        if not isinstance(source, pa.Table):
            return duckdb_insert(warehouse, target, query)  # DuckDB scans the Parquet file itself
        warehouse.register(_SOURCE_VIEW, source)
        try:
            return duckdb_insert(warehouse, target, query)
        finally:
            warehouse.unregister(_SOURCE_VIEW)

    def _ensure_table(self, conn: sa.Connection, spec: MartSpec, schema: pa.Schema) -> tuple[sa.Table, tuple[str, ...]]:
        """The mart's table, created from the shaped Arrow schema, or extended by the columns the
        source gained since (old snapshots hold nulls there)."""
        conn.execute(sa.schema.CreateSchema(spec.schema_name, if_not_exists=True))
        table = sa.Table(spec.name, sa.MetaData(), *(sa.Column(f.name, sql_type(f.type), quote=True) for f in schema),
                         schema=spec.schema_name)
        existing = _columns(conn, spec.schema_name, spec.name)
        if not existing:
            if self.dialect == "postgresql":
                sa.Index(f"ix_{spec.name}_snapshot_date", table.c.snapshot_date)
            table.create(conn)
            return table, ()
        added = [f.name for f in schema if f.name not in existing]
        for name in added:
            kind = table.c[name].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {quote(spec.schema_name)}.{quote(spec.name)} "
                                 f"ADD COLUMN {quote(name)} {kind}"))
        return table, tuple(added)

    @staticmethod
    def _expire(conn: sa.Connection, table: sa.Table, keep: int) -> int:
        dates = [r[0] for r in conn.execute(sa.select(table.c.snapshot_date).distinct()
                                            .order_by(table.c.snapshot_date.desc()))]
        old = dates[keep:]
        if old:
            conn.execute(sa.delete(table).where(table.c.snapshot_date.in_(old)))
        return len(old)

    # ------------------------------------------------------------------ reading back
    def snapshots(self, spec: MartSpec) -> dict[dt.date, dict]:
        """Rows and run ids of each snapshot held in the mart's table (empty when it does not exist)."""
        with self.engine.connect() as conn:
            if not _columns(conn, spec.schema_name, spec.name):
                return {}
            rows = conn.execute(sa.text(
                f"SELECT snapshot_date, snapshot_run_id, count(*) FROM {quote(spec.schema_name)}.{quote(spec.name)} "
                "GROUP BY snapshot_date, snapshot_run_id ORDER BY snapshot_date, snapshot_run_id")).fetchall()
        out: dict[dt.date, dict] = {}
        for date, run_id, count in rows:
            entry = out.setdefault(date, {"rows": 0, "run_ids": []})
            entry["rows"] += int(count)
            entry["run_ids"].append(run_id)
        return out

    def tables(self, schema: str) -> list[str]:
        """Tables of ``schema`` (empty when the schema does not exist)."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :schema ORDER BY table_name"),
                {"schema": schema}).scalars())

    def read(self, table: str, snapshot_date: dt.date | None = None) -> pd.DataFrame:
        """A mart (``schema.name``) as a DataFrame; for tests and small marts."""
        schema, name = table.split(".", 1)
        q = f"SELECT * FROM {quote(schema)}.{quote(name)}"
        params = {}
        if snapshot_date is not None:
            q += " WHERE snapshot_date = :d"
            params["d"] = snapshot_date
        with self.engine.connect() as conn:
            return pd.read_sql(sa.text(q), conn, params=params)


def _columns(conn: sa.Connection, schema: str, table: str) -> dict[str, str]:
    """Column name → SQL type of an existing table (empty when there is none); read from
    ``information_schema``, which DuckDB and PostgreSQL both answer."""
    rows = conn.execute(sa.text(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position"),
        {"schema": schema, "table": table})
    return {name: kind for name, kind in rows}


def parquet_scan(path: Path | str) -> str:
    """DuckDB's scan of a Parquet file, or of a folder of Hive-partitioned files
    (``<table>.parquet/region=KZ-10/…``, the partition columns included)."""
    path = Path(path)
    if path.is_dir():
        return f"read_parquet({_literal(str(path / '**' / '*.parquet'))}, hive_partitioning = true)"
    if not path.exists():
        raise FileNotFoundError(f"no table at {path}: materialize its upstream asset first")
    return f"read_parquet({_literal(str(path))})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
