"""Entity resolution against the truth: pairwise and cluster accuracy, and blocking recall.

Pairs are pairs of mentions: a predicted pair is two mentions given the same person, a true pair
two mentions of the same true person. Only mentions the pipeline saw (clean rows) and that name
a real person count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from family_pipeline.lib.lake import Lake

__all__ = ["golden_to_truth", "linkage_accuracy", "resolution_section", "true_person_of"]

KEYS = ["registry", "record_id", "group"]


def golden_to_truth(xref: pd.DataFrame, truth_mentions: pd.DataFrame) -> pd.DataFrame:
    """person_id → true_id by majority of mentions (ties: the smaller true id). Every stage after
    resolution is measured through this one mapping."""
    x = xref[KEYS + ["person_id"]].merge(truth_mentions.rename(columns={"person_id": "true_id"}), on=KEYS, how="inner")
    x = x[x.true_id >= 0]
    votes = x.groupby(["person_id", "true_id"], sort=False).size().rename("n").reset_index()
    votes = votes.sort_values(["person_id", "n", "true_id"], ascending=[True, False, True], kind="mergesort")
    return votes.drop_duplicates("person_id")[["person_id", "true_id"]]


def true_person_of(lake: Lake, registries: list[str] | None = None,
                   person_ids: np.ndarray | None = None) -> pd.Series:
    """pipeline person_id → true person id (``golden_to_truth`` over the lake's crosswalk), read
    only for ``registries`` and ``person_ids`` when given."""
    filters = [("registry", "in", list(registries))] if registries else None
    xref = pq.read_table(lake.table("resolution", "person_xref"), columns=KEYS + ["person_id"], filters=filters).to_pandas()
    if person_ids is not None:
        xref = xref[xref.person_id.isin(pd.unique(person_ids))]
    truth = pq.read_table(lake.truth("mentions"), filters=filters).to_pandas()
    return golden_to_truth(xref, truth).set_index("person_id").true_id


def _pairs(*codes: np.ndarray) -> int:
    """Number of mention pairs sharing all the given codes."""
    frame = pd.DataFrame({str(k): c for k, c in enumerate(codes)})
    sizes = frame.groupby(list(frame.columns), sort=False).size().to_numpy(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def linkage_accuracy(xref: pd.DataFrame, truth: pd.DataFrame, candidates: pd.DataFrame | None = None) -> dict:
    """``xref``: registry, record_id, group, person_id[, signature]; ``truth``: registry, record_id,
    group, person_id; ``candidates``: signature_a, signature_b (the blocked pairs)."""
    x = xref.merge(truth.rename(columns={"person_id": "true_id"}), on=KEYS, how="inner")
    x = x[x.true_id >= 0]
    pred, true = x.person_id.to_numpy(), x.true_id.to_numpy()
    both, pp, tp = _pairs(pred, true), _pairs(pred), _pairs(true)
    precision = both / pp if pp else 1.0
    recall = both / tp if tp else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # clusters: a true person is recovered exactly when its mentions are exactly one predicted cluster
    per_true = x.groupby("true_id").person_id.agg(["nunique", "first", "size"])
    per_pred = x.groupby("person_id").true_id.agg(["nunique", "size"])
    exact = (per_true["nunique"] == 1) & (per_pred["size"].reindex(per_true["first"]).to_numpy() == per_true["size"].to_numpy())
    out = {
        "mentions": int(len(x)),
        "true_persons": int(len(per_true)),
        "predicted_persons": int(len(per_pred)),
        "pairwise": {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5),
                     "true_pairs": tp, "predicted_pairs": pp},
        "clusters": {
            "persons_recovered_exactly": round(float(exact.mean()), 5),
            "predicted_pure": round(float((per_pred["nunique"] == 1).mean()), 5),
            "true_persons_split": int((per_true["nunique"] > 1).sum()),
            "predicted_merging_persons": int((per_pred["nunique"] > 1).sum()),
        },
    }
    if candidates is not None and "signature" in x.columns:
        # blocking pair-completeness over distinct signatures of the same true person
        votes = x.groupby(["signature", "true_id"]).size().rename("n").reset_index()
        sig = votes.sort_values(["signature", "n", "true_id"], ascending=[True, False, True]).drop_duplicates("signature")
        sig = sig[["signature", "true_id"]]
        sig = sig.sort_values(["true_id", "signature"])
        m = sig.merge(sig, on="true_id", suffixes=("_a", "_b"))
        m = m[m.signature_a < m.signature_b]
        found = m.merge(candidates[["signature_a", "signature_b"]], on=["signature_a", "signature_b"], how="inner")
        # reachable: joined through candidate pairs between signatures of the same true person
        # (a record with only an IIN and one with only a name can meet only through a third)
        true_of = pd.Series(sig.true_id.to_numpy(), index=sig.signature.to_numpy())
        a, b = candidates.signature_a.to_numpy(), candidates.signature_b.to_numpy()
        ta, tb = true_of.reindex(a).to_numpy(), true_of.reindex(b).to_numpy()
        inner = (ta == tb) & ~np.isnan(ta.astype(float))
        n = int(max(sig.signature.max(), a.max() if len(a) else 0, b.max() if len(b) else 0)) + 1
        _, comp = connected_components(coo_matrix((np.ones(int(inner.sum())), (a[inner], b[inner])), shape=(n, n)),
                                       directed=False)
        sizes = pd.Series(comp[sig.signature.to_numpy()]).value_counts().to_numpy(np.int64)
        reachable = int((sizes * (sizes - 1) // 2).sum())
        out["blocking"] = {"true_signature_pairs": int(len(m)), "in_candidates": int(len(found)),
                           "pair_completeness": round(len(found) / len(m), 5) if len(m) else 1.0,
                           "reachable_pairs": reachable,
                           "reachable_completeness": round(reachable / len(m), 5) if len(m) else 1.0}
    return out


def resolution_section(lake: Lake) -> dict:
    xref_path = lake.table("resolution", "person_xref")
    if not xref_path.exists():
        return {"status": "not materialized"}
    xref = pq.read_table(xref_path).to_pandas()
    truth = pq.read_table(lake.truth("mentions")).to_pandas()
    cand_path = lake.table("resolution", "person_candidate_pairs")
    candidates = pq.read_table(cand_path, columns=["signature_a", "signature_b"]).to_pandas() if cand_path.exists() else None
    return {"status": "ok", "persons": linkage_accuracy(xref, truth, candidates)}
