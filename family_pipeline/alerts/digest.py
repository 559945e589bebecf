"""One digest per recipient per run: which of their registries failed which checks, how badly,
how many records, where the report is, and a sample of failing record ids — never a name or
an IIN."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Digest", "Failure", "build_digests"]


@dataclass(frozen=True)
class Failure:
    registry: str
    registry_name: str
    check: str
    severity: str
    description: str
    flagged_records: int
    counts: dict
    sample_record_ids: list
    report: str | None


@dataclass
class Digest:
    run_id: str
    recipient: str
    failures: list[Failure] = field(default_factory=list)

    @property
    def registries(self) -> list[str]:
        return sorted({f.registry for f in self.failures})

    @property
    def subject(self) -> str:
        errors = sum(f.severity == "ERROR" for f in self.failures)
        level = "ERROR" if errors else "WARN"
        return (f"[family_pipeline][{level}] data quality: {len(self.failures)} failed check(s) in "
                f"{', '.join(self.registries)} (run {self.run_id[:8]})")

    def body(self) -> str:
        lines = [f"Data-quality checks of run {self.run_id} failed on the registries you own.", ""]
        for registry in self.registries:
            mine = [f for f in self.failures if f.registry == registry]
            lines.append(f"Registry {registry} — {mine[0].registry_name}")
            for f in sorted(mine, key=lambda f: (f.severity != "ERROR", f.check)):
                lines.append(f"  [{f.severity}] {f.check}: {f.description}")
                lines.append(f"      records flagged: {f.flagged_records}")
                for reason, n in sorted(f.counts.items()):
                    lines.append(f"      {reason}: {n}")
                if f.sample_record_ids:
                    lines.append(f"      sample record ids: {', '.join(map(str, f.sample_record_ids[:10]))}")
            reports = sorted({f.report for f in mine if f.report})
            for r in reports:
                lines.append(f"  report: {r}")
            lines.append("")
        lines.append("Records are named by their id in your registry; this message holds no personal data.")
        return "\n".join(lines)


def build_digests(run_id: str, failures: list[tuple[str, Failure]]) -> list[Digest]:
    """(recipient, failure) pairs of one run → one digest per recipient, in recipient order."""
    by: dict[str, Digest] = {}
    for recipient, failure in failures:
        by.setdefault(recipient, Digest(run_id, recipient)).failures.append(failure)
    return [by[k] for k in sorted(by)]
