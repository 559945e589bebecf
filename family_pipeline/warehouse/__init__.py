"""The SQL warehouse: lake tables published as marts through SQLAlchemy — embedded DuckDB by
default, PostgreSQL when a URL is given — each engine loading rows by its native bulk path
(DuckDB ``INSERT … SELECT`` over Parquet, PostgreSQL ``COPY``). Restricted marts (persons with
IINs and names) and analytics marts (pseudonymous keys only) live in separate schemas. A rerun
replaces its snapshot in one transaction, never duplicates it. No Dagster here; the assets are
in ``family_pipeline.defs.warehouse``.
"""

from family_pipeline.warehouse.catalog import (
    ANALYTICS,
    RESTRICTED,
    MartCatalog,
    MartCatalogError,
    MartSource,
    MartSpec,
    forbidden_analytics_columns,
    load_marts,
    mart_catalog,
)
from family_pipeline.warehouse.publish import PublishResult, Snapshot, Warehouse, embedded_url
from family_pipeline.warehouse.sources import alerts_table

__all__ = [
    "ANALYTICS",
    "RESTRICTED",
    "MartCatalog",
    "MartCatalogError",
    "MartSource",
    "MartSpec",
    "PublishResult",
    "Snapshot",
    "Warehouse",
    "alerts_table",
    "embedded_url",
    "forbidden_analytics_columns",
    "load_marts",
    "mart_catalog",
]
