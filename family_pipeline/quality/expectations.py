"""Single-registry checks: a GX 1.x expectation suite built from the catalog entry, plus the
quarantine, duplicate, row-count and freshness checks.

The suite is validated on the registry's clean table with ``result_format=COMPLETE`` and the
record id as the index column, so each failing expectation names the records that fail it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os

import pandas as pd

from family_pipeline.catalog import RegistrySpec
from family_pipeline.quality.checks import CHECKS, CheckOutcome

__all__ = ["build_suite", "registry_checks"]

#: a WARN-level finding becomes an ERROR (the registry is unusable, downstream is blocked) when
#: it touches more than this share of the rows, and at least ERROR_MIN_ROWS of them
ERROR_SHARE = 0.20
ERROR_MIN_ROWS = 10
#: an extract this many times older than its cadence (and at least STALE_ERROR_DAYS) is an ERROR
STALE_ERROR_FACTOR, STALE_ERROR_DAYS = 10, 30
DRIFT_WARN, DRIFT_ERROR = 0.20, 0.50


@functools.cache
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # noqa: BLE001 - older contexts have no such variable; bars are cosmetic
        pass
    return ctx


def _named_without_iin(spec: RegistrySpec, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Per person group with an IIN column: True where the person is named but has no IIN."""
    out = {}
    for group in spec.person_groups:
        roles = spec.role_columns(group)
        if "iin" not in roles:
            continue
        names = [roles[p] for p in ("last_name", "first_name", "full_name") if p in roles]
        # a reference made by name needs its IIN; one made by IIN alone has nothing else
        named = frame[names].notna().any(axis=1) if names else pd.Series(True, index=frame.index)
        out[f"_{group}_iin_present"] = ~(named & frame[roles["iin"]].isna())
    return out


