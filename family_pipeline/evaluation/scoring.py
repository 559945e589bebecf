"""Scoring against the truth: inclusion and exclusion errors of the two lowest categories.

A predicted family stands for the true family of its head (golden person → the true person most
of the head's mentions belong to → that person's true family). The truth's latent welfare says
who is poor (consumption per member below the poverty line) and who cannot afford food (below
half of it). For the two lowest categories of each model (A–E: D and E; pilot: 1 and 2):

- inclusion error: the share of families placed there that are not truly poor;
- exclusion error: the share of truly poor families placed elsewhere;

overall, per region and per city/village, plus the category distributions. The single lowest
category (E; pilot 1) is also measured against "not enough for food".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from family_pipeline.evaluation.person_truth import person_truth
from family_pipeline.lib.lake import Lake

__all__ = ["LOWEST", "category_errors", "scoring_accuracy", "scoring_section", "true_family_of_heads"]

#: the two lowest categories of each model, as (model, column, categories)
LOWEST = (("ae_map", "ae_category", ("D", "E")), ("pilot", "pilot_category", (1, 2)))
#: the single lowest category of each model, judged against "not enough for food"
EXTREME = (("ae_map", "ae_category", ("E",)), ("pilot", "pilot_category", (1,)))


def category_errors(placed: np.ndarray, poor: np.ndarray) -> dict:
    placed, poor = np.asarray(placed, bool), np.asarray(poor, bool)
    n_placed, n_poor = int(placed.sum()), int(poor.sum())
    return {
        "families": int(len(placed)),
        "placed": n_placed,
        "truly_poor": n_poor,
        "inclusion_error": round(float((placed & ~poor).sum() / n_placed), 5) if n_placed else 0.0,
        "exclusion_error": round(float((poor & ~placed).sum() / n_poor), 5) if n_poor else 0.0,
    }


def scoring_accuracy(scores: pd.DataFrame) -> dict:
    """``scores``: family_scores joined with the truth columns ``poor`` and ``food_insecure``."""
    out: dict = {"families_judged": int(len(scores)),
                 "truly_poor_share": round(float(scores["poor"].mean()), 5) if len(scores) else 0.0}
    for (model, column, lowest), (_, _, extreme) in zip(LOWEST, EXTREME):
        placed = scores[column].isin(lowest).to_numpy()
        poor = scores["poor"].to_numpy(bool)
        section: dict = {"lowest_categories": [str(c) for c in lowest], **category_errors(placed, poor)}
        for by in ("region", "settlement_type"):
            section[f"by_{by}"] = {
                str(key): category_errors(placed[idx], poor[idx])
                for key, idx in scores.groupby(by, sort=True).indices.items()
            }
        section["lowest_vs_food_insecure"] = {
            "category": [str(c) for c in extreme],
            **category_errors(scores[column].isin(extreme).to_numpy(), scores["food_insecure"].to_numpy(bool)),
        }
        counts = scores[column].astype(str).value_counts().sort_index()
        section["distribution"] = {str(k): int(v) for k, v in counts.items()}
        out[model] = section
    return out


def true_family_of_heads(lake: Lake, head_person_ids: np.ndarray) -> np.ndarray:
    """The true family id of each golden head person (-1 when it cannot be told)."""
    best = person_truth(lake)  # the vote of a person only counts that person's mentions
    persons = pq.read_table(lake.truth("persons"), columns=["person_id", "family_id"]).to_pandas()
    family_of_person = pd.Series(persons.family_id.to_numpy(), index=persons.person_id.to_numpy())
    true_person = best.reindex(head_person_ids)
    known = true_person.notna().to_numpy()
    out = np.full(len(head_person_ids), -1, dtype=np.int64)
    out[known] = family_of_person.reindex(true_person[known].astype(np.int64).to_numpy()).fillna(-1).to_numpy(np.int64)
    return out


def scores_with_truth(lake: Lake) -> tuple[pd.DataFrame, int]:
    """family_scores joined with the truth's poor / food_insecure / welfare; and the number of
    predicted families whose head maps to no true family."""
    scores = pq.read_table(lake.table("scoring", "family_scores"),
                           columns=["family_id", "region", "settlement_type", "ae_category", "ae_score",
                                    "pilot_category"]).to_pandas()
    families = pq.read_table(lake.table("families", "families"), columns=["family_id", "head_person_id"]).to_pandas()
    scores = scores.merge(families, on="family_id", how="left")
    scores["true_family_id"] = true_family_of_heads(lake, scores.head_person_id.fillna(-1).to_numpy(np.int64))
    truth = pq.read_table(lake.truth("families"),
                          columns=["family_id", "poor", "food_insecure", "welfare"]).to_pandas()
    judged = scores.merge(truth.rename(columns={"family_id": "true_family_id"}), on="true_family_id", how="inner")
    return judged, int(len(scores) - len(judged))


def scoring_section(lake: Lake) -> dict:
    needed = [lake.table("scoring", "family_scores"), lake.table("families", "families"),
              lake.table("resolution", "person_xref")]
    if not all(p.exists() for p in needed):
        return {"status": "not materialized"}
    judged, unmatched = scores_with_truth(lake)
    return {"status": "ok", "families_without_true_family": unmatched, **scoring_accuracy(judged)}
