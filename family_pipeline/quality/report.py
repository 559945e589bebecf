"""A static HTML report per registry and run that its owner can open: every check, its
severity, counts by reason and a sample of failing record ids (never names or IINs)."""

from __future__ import annotations

import html
from pathlib import Path

from family_pipeline.catalog import RegistrySpec
from family_pipeline.lib.lake import Lake
from family_pipeline.quality.checks import CheckOutcome

__all__ = ["report_path", "write_report"]


def report_path(lake: Lake, registry: str, run_id: str, part: str) -> Path:
    return lake.reports / "quality" / registry / f"{run_id}-{part}.html"


def write_report(lake: Lake, spec: RegistrySpec, run_id: str, part: str, outcomes: list[CheckOutcome]) -> Path:
    path = report_path(lake, spec.code, run_id, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for o in outcomes:
        status = "passed" if o.passed else f"FAILED ({o.severity})"
        counts = "<br>".join(f"{html.escape(k)}: {v}" for k, v in sorted(o.counts.items())) or "—"
        sample = ", ".join(html.escape(s) for s in o.sample(20)) or "—"
        expectations = ""
        for e in o.details.get("expectations", []):
            expectations += (f"<li>{html.escape(str(e['expectation']))} on <code>{html.escape(str(e['column']))}</code>: "
                             f"{'ok' if e['success'] else str(e['unexpected']) + ' unexpected'}</li>")
        rows.append(f"<tr class='{'ok' if o.passed else o.severity.lower()}'><td>{html.escape(o.check)}</td>"
                    f"<td>{html.escape(o.description)}</td><td>{status}</td><td>{counts}</td><td>{sample}</td>"
                    f"<td><ul>{expectations}</ul></td></tr>")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Data quality: {html.escape(spec.code)} ({html.escape(run_id)})</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}
table{{border-collapse:collapse}} tr.error{{background:#fdd}} tr.warn{{background:#ffd}} tr.ok{{background:#efe}}</style>
</head><body>
<h1>{html.escape(spec.name_en)} — {html.escape(spec.name_ru)}</h1>
<p>Registry <code>{html.escape(spec.code)}</code>, owner {html.escape(spec.agency)} ({html.escape(spec.owner_email)}),
run <code>{html.escape(run_id)}</code>, checks: {html.escape(part)}.</p>
<p>Records are named by their record id in your registry; no names or IINs appear here.</p>
<table><tr><th>check</th><th>what it asks</th><th>result</th><th>counts</th><th>sample record ids</th><th>expectations</th></tr>
{''.join(rows)}</table></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
