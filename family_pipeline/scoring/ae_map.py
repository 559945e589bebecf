"""The A–E map: every family scored 0..100 over five dimensions (economic, social, housing,
health/disability, education), the weighted sum placed into a category by the thresholds of
``seeds/scoring/ae_map.yaml`` (A prosperous … E critical life situation), with its top reasons
in plain words.

Each indicator maps one feature (or a derived welfare quantity) to a 0..100 score by linear
interpolation between the seed's points; a dimension is the weighted mean of its indicators.
The economic dimension works on *estimated consumption* (income plus home produce), so a family
poor on income but holding land or livestock is not placed in the highest-risk group on income
alone. Vectorised over families; no Python loop over rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from family_pipeline.scoring.seeds import CATEGORIES, DIMENSIONS, AeMap, Indicator
from family_pipeline.scoring.welfare import feature_values

__all__ = ["ae_scores", "indicator_scores", "join_reasons"]


def indicator_scores(frame: pd.DataFrame, indicator: Indicator) -> np.ndarray:
    """0..100 (100 = no concern) for one indicator; a zero divisor gives x = 0."""
    x = feature_values(frame, indicator.feature)
    if indicator.divide_by:
        divisor = feature_values(frame, indicator.divide_by)
        x = np.divide(x, divisor, out=np.zeros_like(x), where=divisor > 0)
    xs = np.array([p[0] for p in indicator.points])
    ys = np.array([p[1] for p in indicator.points])
    return np.interp(x, xs, ys)


def join_reasons(texts: np.ndarray, order: np.ndarray, keep: np.ndarray, limit: int) -> np.ndarray:
    """Per row, the texts of the first ``limit`` columns in ``order`` where ``keep`` holds, "; "-joined.

    ``texts``: one text per column; ``order``: (rows × columns) column indices, most important
    first; ``keep``: (rows × columns) booleans aligned with ``order``."""
    rows = order.shape[0]
    out = np.full(rows, "", dtype=object)
    taken = np.zeros(rows, dtype=np.int64)
    for rank in range(order.shape[1]):  # loops over columns (indicators), never over rows
        use = np.flatnonzero(keep[:, rank] & (taken < limit))
        if not len(use):
            continue
        glue = np.where(taken[use] > 0, "; ", "").astype(object)
        out[use] = out[use] + glue + texts[order[use, rank]]
        taken[use] += 1
    return out


def ae_scores(frame: pd.DataFrame, model: AeMap, version: str) -> pd.DataFrame:
    """``frame``: family_features joined with the derived welfare quantities. Returns family_id,
    ae_model_version, ae_category, ae_score, score_<dimension> for the five dimensions, ae_reasons."""
    n = len(frame)
    out = pd.DataFrame({"family_id": frame["family_id"].to_numpy(dtype=np.int64)})
    out["ae_model_version"] = version
    total = np.zeros(n)
    losses, gains, reasons, strengths = [], [], [], []
    for name in DIMENSIONS:
        dim = model.dimensions[name]
        score = np.zeros(n)
        for ind in dim.indicators:
            s = indicator_scores(frame, ind)
            score += ind.weight * s
            impact = dim.weight * ind.weight
            # a reason is an indicator of concern, ranked by the points it costs the family
            losses.append(np.where((s < ind.reason_below) & (ind.reason is not None), impact * (100 - s), -1.0))
            reasons.append(ind.reason or "")
            gains.append(np.where((s >= ind.strength_from) & (ind.strength is not None), impact * s, -1.0))
            strengths.append(ind.strength or "")
        out[f"score_{name}"] = np.round(score, 2)
        total += dim.weight * score
    out["ae_score"] = np.round(total, 2)
    bounds = np.array([model.thresholds[c] for c in ("E", "D", "C", "B")])
    out["ae_category"] = np.asarray(CATEGORIES)[np.searchsorted(bounds, out["ae_score"].to_numpy(), side="right")]

    loss = np.column_stack(losses)
    order = np.argsort(-loss, axis=1, kind="stable")
    risk = join_reasons(np.asarray(reasons, dtype=object), order,
                        np.take_along_axis(loss, order, axis=1) > 0, model.top_reasons)
    gain = np.column_stack(gains)
    order = np.argsort(-gain, axis=1, kind="stable")
    strong = join_reasons(np.asarray(strengths, dtype=object), order,
                          np.take_along_axis(gain, order, axis=1) > 0, model.top_reasons)
    text = np.where(risk != "", risk, np.where(strong != "", strong, model.no_concern))
    out["ae_reasons"] = pd.Series(text, dtype="str")
    return out