def build_suite(spec: RegistrySpec, frame_columns: list[str]):
    """The registry's GX suite; each expectation's ``meta`` says which check it belongs to."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=f"{spec.code}_suite")
    for c in spec.columns:
        if c.required:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=c.name, meta={"check": "completeness", "severity": "ERROR"}))
        if c.type in ("iin", "bin"):
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=f"_{c.name}_check_digit", value_set=[True],
                                                                  meta={"check": "identifiers", "severity": "WARN"}))
        if c.type == "category" and c.values:
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=c.name, value_set=list(c.values),
                                                                  meta={"check": "value_sets", "severity": "ERROR"}))
        if c.type == "sex":
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=c.name, value_set=["M", "F"],
                                                                  meta={"check": "value_sets", "severity": "ERROR"}))
        if c.type in ("int", "decimal") and (c.min is not None or c.max is not None):
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=c.name, min_value=c.min, max_value=c.max,
                                                                    meta={"check": "ranges", "severity": "ERROR"}))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=spec.record_id, meta={"check": "unique_keys", "severity": "ERROR"}))
    for col in frame_columns:
        if col.startswith("_") and col.endswith("_iin_present"):
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=[True],
                                                                  meta={"check": "completeness", "severity": "WARN"}))
    return suite


def _too_many(bad: int, rows: int) -> bool:
    return bool(rows) and bad >= ERROR_MIN_ROWS and bad / rows > ERROR_SHARE


def _gx_outcomes(spec: RegistrySpec, clean: pd.DataFrame) -> list[CheckOutcome]:
    frame = clean.drop(columns=["_row"], errors="ignore").copy()
    for name, col in _named_without_iin(spec, frame).items():
        frame[name] = col
    for c in spec.columns:
        if c.type in ("iin", "bin"):  # a missing identifier is completeness's business, not this one's
            frame[f"_{c.name}_check_digit"] = frame[c.name].isna() | frame[f"{c.name}_valid"].fillna(False).astype(bool)
    ctx = _context()
    name = f"registry_{spec.code}"
    try:
        source = ctx.data_sources.get(name)
    except (KeyError, ValueError):
        source = ctx.data_sources.add_pandas(name)
    try:
        batch_def = source.get_asset("table").get_batch_definition("all")
    except (KeyError, LookupError, ValueError):
        batch_def = source.add_dataframe_asset("table").add_batch_definition_whole_dataframe("all")
    suite = build_suite(spec, list(frame.columns))
    result = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [spec.record_id]})
    outcomes = {k: CheckOutcome(k, True, "WARN", CHECKS[k]) for k in ("completeness", "identifiers", "value_sets", "ranges", "unique_keys")}
    n = len(frame)
    for r in result.results:
        meta = r.expectation_config.meta or {}
        out = outcomes[meta["check"]]
        column = r.expectation_config.kwargs.get("column")
        bad = int(r.result.get("unexpected_count") or 0)
        key = f"{r.expectation_config.type}:{column}"
        out.details.setdefault("expectations", []).append({"expectation": r.expectation_config.type, "column": column,
                                                            "success": bool(r.success), "unexpected": bad})
        if r.success:
            continue
        out.passed = False
        ids = [str(x.get(spec.record_id)) for x in (r.result.get("unexpected_index_list") or [])]
        out.flagged[key] = ids
        out.counts[key] = bad
        severe = meta.get("severity") == "ERROR" or _too_many(bad, n)
        if severe:
            out.severity = "ERROR"
    return list(outcomes.values())


def _quarantine(spec: RegistrySpec, quarantine: pd.DataFrame, rows_read: int) -> CheckOutcome:
    out = CheckOutcome("quarantine", quarantine.empty, "WARN", CHECKS["quarantine"])
    for reason, ids in quarantine.groupby("reason").record_id:
        out.flagged[str(reason)] = [str(x) for x in ids if x is not None]
        out.counts[str(reason)] = int(len(ids))
    if _too_many(len(quarantine), rows_read):
        out.severity = "ERROR"
    return out


def _drift(rows_read: int, previous: int | None) -> CheckOutcome:
    out = CheckOutcome("row_count_drift", True, "WARN", CHECKS["row_count_drift"],
                       details={"rows_read": rows_read, "previous_rows_read": previous})
    if previous:
        change = abs(rows_read - previous) / previous
        out.details["change"] = round(change, 4)
        if change > DRIFT_WARN:
            out.passed = False
            out.severity = "ERROR" if change > DRIFT_ERROR else "WARN"
            out.counts["rows_changed"] = abs(rows_read - previous)
    return out


def _freshness(spec: RegistrySpec, extracted_at: str | None, as_of: dt.date) -> CheckOutcome:
    out = CheckOutcome("freshness", True, "WARN", CHECKS["freshness"],
                       details={"extracted_at": extracted_at, "as_of": as_of.isoformat(), "cadence": spec.cadence,
                                "max_age_days": spec.max_age_days})
    if extracted_at is None:
        out.passed = False
        out.counts["extract_time_unknown"] = 1
        out.flagged["extract_time_unknown"] = []
        return out
    age = (as_of - dt.datetime.fromisoformat(extracted_at).date()).days
    out.details["age_days"] = age
    if age > spec.max_age_days:
        out.passed = False
        out.counts["days_overdue"] = age - spec.max_age_days
        out.flagged["stale_extract"] = []
        limit = max(STALE_ERROR_FACTOR * spec.max_age_days, STALE_ERROR_DAYS)
        out.severity = "ERROR" if age > limit else "WARN"
    return out


def registry_checks(spec: RegistrySpec, clean: pd.DataFrame, quarantine: pd.DataFrame, rows_read: int,
                    previous_rows_read: int | None, extracted_at: str | None, as_of: dt.date) -> list[CheckOutcome]:
    """Every single-registry check of one materialization, in the order of ``CHECKS``."""
    return [*_gx_outcomes(spec, clean), _quarantine(spec, quarantine, rows_read),
            _drift(rows_read, previous_rows_read), _freshness(spec, extracted_at, as_of)]


def reference_date(landing_snapshot: dict | None) -> dt.date:
    """The day the extracts are judged against: the landing zone's snapshot date, else today."""
    if landing_snapshot and landing_snapshot.get("as_of"):
        return dt.date.fromisoformat(str(landing_snapshot["as_of"])[:10])
    return dt.date.today()


def read_snapshot(path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


