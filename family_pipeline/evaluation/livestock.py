"""Livestock against the truth: animal linkage, virtual animals and phantom animals.

Only records the pipeline saw (clean rows) count. A predicted animal stands for the true animal
most of its records belong to. Virtual animals are judged in the registries that register an
animal at a place (a subsidy record carries no settlement, so a copy of it is a duplicate, not a
second place); phantoms are the truth's phantom animals that appear in some clean record.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from family_pipeline.catalog import catalog
from family_pipeline.lib.lake import Lake

__all__ = ["animal_linkage_accuracy", "flag_accuracy", "livestock_section"]

KEYS = ["registry", "record_id"]


def _pairs(*codes: np.ndarray) -> int:
    """Number of record pairs sharing all the given codes."""
    frame = pd.DataFrame({str(k): c for k, c in enumerate(codes)})
    sizes = frame.groupby(list(frame.columns), sort=False).size().to_numpy(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _codes(values) -> np.ndarray:
    return np.asarray(pd.factorize(values)[0], np.int64)


def _scores(tp: int, predicted: int, true: int) -> dict:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5),
            "predicted": int(predicted), "true": int(true), "correct": int(tp)}


def animal_linkage_accuracy(linked: pd.DataFrame) -> dict:
    """``linked``: animal_key and the true animal_id per record."""
    pred, true = _codes(linked.animal_key), _codes(linked.animal_id)  # integers group faster than text
    both, pp, tp = _pairs(pred, true), _pairs(pred), _pairs(true)
    out = _scores(both, pp, tp)
    per_true = linked.groupby("animal_id").animal_key.nunique()
    per_pred = linked.groupby("animal_key").animal_id.nunique()
    return {"records": len(linked), "true_animals": len(per_true), "predicted_animals": len(per_pred),
            "pairwise": {k: out[k] for k in ("precision", "recall", "f1")} | {"true_pairs": tp, "predicted_pairs": pp},
            "true_animals_split": int((per_true > 1).sum()), "predicted_merging_animals": int((per_pred > 1).sum())}


def flag_accuracy(predicted_animals: np.ndarray, true_animals: np.ndarray) -> dict:
    """Precision and recall of a set of flagged (true) animal ids."""
    predicted, true = np.unique(predicted_animals), np.unique(true_animals)
    return _scores(int(np.isin(predicted, true).sum()), len(predicted), len(true))


def livestock_section(lake: Lake) -> dict:
    from family_pipeline.evaluation.resolution import matching_rows

    records_path = lake.table("resolution", "animal_records")
    anomalies_path = lake.table("resolution", "livestock_anomalies")
    if not records_path.exists() or not anomalies_path.exists():
        return {"skipped": "livestock tables not materialized"}
    records = pq.read_table(records_path, columns=KEYS + ["animal_key"])
    truth = pq.read_table(lake.truth("animal_records"))
    # records matched with their truth on integer codes of the keys (no string join)
    row = matching_rows(records, truth, KEYS)
    seen_rows = np.flatnonzero(row >= 0)
    linked = pd.DataFrame({
        "animal_key": records.column("animal_key").take(pa.array(seen_rows)).to_pandas(),
        "animal_id": truth.column("animal_id").to_numpy()[row[seen_rows]],
    })
    del truth
    # the true animal a predicted animal stands for: the one most of its records belong to
    stands_for = (linked.groupby(["animal_key", "animal_id"]).size().reset_index(name="n")
                  .sort_values(["animal_key", "n", "animal_id"], ascending=[True, False, True])
                  .drop_duplicates("animal_key").set_index("animal_key").animal_id)
    anomalies = pq.read_table(anomalies_path, columns=["animal_key", "kind", "reason"]).to_pandas()
    anomalies["animal_id"] = stands_for.reindex(anomalies.animal_key).to_numpy()

    defects = pq.read_table(lake.truth("defects"), columns=["kind", "registry", "record_id"])
    # a country without defects wrote the columns null-typed
    defects = defects.cast(pa.schema([(name, pa.string()) for name in defects.column_names]))
    at_place = [s.code for s in catalog().registries if "settlement" in s.role_columns("animal")]
    moved = defects.filter(pc.and_(pc.equal(defects.column("kind"), "virtual_animal"),
                                   pc.is_in(defects.column("registry"), pa.array(at_place, pa.string()))))
    moved_seen = matching_rows(records.take(pa.array(seen_rows)), moved, KEYS) >= 0
    true_virtual = np.unique(linked.animal_id.to_numpy()[moved_seen])
    animals = pq.read_table(lake.truth("animals"), columns=["animal_id", "phantom"]).to_pandas()
    seen = animals[animals.animal_id.isin(linked.animal_id)]
    true_phantom = seen.animal_id[seen.phantom].to_numpy()

    def flagged(kind: str) -> np.ndarray:
        ids = anomalies.loc[anomalies.kind == kind, "animal_id"]
        return ids.dropna().to_numpy(np.int64)

    phantom = anomalies[anomalies.kind == "phantom"]
    is_true = phantom.animal_id.isin(true_phantom)
    return {
        "linkage": animal_linkage_accuracy(linked),
        "virtual": flag_accuracy(flagged("virtual"), true_virtual),
        "phantom": flag_accuracy(flagged("phantom"), true_phantom)
                   | {"by_reason": {str(r): {"flagged": len(g), "true": int(is_true[g.index].sum())}
                                    for r, g in phantom.groupby("reason")}},
    }
