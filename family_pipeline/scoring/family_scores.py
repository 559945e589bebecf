"""Score every family with both models and summarise the categories per region.

``score_families`` is the whole stage as one plain function: family_features in, one row per
family out (the CONTRACT columns of ``lake/scoring/family_scores.parquet`` plus the pilot's
criterion flags). Same features and seeds → the same rows, in family_id order.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from family_pipeline.catalog import MoneyYear, Region
from family_pipeline.scoring.ae_map import ae_scores
from family_pipeline.scoring.pilot import pilot_categories
from family_pipeline.scoring.seeds import CATEGORIES, DIMENSIONS, ScoringSeeds
from family_pipeline.scoring.welfare import derived_quantities

__all__ = ["SCORE_COLUMNS", "category_summary", "score_families"]

SCORE_COLUMNS = ["family_id", "region", "settlement_type", "ae_model_version", "ae_category", "ae_score",
                 *[f"score_{d}" for d in DIMENSIONS], "ae_reasons", "pilot_model_version", "pilot_category",
                 "pilot_reasons", "welfare_ratio"]


def score_families(features: pd.DataFrame, seeds: ScoringSeeds, regions: Iterable[Region],
                   money: MoneyYear) -> pd.DataFrame:
    """One row per family: both models' categories, scores, reasons and versions."""
    needed = seeds.required_features()
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise KeyError(f"family_features lacks columns the scoring seeds use: {missing}")
    features = features[needed].sort_values("family_id", kind="stable").reset_index(drop=True)
    derived = derived_quantities(features, seeds.welfare, regions, money)
    frame = pd.concat([features, derived], axis=1)
    ae = ae_scores(frame, seeds.ae_map, seeds.ae_version)
    pilot = pilot_categories(frame, seeds.pilot, seeds.pilot_version)
    out = pd.DataFrame({"family_id": features["family_id"].to_numpy(dtype=np.int64),
                        "region": features["region"].astype("str").to_numpy(),
                        "settlement_type": features["settlement_type"].astype("str").to_numpy()})
    out = pd.concat([out, ae.drop(columns="family_id"), pilot.drop(columns="family_id")], axis=1)
    out["welfare_ratio"] = np.round(derived["welfare_ratio"].to_numpy(), 4)
    flags = [c for c in out.columns if c.startswith("pilot_K")]
    return out[SCORE_COLUMNS + flags]


def category_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Families per region × model × category (every category listed, zeros included), with the
    share of the region's families."""
    parts = []
    for model, column, categories, version in (
        ("ae_map", "ae_category", list(CATEGORIES[::-1]), "ae_model_version"),
        ("pilot", "pilot_category", [str(c) for c in range(1, 7)], "pilot_model_version"),
    ):
        values = scores[column].astype(str)
        counts = pd.crosstab(scores["region"], values).reindex(columns=categories, fill_value=0)
        long = counts.stack().rename("families").reset_index()
        long.columns = ["region", "category", "families"]
        long.insert(0, "model", model)
        long["model_version"] = scores[version].iloc[0] if len(scores) else ""
        parts.append(long)
    out = pd.concat(parts, ignore_index=True)
    totals = out.groupby(["model", "region"])["families"].transform("sum")
    out["share"] = np.round(np.where(totals > 0, out["families"] / totals.clip(lower=1), 0.0), 5)
    out["families"] = out["families"].astype(np.int64)
    return out.sort_values(["model", "region", "category"], kind="stable").reset_index(drop=True)
