"""Families made by hand: a literal family_features frame with every column the seeds use."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from family_pipeline.catalog import catalog
from family_pipeline.scoring import ScoringSeeds, score_families, scoring_seeds

AS_OF = dt.date(2026, 11, 1)

#: a stable two-earner family with two children, owning a flat, in Shymkent
BASELINE = {
    "region": "KZ-79", "settlement_type": "city", "members": 4, "adults": 2, "working_adults": 2,
    "children_school_age": 2, "children_under_18": 2, "income_pc": 120_000.0, "income_pc_no_asp": 120_000.0,
    "housing_units": 1, "housing_area_m2": 80.0, "housing_area_pc": 20.0,
}


def families(*rows: dict, seeds: ScoringSeeds | None = None) -> pd.DataFrame:
    """One family per ``rows`` entry: the baseline, overridden by the entry; other columns 0."""
    seeds = seeds or scoring_seeds()
    names = seeds.required_features()
    records = []
    for i, row in enumerate(rows):
        record = {name: 0 for name in names} | BASELINE | {"family_id": i + 1} | row
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for flag in ("receives_asp", "large_family", "single_parent"):
        if flag in frame:
            frame[flag] = frame[flag].astype(bool)
    return frame


def score(*rows: dict, seeds: ScoringSeeds | None = None) -> pd.DataFrame:
    seeds = seeds or scoring_seeds()
    return score_families(families(*rows, seeds=seeds), seeds, catalog().regions, catalog().money_on(AS_OF))
