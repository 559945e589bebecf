"""Ingestion: read a registry's export, map it to the canonical schema, quarantine bad rows.

    result = ingest_registry(spec, lake, catalog)

writes ``lake/registries/<code>.parquet`` (clean rows) and ``lake/quarantine/<code>.parquet``
(rows with a reason) and returns counts. Rows read = rows clean + rows quarantined, always.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from family_pipeline.catalog import Catalog, RegistrySpec
from family_pipeline.ingestion.normalize import QUARANTINE_SCHEMA, REASONS, normalize
from family_pipeline.ingestion.sources import (
    RegistryFileError,
    default_database_url,
    read_export,
)
from family_pipeline.lib.lake import Lake

__all__ = [
    "QUARANTINE_SCHEMA",
    "REASONS",
    "IngestionResult",
    "RegistryFileError",
    "default_database_url",
    "ingest_registry",
]


@dataclass(frozen=True)
class IngestionResult:
    registry: str
    rows_read: int
    rows_clean: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int]
    extra_columns: list[str]
    extracted_at: str | None
    source: str
    bytes: int
    seconds: float
    clean_path: str
    quarantine_path: str

    def as_dict(self) -> dict:
        return asdict(self)


def ingest_registry(spec: RegistrySpec, lake: Lake, catalog: Catalog, database_url: str | None = None) -> IngestionResult:
    t0 = time.perf_counter()
    raw = read_export(spec, lake, database_url)
    clean, quarantine = normalize(spec, raw.table, raw.malformed, catalog)
    rows_read = raw.table.num_rows + len(raw.malformed)
    if rows_read != clean.num_rows + quarantine.num_rows:  # pragma: no cover - an invariant
        raise RuntimeError(f"registry {spec.code}: {rows_read} rows read but {clean.num_rows} clean + "
                           f"{quarantine.num_rows} quarantined")
    clean_path = lake.write("registries", spec.code, clean)
    quarantine_path = lake.write("quarantine", spec.code, quarantine)
    by_reason: dict[str, int] = {}
    for r in quarantine.column("reason").to_pylist():
        by_reason[r] = by_reason.get(r, 0) + 1
    known = {c.source for c in spec.columns} | {"_row"}
    return IngestionResult(
        registry=spec.code,
        rows_read=rows_read,
        rows_clean=clean.num_rows,
        rows_quarantined=quarantine.num_rows,
        quarantined_by_reason=dict(sorted(by_reason.items())),
        extra_columns=sorted(c for c in raw.table.column_names if c not in known),
        extracted_at=raw.extracted_at,
        source=raw.source,
        bytes=raw.bytes,
        seconds=round(time.perf_counter() - t0, 3),
        clean_path=str(clean_path),
        quarantine_path=str(quarantine_path),
    )
