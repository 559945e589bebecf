"""One asset per registry of the catalog (group ``registries``), made by one factory.

Each asset reads its agency's export through the source resources, maps it to the canonical
schema, quarantines bad rows with a reason and writes both to the lake. Its metadata holds
counts only; a file that cannot be read fails this asset alone, naming the file and the problem.
"""


import time

import dagster as dg

from family_pipeline.catalog import RegistrySpec, catalog
from family_pipeline.defs.check_results import to_check_result
from family_pipeline.defs.resources import LakeResource, RegistrySourceResource
from family_pipeline.ingestion import RegistryFileError, ingest_registry
from family_pipeline.quality import CHECKS, registry_checks, write_flags
from family_pipeline.quality.expectations import read_snapshot, reference_date, suite_columns
from family_pipeline.quality.report import write_report

GROUP = "registries"
#: database-backed registries are retried: a flaky connection is worth a second try
DATABASE_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def registry_key(code: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, code])


def _table_schema(spec: RegistrySpec) -> dg.TableSchema:
    cols = [dg.TableColumn(c.name, c.type, description=f"agency column {c.source}") for c in spec.columns]
    return dg.TableSchema(columns=cols)


def _previous_rows_read(context: dg.AssetExecutionContext, key: dg.AssetKey) -> int | None:
    """Rows read by the last materialization before this one (for the row-count drift check)."""
    records = context.instance.fetch_materializations(key, limit=1).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("rows_read") if records[0].asset_materialization else None
    return int(value.value) if value is not None else None


def check_specs(spec: RegistrySpec) -> list[dg.AssetCheckSpec]:
    """The single-registry checks; they block downstream assets when the registry feeds scoring."""
    return [dg.AssetCheckSpec(name, asset=registry_key(spec.code), description=text, blocking=spec.feeds_scoring)
            for name, text in CHECKS.items()]


def build_registry_asset(spec: RegistrySpec) -> dg.AssetsDefinition:
    database = spec.source.location == "database"
    description = (
        f"{spec.name_en} — {spec.name_ru}. Owner: {spec.agency}. {spec.description}".strip()
    )

    @dg.asset(
        key=registry_key(spec.code),
        group_name=GROUP,
        owners=[spec.owner_email],
        description=description,
        kinds={"parquet", "sql" if database else spec.source.format},
        tags={"domain": spec.domain, "cadence": spec.cadence, "feeds_scoring": str(spec.feeds_scoring).lower()},
        metadata={"dagster/column_schema": _table_schema(spec), "owner_email": spec.owner_email},
        retry_policy=DATABASE_RETRY if database else None,
        code_version="1",
        check_specs=check_specs(spec),
    )
    def registry_asset(context: dg.AssetExecutionContext, lake: LakeResource,
                       registry_source: RegistrySourceResource) -> dg.MaterializeResult:
        try:
            result = ingest_registry(spec, lake.lake(), catalog(), registry_source.database_url or None)
        except RegistryFileError as exc:
            raise dg.Failure(description=str(exc), metadata={"file": exc.path, "problem": exc.problem},
                             allow_retries=database) from exc
        context.log.info(f"{spec.code}: {result.rows_read} rows read, {result.rows_clean} clean, "
                         f"{result.rows_quarantined} quarantined")
        store = lake.lake()
        checks_started = time.perf_counter()
        outcomes = registry_checks(
            spec, store.read("registries", spec.code, columns=suite_columns(spec)),
            store.read("quarantine", spec.code).to_pandas(),
            result.rows_read, _previous_rows_read(context, registry_key(spec.code)), result.extracted_at,
            reference_date(read_snapshot(store.landing / "snapshot.json")))
        write_flags(store, spec.code, "registry", outcomes)
        report = str(write_report(store, spec, context.run_id, "registry", outcomes))
        check_seconds = round(time.perf_counter() - checks_started, 3)
        failed = [o.check for o in outcomes if not o.passed]
        if failed:
            context.log.warning(f"{spec.code}: checks failed: {', '.join(failed)} (report {report})")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": result.rows_clean,
            "rows_read": result.rows_read,
            "rows_clean": result.rows_clean,
            "rows_quarantined": result.rows_quarantined,
            "quarantined_by_reason": dg.MetadataValue.json(result.quarantined_by_reason),
            "extra_agency_columns": len(result.extra_columns),
            "extracted_at": result.extracted_at or "unknown",
            "source": result.source,
            "source_bytes": result.bytes,
            "clean_table": dg.MetadataValue.path(result.clean_path),
            "quarantine_table": dg.MetadataValue.path(result.quarantine_path),
            "seconds": result.seconds,
            "check_seconds": check_seconds,
            "quality_report": dg.MetadataValue.path(report),
        }, check_results=[to_check_result(o, registry_key(spec.code), report) for o in outcomes])

    return registry_asset


def build_registry_assets(specs: list[RegistrySpec] | tuple[RegistrySpec, ...]) -> list[dg.AssetsDefinition]:
    return [build_registry_asset(s) for s in specs]


@dg.definitions
def registries() -> dg.Definitions:
    return dg.Definitions(assets=build_registry_assets(catalog().registries))
