"""The default instance's storage: Dagster's SQLite storage, the same files under
``$DAGSTER_HOME``, whose event log keeps its database connections open.

Dagster's SQLite event log opens a new engine and a new connection for every event it stores,
and checks the database's migration revision (reading every migration script) the first time a
process touches a database file. A run of the family map stores tens of thousands of events
(91 registries, 8 checks each, 277 cross-registry checks, their planned events): measured on
2 cores, the registries stage at 100k persons spent 43 of its 92 s opening connections and
compiling the same statements again. This storage differs in these things only:

- one engine per database file and process, holding one connection, kept across events (the
  statements it compiled are kept with it); at most :data:`OPEN_RUN_SHARDS` run databases stay
  open besides the index, so a long-lived webserver does not collect open files;
- whether the index has a table is asked of the database once, not before every asset read;
- the head migration revision (one for the event log, run and schedule databases) is read once
  per process; a database already at it is opened without Dagster's migration check.

Everything else, the schema, the files and the queries, is Dagster's. A process forked after
connecting (the executor's step processes) never uses its parent's connections: engines are kept
per process id, and those of another process are dropped without closing what they hold.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import closing, contextmanager

from alembic.script import ScriptDirectory
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite import create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

__all__ = ["OPEN_RUN_SHARDS", "SqliteEventLogStorage", "SqliteStorage"]

#: run databases whose connection stays open at once, besides the index
OPEN_RUN_SHARDS = 8


@functools.cache
def head_revision() -> str:
    """The newest migration of Dagster's SQLite databases (event log, runs and schedules share one
    history of migrations), read once per process."""
    config = get_alembic_config(sqlite_event_log.__file__)
    return ScriptDirectory.from_config(config).as_revision_number("head")


class SqliteEventLogStorage(sqlite_event_log.SqliteEventLogStorage):
    """Dagster's SQLite event log with its connections kept open (see the module)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[tuple[int, str], Engine] = OrderedDict()
        self._tables: set[str] = set()  # tables of the index found there (they are never dropped)
        super().__init__(base_dir, inst_data=inst_data)

    def has_table(self, table_name: str) -> bool:
        """Dagster asks this before most asset reads, each time opening an engine of its own."""
        if table_name in self._tables:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables.add(table_name)
        return found

    def _engine(self, shard: str) -> Engine:
        pid = os.getpid()
        for key in [k for k in self._engines if k[0] != pid]:  # inherited through a fork
            self._engines.pop(key).dispose(close=False)
        key = (pid, shard)
        engine = self._engines.get(key)
        if engine is not None:
            self._engines.move_to_end(key)
            return engine
        engine = sqlite_event_log.create_engine(
            self.conn_string_for_shard(shard), poolclass=QueuePool, pool_size=1, max_overflow=2,
            connect_args={"timeout": sqlite_event_log.SQLITE_BUSY_TIMEOUT_SECONDS})
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[key] = engine
        runs = [k for k in self._engines if k[1] != sqlite_event_log.INDEX_SHARD_NAME]
        for old in runs[:-OPEN_RUN_SHARDS]:
            self._engines.pop(old).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # as Dagster's: one connection in use at a time per storage
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        if not _at_head(engine.url.database or "", "event_logs"):
            super()._initdb(engine, for_index_shard=for_index_shard)

    def dispose(self) -> None:
        with self._db_lock:
            while self._engines:
                key, engine = self._engines.popitem()
                engine.dispose(close=key[0] == os.getpid())
        super().dispose()


def _at_head(path: str, table: str) -> bool:
    """Whether the SQLite database at ``path`` is made (``table`` is there) and migrated to the
    head revision."""
    if not os.path.exists(path):
        return False
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as con:
            (version,) = con.execute("select version_num from alembic_version").fetchone() or (None,)
            made = con.execute("select 1 from sqlite_master where type = 'table' and name = ?", (table,)).fetchone()
    except sqlite3.Error:
        return False
    return made is not None and version == head_revision()


class SqliteStorage(DagsterSqliteStorage):
    """``storage: custom`` in dagster.yaml: Dagster's SQLite storage under ``base_dir`` (runs,
    schedules, the event log in the same files), with :class:`SqliteEventLogStorage`; the run
    and schedule databases, when made and at the head revision, are opened without Dagster's
    migration check (which reads every migration script again in each step process)."""

    def __init__(self, base_dir: str, inst_data=None):
        self.base_dir = base_dir
        runs, schedules = _runs_directory(base_dir), _schedule_directory(base_dir)
        self._run_storage = (SqliteRunStorage(create_db_conn_string(runs, "runs"))
                             if _at_head(os.path.join(runs, "runs.db"), "instance_info")
                             else SqliteRunStorage.from_local(runs))
        self._event_log_storage = SqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = (SqliteScheduleStorage(create_db_conn_string(schedules, "schedules"))
                                  if _at_head(os.path.join(schedules, "schedules.db"), "jobs")
                                  else SqliteScheduleStorage.from_local(schedules))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
