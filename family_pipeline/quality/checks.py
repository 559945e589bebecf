"""What a check found: a named outcome with a severity, counts and the records it flags.

Flagged records are identified by their record id inside the registry — never by a person's
IIN or name — so outcomes can travel into metadata, reports and alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from family_pipeline.lib.lake import Lake

__all__ = ["CHECKS", "CROSS_CHECKS", "FLAG_SCHEMA", "CheckOutcome", "read_flags", "write_flags"]

#: single-registry checks, computed in the registry's own materialization step
CHECKS = {
    "completeness": "required columns are filled; a named person reference carries an IIN",
    "identifiers": "IINs and BINs pass their check digit",
    "value_sets": "coded columns hold allowed values",
    "ranges": "numbers lie within their catalog range",
    "unique_keys": "record ids are unique",
    "quarantine": "no row had to be quarantined while reading",
    "row_count_drift": "the row count moved less than 20% since the previous materialization",
    "freshness": "the extract is no older than the registry's cadence",
}
#: checks against other registries, run after the population register is materialized
CROSS_CHECKS = {
    "population_register": "IINs are known to the population register, and the person they name matches it "
                           "(birth date, name as written, region as the person's records agree on it); the "
                           "register gives no other IIN to the person so named and born",
    "duplicates": "no record repeats another under a new record id (same persons, same facts)",
    "after_death": "no activity of a person after the death the population or civil register records",
    "livestock": "no animal registered in several settlements at once, no animal of a dead or unknown owner, "
                 "no ear tag the animal's other records write otherwise",
}
FLAG_SCHEMA = pa.schema([("check", pa.string()), ("reason", pa.string()), ("record_id", pa.string())])


@dataclass
class CheckOutcome:
    check: str
    passed: bool
    severity: str  # "WARN" or "ERROR": how bad it is when it fails
    description: str
    counts: dict[str, int] = field(default_factory=dict)
    #: reason -> record ids flagged for it
    flagged: dict[str, list[str]] = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    @property
    def flagged_records(self) -> int:
        return len({r for ids in self.flagged.values() for r in ids})

    def sample(self, n: int = 20) -> list[str]:
        seen: list[str] = []
        for ids in self.flagged.values():
            for r in ids:
                if r not in seen:
                    seen.append(r)
                if len(seen) >= n:
                    return seen
        return seen


def write_flags(lake: Lake, registry: str, part: str, outcomes: list[CheckOutcome]) -> None:
    rows = {"check": [], "reason": [], "record_id": []}
    for o in outcomes:
        for reason, ids in o.flagged.items():
            ids = ids or [None]  # a finding about the whole registry (a stale extract)
            rows["check"].extend([o.check] * len(ids))
            rows["reason"].extend([reason] * len(ids))
            rows["record_id"].extend(ids)
    lake.write("quality", f"{registry}__{part}", pa.table(rows, schema=FLAG_SCHEMA))


def read_flags(lake: Lake) -> pa.Table:
    """Every flag of every registry: registry, check, reason, record_id."""
    folder = lake.root / "lake" / "quality"
    tables = []
    for path in sorted(folder.glob("*__*.parquet")):
        registry = path.stem.split("__", 1)[0]
        t = lake.read("quality", path.stem)
        tables.append(t.append_column("registry", pa.array([registry] * t.num_rows, pa.string())))
    return pa.concat_tables(tables) if tables else FLAG_SCHEMA.append(pa.field("registry", pa.string())).empty_table()
