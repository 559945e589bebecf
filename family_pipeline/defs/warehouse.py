"""Warehouse assets (group ``warehouse``): one asset per enabled mart of
``seeds/warehouse_marts.yaml``, publishing its lake table (or the ``dq_alerts`` store) to the SQL
warehouse. The logic lives in ``family_pipeline.warehouse``; these assets pick the source, the
snapshot and the warehouse, and report counts — never personal data.

The asset graph is the same whichever engine is configured: kinds are static, the engine only
shows in the metadata.
"""

import datetime as dt
import os

import dagster as dg

from family_pipeline.defs.alerts import AlertingResource
from family_pipeline.defs.resources import DATA_ENGINEERING, LakeResource
from family_pipeline.execution import COPIES, step_tags
from family_pipeline.lib.lake import Lake
from family_pipeline.warehouse import (
    MartSpec,
    Snapshot,
    Warehouse,
    alerts_table,
    embedded_url,
    mart_catalog,
)

GROUP = "warehouse"
OWNER = DATA_ENGINEERING
WAREHOUSE_URL_ENV = "FAMILY_PIPELINE_WAREHOUSE_URL"


def mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, name])


class WarehouseResource(dg.ConfigurableResource):
    """Where marts are published: the SQLAlchemy URL of a PostgreSQL warehouse
    (``$FAMILY_PIPELINE_WAREHOUSE_URL``, e.g. ``postgresql+psycopg2://user@host/db``), or, when
    empty, the embedded DuckDB file ``<data>/warehouse.duckdb``."""

    url: str = ""

    def warehouse(self, lake: Lake) -> Warehouse:
        return Warehouse(self.url or embedded_url(lake.warehouse_path))


class SnapshotConfig(dg.Config):
    snapshot_date: str = ""
    """ISO date of the snapshot to publish (default: today, UTC); publishing a date again replaces it"""


def _snapshot(config: SnapshotConfig, run_id: str) -> Snapshot:
    date = dt.date.fromisoformat(config.snapshot_date) if config.snapshot_date else dt.datetime.now(dt.timezone.utc).date()
    return Snapshot(date=date, run_id=run_id)


def mart_asset(mart: MartSpec) -> dg.AssetsDefinition:
    """The asset publishing ``mart``."""
    catalog = mart_catalog()

    @dg.asset(
        key=mart_key(mart.name),
        group_name=GROUP,
        deps=[dg.AssetKey(list(mart.upstream))] if mart.upstream else [],
        kinds={"sql"},
        owners=[OWNER],
        tags={"privacy": mart.schema_name},
        description=f"{mart.description.strip()} Published to `{mart.table_name}` from {mart.source.describe()}.",
        op_tags=step_tags(COPIES),
    )
    def publish_mart(context: dg.AssetExecutionContext, config: SnapshotConfig, lake: LakeResource,
                     warehouse: WarehouseResource, alerting: AlertingResource) -> dg.MaterializeResult:
        store = lake.lake()
        if mart.source.database == "alerts":
            source = alerts_table(alerting.store().engine)
        else:
            source = store.table(mart.source.stage, mart.source.table)
        with warehouse.warehouse(store) as target:
            result = target.publish(mart, source, _snapshot(config, context.run_id), catalog.snapshots_kept(mart))
        context.log.info(f"{result.rows} rows published to {result.table} ({result.dialect}, {result.bulk_path}) "
                         f"for snapshot {result.snapshot.date} in {result.seconds}s; "
                         f"{result.replaced_rows} rows of the same snapshot replaced")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": result.rows,
            "dagster/table_name": result.table,
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, kind) for name, kind in result.columns]),
            "schema": result.schema,
            "snapshot_date": str(result.snapshot.date),
            "replaced_rows": result.replaced_rows,
            "snapshots_kept": result.snapshots,
            "expired_snapshots": result.expired_snapshots,
            "dropped_columns": dg.MetadataValue.json(list(result.dropped)),
            "pseudonymized_columns": dg.MetadataValue.json(list(result.pseudonymized)),
            "added_columns": dg.MetadataValue.json(list(result.added_columns)),
            "engine": result.dialect,
            "bulk_path": result.bulk_path,
            "seconds": result.seconds,
            "rows_per_second": result.rows_per_second,
        })

    return publish_mart


@dg.definitions
def warehouse() -> dg.Definitions:
    url = os.environ.get(WAREHOUSE_URL_ENV)
    return dg.Definitions(
        assets=[mart_asset(m) for m in mart_catalog().enabled()],
        # the URL may hold a password: an EnvVar is resolved at run time and never shown in the UI
        resources={"warehouse": WarehouseResource(url=dg.EnvVar(WAREHOUSE_URL_ENV) if url else "")},
    )
