"""Families against the truth: exact-family rate and co-membership precision/recall/F1.

A golden person stands for the true person most of its mentions belong to (``truth/mentions``
through ``resolution/person_xref``, as in the resolution section). A predicted family is then a
set of true persons; a true family (``truth/persons.family_id`` of the living) is *recovered
exactly* when some predicted family is exactly its set of members. Co-membership pairs are pairs
of true persons in the same family: a predicted pair is two of them placed together, a true pair
two of them living together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from family_pipeline.evaluation.person_truth import person_truth
from family_pipeline.evaluation.resolution import golden_to_truth
from family_pipeline.lib.lake import Lake

__all__ = ["families_section", "family_accuracy", "golden_to_truth"]

#: persons per family in the country the project models (20M persons, 6.2M families)
NATIONAL_PERSONS_PER_FAMILY = round(20_000_000 / 6_200_000, 3)


def _mix(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = v.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _set_keys(group: np.ndarray, member: np.ndarray) -> pd.DataFrame:
    """An order-free fingerprint of each group's member set (two 64-bit sums and the size)."""
    h1 = _mix(member)
    h2 = _mix(member ^ np.int64(0x5DEECE66D))
    frame = pd.DataFrame({"g": group, "h1": h1, "h2": h2})
    with np.errstate(over="ignore"):
        out = frame.groupby("g", sort=True).agg(h1=("h1", "sum"), h2=("h2", "sum"), size=("h1", "size"))
    return out


def _pairs(sizes: np.ndarray) -> int:
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def family_accuracy(members: pd.DataFrame, mapping: pd.DataFrame, truth_persons: pd.DataFrame,
                    truth_families: pd.DataFrame | None = None) -> dict:
    """``members``: person_id, family_id (the pipeline's); ``mapping``: person_id, true_id (the
    person vote, ``person_truth`` or ``golden_to_truth``); truth tables as the generator writes them."""
    alive = truth_persons[truth_persons.alive.astype(bool) & (truth_persons.family_id >= 0)][["person_id", "family_id"]]
    alive = alive.rename(columns={"person_id": "true_id", "family_id": "true_family"})
    pred = members[["person_id", "family_id"]].merge(mapping, on="person_id", how="left")
    mapped = pred[pred.true_id.notna()].astype({"true_id": "int64"})
    mapped = mapped.merge(alive, on="true_id", how="inner").drop_duplicates(["family_id", "true_id"])

    true_keys = _set_keys(alive.true_family.to_numpy(), alive.true_id.to_numpy())
    pred_keys = _set_keys(mapped.family_id.to_numpy(), mapped.true_id.to_numpy())
    hit = true_keys.reset_index().merge(pred_keys.reset_index().drop_duplicates(["h1", "h2", "size"]),
                                        on=["h1", "h2", "size"], how="left", suffixes=("", "_pred"))
    exact = hit.g_pred.notna().to_numpy()

    true_pairs = _pairs(true_keys["size"].to_numpy())
    pred_pairs = _pairs(pred_keys["size"].to_numpy())
    both = _pairs(mapped.groupby(["family_id", "true_family"], sort=False).size().to_numpy())
    precision = both / pred_pairs if pred_pairs else 1.0
    recall = both / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    n_fam = int(members.family_id.nunique())
    out = {
        "true_families": int(len(true_keys)),
        "predicted_families": n_fam,
        "exact_family_rate": round(float(exact.mean()) if len(exact) else 1.0, 5),
        "families_recovered_exactly": int(exact.sum()),
        "pairwise": {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5),
                     "true_pairs": true_pairs, "predicted_pairs": pred_pairs},
        "persons_per_family": round(len(members) / n_fam, 3) if n_fam else 0.0,
        "true_persons_per_family": round(len(alive) / len(true_keys), 3) if len(true_keys) else 0.0,
        "national_persons_per_family": NATIONAL_PERSONS_PER_FAMILY,
        "true_persons_not_placed": int((~alive.true_id.isin(mapped.true_id)).sum()),
        "placed_persons_not_true_living": int(len(pred) - len(pred.merge(alive, on="true_id", how="inner"))),
    }
    if truth_families is not None and "family_type" in truth_families.columns:
        by_type = pd.Series(exact, index=true_keys.index).groupby(
            truth_families.set_index("family_id").family_type.reindex(true_keys.index).to_numpy()).mean()
        out["exact_by_true_type"] = {str(k): round(float(v), 5) for k, v in by_type.items()}
    return out


def families_section(lake: Lake) -> dict:
    path = lake.table("families", "family_members")
    if not path.exists():
        return {"status": "not materialized"}
    members = pq.read_table(path, columns=["person_id", "family_id"]).to_pandas()
    mapping = person_truth(lake).reset_index()  # made once per crosswalk, column by column
    truth_persons = pq.read_table(lake.truth("persons"), columns=["person_id", "alive", "family_id"]).to_pandas()
    truth_families = pq.read_table(lake.truth("families"), columns=["family_id", "family_type"]).to_pandas()
    return {"status": "ok", "families": family_accuracy(members, mapping, truth_persons, truth_families)}
