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
import pyarrow as pa

from family_pipeline.catalog import RegistrySpec
from family_pipeline.quality.checks import CHECKS, CheckOutcome

__all__ = ["build_suite", "registry_checks", "suite_columns"]

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
    from great_expectations.execution_engine import pandas_execution_engine

    # GX marks every pandas batch under HASH_THRESHOLD bytes (1 GB) with an md5 of
    # hash_pandas_object over the whole frame: a third of the suites' time at 1M persons (7 of
    # 22 s), for a batch marker nothing here reads. No batch is fingerprinted.
    pandas_execution_engine.HASH_THRESHOLD = 0
    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # noqa: BLE001 - older contexts have no such variable; bars are cosmetic
        pass
    return ctx


@functools.cache
def _batch_definition():
    """The one whole-dataframe batch definition every registry's frame is validated through:
    the frame is a batch parameter, so ninety registries need no ninety data sources (each added
    data source re-serialises the context's whole configuration)."""
    source = _context().data_sources.add_pandas("registries")
    return source.add_dataframe_asset("registry").add_batch_definition_whole_dataframe("whole")


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


def suite_columns(spec: RegistrySpec) -> list[str]:
    """The clean columns the suite reads, directly or through a derived column."""
    wanted = [spec.record_id]
    for c in spec.columns:
        if c.required or (c.type == "category" and c.values) or c.type == "sex" \
                or (c.type in ("int", "decimal") and (c.min is not None or c.max is not None)):
            wanted.append(c.name)
        if c.type in ("iin", "bin"):
            wanted += [c.name, f"{c.name}_valid"]
    for group in spec.person_groups:
        roles = spec.role_columns(group)
        if "iin" in roles:
            wanted += [roles[p] for p in ("iin", "last_name", "first_name", "full_name") if p in roles]
    return list(dict.fromkeys(wanted))


