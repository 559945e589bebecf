"""Mart sources that are not lake tables: tables of the project's own SQL databases."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from family_pipeline.alerts.delivery import DQ_ALERTS

__all__ = ["alerts_table"]


def _arrow_type(column: sa.Column) -> pa.DataType:
    kind = column.type
    if isinstance(kind, sa.Integer):
        return pa.int64()
    if isinstance(kind, sa.DateTime):
        return pa.timestamp("us")
    return pa.string()


def alerts_table(database: str | sa.Engine) -> pa.Table:
    """The ``dq_alerts`` table of the alert store (a SQLAlchemy URL or engine); empty when no
    digest was stored yet. One row per digest and recipient, so it stays small."""
    schema = pa.schema([(c.name, _arrow_type(c)) for c in DQ_ALERTS.columns])
    engine = sa.create_engine(database) if isinstance(database, str) else database
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(DQ_ALERTS.name):
                return schema.empty_table()
            frame = pd.read_sql(sa.select(DQ_ALERTS).order_by(DQ_ALERTS.c.id), conn)
    finally:
        engine.dispose()
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
