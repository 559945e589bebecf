"""Check outcomes as Dagster asset check results: counts, severity, the report and a sample of
failing record ids — never names or IINs."""

import dagster as dg

from family_pipeline.quality import CheckOutcome

SEVERITY = {"WARN": dg.AssetCheckSeverity.WARN, "ERROR": dg.AssetCheckSeverity.ERROR}


def to_check_result(outcome: CheckOutcome, asset_key: dg.AssetKey, report: str) -> dg.AssetCheckResult:
    metadata = {
        "flagged_records": outcome.flagged_records,
        "counts": dg.MetadataValue.json(outcome.counts),
        "sample_record_ids": dg.MetadataValue.json(outcome.sample(20)),
        "report": dg.MetadataValue.path(report),
    }
    scalars = {k: v for k, v in outcome.details.items() if isinstance(v, (int, float, str)) or v is None}
    if scalars:
        metadata["details"] = dg.MetadataValue.json(scalars)
    return dg.AssetCheckResult(asset_key=asset_key, check_name=outcome.check, passed=outcome.passed,
                               severity=SEVERITY[outcome.severity], description=outcome.description, metadata=metadata)
