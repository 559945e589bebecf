"""Shaping a source into a mart: one DuckDB ``SELECT`` that keeps, drops and pseudonymizes
columns and adds the snapshot columns, run inside DuckDB over Parquet or Arrow (columnar,
out of core — no row ever becomes a Python object).

Pseudonymized columns hold ``HMAC-SHA256(secret, str(value))`` as 16 hex characters, exactly what
``family_pipeline.lib.pseudonym.pseudonyms`` computes in Python, but evaluated by DuckDB's
``sha256`` over the HMAC pads (``H((K⊕opad) ‖ H((K⊕ipad) ‖ m))``). The pads are passed as
query parameters, never spliced into SQL text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from family_pipeline.lib.pseudonym import secret
from family_pipeline.warehouse.catalog import MartCatalogError, MartSpec

__all__ = ["SNAPSHOT_COLUMNS", "MartQuery", "hmac_pads", "mart_query", "quote"]

#: every mart row carries the snapshot it belongs to
SNAPSHOT_COLUMNS = ("snapshot_date", "snapshot_run_id")
#: hex characters kept of the keyed hash (64 bits)
KEY_LENGTH = 16
_BLOCK = 64  # SHA-256 block size


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer HMAC-SHA256 pads of ``key`` (RFC 2104)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


@dataclass(frozen=True)
class MartQuery:
    """A ``SELECT`` over the relation named ``source`` giving the mart's rows."""

    sql: str
    parameters: dict
    columns: tuple[str, ...]
    dropped: tuple[str, ...]
    pseudonymized: tuple[str, ...]

    def relation(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
        return con.sql(self.sql, params=self.parameters)


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_nested(t) or pa.types.is_map(t)


def mart_query(spec: MartSpec, source_schema: pa.Schema, source: str, snapshot_date: dt.date, run_id: str) -> MartQuery:
    """The mart's ``SELECT`` over ``source`` (a table, view or ``read_parquet(...)`` expression).
    Fails before anything is written if an analytics mart would carry an identifying column."""
    names = source_schema.names
    spec.check_publishable(names)
    clash = [c for c in SNAPSHOT_COLUMNS if c in names]
    if clash:
        raise MartCatalogError(f"mart {spec.name!r}: source {spec.source.describe()} already has {clash}, "
                               "which the warehouse reserves for the snapshot")
    keep = set(spec.columns) if spec.columns is not None else None
    if keep is not None and (missing := sorted(keep - set(names))):
        raise MartCatalogError(f"mart {spec.name!r}: columns {missing} are not in {spec.source.describe()}")
    exprs, columns, dropped, hashed = [], [], [], []
    for field in source_schema:
        name = field.name
        if name in spec.pseudonymize:
            target = spec.pseudonymize[name]
            value = f"encode(CAST({quote(name)} AS VARCHAR))"
            exprs.append(f"left(sha256($opad || unhex(sha256($ipad || {value}))), {KEY_LENGTH}) AS {quote(target)}")
            columns.append(target)
            hashed.append(name)
        elif name in spec.drop or (keep is not None and name not in keep):
            dropped.append(name)
        else:
            expr = f"CAST({quote(name)} AS VARCHAR)" if _is_nested(field.type) else quote(name)
            exprs.append(f"{expr} AS {quote(name)}")
            columns.append(name)
    if len(set(columns)) != len(columns):
        raise MartCatalogError(f"mart {spec.name!r}: published column names repeat: {columns}")
    inner, outer = hmac_pads(secret())
    parameters = {"snapshot_date": snapshot_date, "run_id": run_id}
    if hashed:
        parameters.update(ipad=inner, opad=outer)
    exprs += ["CAST($snapshot_date AS DATE) AS snapshot_date", "CAST($run_id AS VARCHAR) AS snapshot_run_id"]
    sql = "SELECT " + ", ".join(exprs) + f" FROM {source}"
    return MartQuery(sql=sql, parameters=parameters, columns=tuple(columns) + SNAPSHOT_COLUMNS,
                     dropped=tuple(dropped), pseudonymized=tuple(hashed))
