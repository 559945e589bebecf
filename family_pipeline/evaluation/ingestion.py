"""Ingestion against the truth: per registry rows, quarantine by reason, malformed rows caught."""

from __future__ import annotations

import json
import re

import pyarrow.compute as pc
import pyarrow.parquet as pq

from family_pipeline.catalog import catalog
from family_pipeline.lib.lake import Lake

#: quarantine reasons a malformed row (broken line or unparsable value) can end up under
MALFORMED_REASONS = {"malformed_row", "unparsable_date", "unparsable_number"}
_TOKEN = re.compile(r"[0-9A-Za-z]+")


def ingestion_section(lake: Lake) -> dict:
    defects = pq.read_table(lake.truth("defects"), columns=["kind", "registry", "record_id"])
    malformed = defects.filter(pc.equal(defects["kind"], "malformed_row"))
    injected: dict[str, set[str]] = {}
    for reg, rid in zip(malformed["registry"].to_pylist(), malformed["record_id"].to_pylist()):
        injected.setdefault(reg, set()).add(rid)

    per_registry: dict[str, dict] = {}
    totals = {"rows_written": 0, "rows_read": 0, "rows_clean": 0, "rows_quarantined": 0,
              "malformed_injected": 0, "malformed_caught": 0, "registries_failed": 0}
    for spec in catalog().registries:
        manifest_path = lake.landing_dir(spec.code) / "manifest.json"
        written = json.loads(manifest_path.read_text())["rows"] if manifest_path.exists() else None
        clean_path = lake.table("registries", spec.code)
        quarantine_path = lake.table("quarantine", spec.code)
        inj = injected.get(spec.code, set())
        entry: dict = {"rows_written": written, "malformed_injected": len(inj)}
        if not clean_path.exists() or not quarantine_path.exists():
            entry["status"] = "not materialized"
            totals["registries_failed"] += 1
            per_registry[spec.code] = entry
            continue
        clean_rows = pq.read_metadata(clean_path).num_rows
        q = pq.read_table(quarantine_path, columns=["reason", "record_id", "raw"])
        reasons: dict[str, int] = {}
        for r in q["reason"].to_pylist():
            reasons[r] = reasons.get(r, 0) + 1
        caught_ids: set[str] = set()
        for reason, rid, raw in zip(q["reason"].to_pylist(), q["record_id"].to_pylist(), q["raw"].to_pylist()):
            if reason not in MALFORMED_REASONS:
                continue
            if rid in inj:
                caught_ids.add(rid)
            elif raw:
                caught_ids.update(t for t in _TOKEN.findall(raw) if t in inj)
        entry.update({
            "status": "ok",
            "rows_read": clean_rows + q.num_rows,
            "rows_clean": clean_rows,
            "rows_quarantined": q.num_rows,
            "quarantined_by_reason": dict(sorted(reasons.items())),
            "malformed_caught": len(caught_ids),
            "reconciles": written is None or written == clean_rows + q.num_rows,
        })
        per_registry[spec.code] = entry
        for k in ("rows_read", "rows_clean", "rows_quarantined", "malformed_caught"):
            totals[k] += entry[k]
        totals["rows_written"] += written or 0
        totals["malformed_injected"] += len(inj)
    totals["malformed_recall"] = (
        round(totals["malformed_caught"] / totals["malformed_injected"], 4) if totals["malformed_injected"] else None
    )
    return {"totals": totals, "registries": per_registry}
