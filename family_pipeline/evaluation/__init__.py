"""Measure every stage against the synthetic country's truth: one JSON report, a section per
stage. Truth is read here and nowhere in the pipeline's decisions."""

from __future__ import annotations

from pathlib import Path

from family_pipeline.evaluation.families import families_section
from family_pipeline.evaluation.ingestion import ingestion_section
from family_pipeline.evaluation.livestock import livestock_section
from family_pipeline.evaluation.quality import quality_section
from family_pipeline.evaluation.resolution import resolution_section
from family_pipeline.evaluation.scoring import scoring_section
from family_pipeline.evaluation.services import services_section
from family_pipeline.lib.lake import Lake

__all__ = ["evaluate", "SECTIONS"]

#: stage name -> function(lake) -> dict; later stages add theirs here, in data-flow order
SECTIONS = {
    "ingestion": ingestion_section,
    "quality": quality_section,
    "resolution": resolution_section,
    "livestock": livestock_section,
    "families": families_section,
    "scoring": scoring_section,
    "services": services_section,
}


def evaluate(data_dir: Path | str) -> dict:
    lake = Lake(Path(data_dir).resolve())
    if not lake.truth_dir.exists():
        raise FileNotFoundError(f"no truth in {lake.truth_dir}: evaluation needs a synthetic country")
    report: dict = {"data": str(lake.root)}
    for name, section in SECTIONS.items():
        report[name] = section(lake)
    return report
