"""The category distribution per region drawn for people: a markdown table with text bars and a
stacked-bar SVG (embedded as a data URI, so any markdown view — the Dagster UI's metadata
included — shows it without a plotting library). Loops run over regions and categories only."""

from __future__ import annotations

import base64
from html import escape

import pandas as pd

__all__ = ["COLOURS", "distribution_markdown", "distribution_svg"]

#: one colour per category, from well-being (green) to critical (red)
COLOURS = {"A": "#1a9850", "B": "#91cf60", "C": "#fee08b", "D": "#fc8d59", "E": "#d73027",
           "6": "#1a9850", "5": "#91cf60", "4": "#d9ef8b", "3": "#fee08b", "2": "#fc8d59", "1": "#d73027"}


def _wide(summary: pd.DataFrame, model: str) -> pd.DataFrame:
    part = summary[summary["model"] == model]
    return part.pivot(index="region", columns="category", values="families").fillna(0).astype(int)


def distribution_svg(summary: pd.DataFrame, model: str, order: list[str], title: str) -> str:
    """Horizontal 100%-stacked bars, one per region, categories in ``order``."""
    wide = _wide(summary, model).reindex(columns=order, fill_value=0)
    bar_w, row_h, left, top = 520, 18, 70, 34
    height = top + row_h * len(wide) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + bar_w + 20}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="14" font-weight="bold">{escape(title)}</text>']
    for k, cat in enumerate(order):
        parts.append(f'<rect x="{left + 60 * k}" y="20" width="10" height="10" fill="{COLOURS[cat]}"/>'
                     f'<text x="{left + 60 * k + 14}" y="29">{escape(cat)}</text>')
    for i, (region, row) in enumerate(wide.iterrows()):
        y = top + i * row_h
        total = max(int(row.sum()), 1)
        parts.append(f'<text x="4" y="{y + 12}">{escape(str(region))}</text>')
        x = float(left)
        for cat in order:
            w = bar_w * int(row[cat]) / total
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 3}" fill="{COLOURS[cat]}">'
                             f'<title>{escape(str(region))} {escape(cat)}: {int(row[cat])}</title></rect>')
            x += w
    parts.append("</svg>")
    return "".join(parts)


def distribution_markdown(summary: pd.DataFrame, model: str, order: list[str], title: str) -> str:
    """A chart image and a table: families per region and category, with a text bar of the
    share in the lowest two categories."""
    svg = distribution_svg(summary, model, order, title)
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    wide = _wide(summary, model).reindex(columns=order, fill_value=0)
    lowest = order[-2:]
    lines = [f"### {title}", "", f"![{title}]({uri})", "",
             "| region | " + " | ".join(order) + f" | share in {'+'.join(lowest)} |",
             "|---|" + "---:|" * len(order) + "---|"]
    for region, row in wide.iterrows():
        total = max(int(row.sum()), 1)
        share = int(row[lowest].sum()) / total
        bar = "█" * int(round(share * 40))
        lines.append(f"| {region} | " + " | ".join(str(int(row[c])) for c in order) + f" | {bar} {share:.0%} |")
    totals = wide.sum()
    share = int(totals[lowest].sum()) / max(int(totals.sum()), 1)
    lines.append("| **all** | " + " | ".join(f"**{int(totals[c])}**" for c in order)
                 + f" | {'█' * int(round(share * 40))} {share:.0%} |")
    return "\n".join(lines)