def _suite_frame(spec: RegistrySpec, clean: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """What the suite validates: the record id, the columns its expectations name and the
    derived flags (named without an IIN, check digit) — nothing else, so GX fingerprints and
    scans no column it does not check."""
    wanted = suite_columns(spec)
    if isinstance(clean, pa.Table):
        frame = clean.select([c for c in wanted if c in clean.column_names]).to_pandas()
    else:
        frame = clean[[c for c in wanted if c in clean.columns]]
    derived = dict(_named_without_iin(spec, frame))
    for c in spec.columns:
        if c.type in ("iin", "bin"):  # a missing identifier is completeness's business, not this one's
            derived[f"_{c.name}_check_digit"] = frame[c.name].isna() | frame[f"{c.name}_valid"].fillna(False).astype(bool)
    keep = [spec.record_id] + [c.name for c in spec.columns if c.name != spec.record_id and c.name in frame.columns and (
        c.required or (c.type == "category" and c.values) or c.type == "sex"
        or (c.type in ("int", "decimal") and (c.min is not None or c.max is not None)))]
    return pd.concat([frame[keep], pd.DataFrame(derived, index=frame.index)], axis=1)


def build_suite(spec: RegistrySpec, frame_columns: list[str], *, unique_keys: bool = True, row_wise: bool = True):
    """The registry's GX suite; each expectation's ``meta`` says which check it belongs to.
    ``unique_keys`` / ``row_wise`` select the record-id uniqueness and the row-by-row
    expectations (a registry validated in chunks has its ids checked in a batch of their own)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=f"{spec.code}_suite")
    for c in (spec.columns if row_wise else ()):
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
    if unique_keys:
        suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=spec.record_id, meta={"check": "unique_keys", "severity": "ERROR"}))
    for col in (frame_columns if row_wise else ()):
        if col.startswith("_") and col.endswith("_iin_present"):
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=[True],
                                                                  meta={"check": "completeness", "severity": "WARN"}))
    return suite


#: a registry of more rows than this is validated in chunks of this many rows (see
#: _chunked_findings): the same findings, with a frame of one chunk in memory at a time
GX_CHUNK_ROWS = 4_000_000


def _too_many(bad: int, rows: int) -> bool:
    return bool(rows) and bad >= ERROR_MIN_ROWS and bad / rows > ERROR_SHARE


def _validate(spec: RegistrySpec, frame: pd.DataFrame, suite, batch_definition):
    """The suite's results on ``frame``: one batch, fetched once (``Batch.validate`` would fetch
    and fingerprint it a second time)."""
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(batch_definition, batch_parameters={"dataframe": frame},
                          result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [spec.record_id]})
    return validator.validate_expectation_suite(suite).results


def _findings(spec: RegistrySpec, frame: pd.DataFrame, suite, batch_definition) -> list[tuple]:
    """Per expectation of ``suite`` on ``frame``, in the suite's order: (type, column, meta,
    success, unexpected count, record ids of the unexpected rows)."""
    return [(r.expectation_config.type, r.expectation_config.kwargs.get("column"), r.expectation_config.meta or {},
             bool(r.success), int(r.result.get("unexpected_count") or 0),
             [str(x.get(spec.record_id)) for x in (r.result.get("unexpected_index_list") or [])] if not r.success else [])
            for r in _validate(spec, frame, suite, batch_definition)]


def _rows(clean: pd.DataFrame | pa.Table, start: int, length: int):
    return clean.slice(start, length) if isinstance(clean, pa.Table) else clean.iloc[start:start + length]


def _chunked_findings(spec: RegistrySpec, clean: pd.DataFrame | pa.Table, batch_definition) -> list[tuple]:
    """The suite's findings on a registry of more than GX_CHUNK_ROWS rows: the row-wise
    expectations validated chunk by chunk and added up (counts summed, ids in row order), the
    record-id uniqueness on the whole id column in a batch of its own — what one batch of the
    whole registry finds, without a frame of the whole registry."""
    merged: dict[tuple, list] = {}
    for start in range(0, len(clean), GX_CHUNK_ROWS):
        frame = _suite_frame(spec, _rows(clean, start, GX_CHUNK_ROWS))
        suite = build_suite(spec, list(frame.columns), unique_keys=False)
        for kind, column, meta, success, bad, ids in _findings(spec, frame, suite, batch_definition):
            if (kind, column) not in merged:
                merged[(kind, column)] = [kind, column, meta, True, 0, []]
            found = merged[(kind, column)]
            found[3] &= success
            found[4] += bad
            found[5] += ids
    keys = clean.select([spec.record_id]).to_pandas() if isinstance(clean, pa.Table) else clean[[spec.record_id]]
    suite = build_suite(spec, [], unique_keys=True, row_wise=False)
    unique = _findings(spec, keys, suite, batch_definition)
    full = build_suite(spec, list(_suite_frame(spec, _rows(clean, 0, 1)).columns))
    by_key = {(f[0], f[1]): tuple(f) for f in [*merged.values(), *unique]}
    # in the order of the whole registry's suite, as one batch would report them
    return [by_key[k] for k in _suite_order(full)]


def _suite_order(suite) -> list[tuple]:
    return [(e.configuration.type, e.configuration.kwargs.get("column")) for e in suite.expectations]


def _gx_outcomes(spec: RegistrySpec, clean: pd.DataFrame | pa.Table) -> list[CheckOutcome]:
    batch_definition = _batch_definition()  # the GX context a suite needs exists from here
    n = len(clean)
    if n > GX_CHUNK_ROWS:
        findings = _chunked_findings(spec, clean, batch_definition)
    else:
        frame = _suite_frame(spec, clean)
        findings = _findings(spec, frame, build_suite(spec, list(frame.columns)), batch_definition)
    outcomes = {k: CheckOutcome(k, True, "WARN", CHECKS[k]) for k in ("completeness", "identifiers", "value_sets", "ranges", "unique_keys")}
    for kind, column, meta, success, bad, ids in findings:
        out = outcomes[meta["check"]]
        key = f"{kind}:{column}"
        out.details.setdefault("expectations", []).append({"expectation": kind, "column": column,
                                                            "success": success, "unexpected": bad})
        if success:
            continue
        out.passed = False
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


def registry_checks(spec: RegistrySpec, clean: pd.DataFrame | pa.Table, quarantine: pd.DataFrame, rows_read: int,
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


