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

__all__ = ["ae_scores", "indicator_scores", "top_texts"]


def indicator_scores(frame: pd.DataFrame, indicator: Indicator) -> np.ndarray:
    """0..100 (100 = no concern) for one indicator; a zero divisor gives x = 0."""
    x = feature_values(frame, indicator.feature)
    if indicator.divide_by:
        divisor = feature_values(frame, indicator.divide_by)
        x = np.divide(x, divisor, out=np.zeros_like(x), where=divisor > 0)
    xs = np.array([p[0] for p in indicator.points])
    ys = np.array([p[1] for p in indicator.points])
    return np.interp(x, xs, ys)


def top_texts(weight: np.ndarray, texts: list[str], limit: int, empty: str = "") -> np.ndarray:
    """Per family, the texts of the (up to ``limit``) reasons of largest positive ``weight``,
    "; "-joined, largest first (ties: the earlier reason); ``empty`` when there is none.

    ``weight`` is (reasons × families), one contiguous row per reason. Vectorised: each family's
    choice is encoded as one integer, and strings are built once per distinct combination (a few
    hundred), never per family."""
    k, n = weight.shape
    rest = weight.copy()
    families = np.arange(n)
    code = np.zeros(n, dtype=np.int64)
    for _ in range(limit):  # loops over ranks (top 3) and reasons, never over families
        best_value = np.zeros(n, dtype=weight.dtype)
        best = np.full(n, -1, dtype=np.int64)
        for j in range(k):
            better = rest[j] > best_value
            best[better] = j
            best_value = np.where(better, rest[j], best_value)
        found = best >= 0
        code = code * (k + 1) + (best + 1)
        rest[best[found], families[found]] = -1
    inverse, combos = pd.factorize(code, sort=True)
    strings = []
    for combo in combos.tolist():  # one per distinct combination of reasons
        picked = []
        for _ in range(limit):
            combo, j = divmod(combo, k + 1)
            if j:
                picked.append(texts[j - 1])
        strings.append("; ".join(reversed(picked)) or empty)
    return np.asarray(strings, dtype=object)[inverse]


def ae_scores(frame: pd.DataFrame, model: AeMap, version: str) -> pd.DataFrame:
    """``frame``: family_features joined with the derived welfare quantities. Returns family_id,
    ae_model_version, ae_category, ae_score, score_<dimension> for the five dimensions, ae_reasons."""
    n = len(frame)
    out = pd.DataFrame({"family_id": frame["family_id"].to_numpy(dtype=np.int64)})
    out["ae_model_version"] = version
    total = np.zeros(n)
    concerns = [(d, i) for d in DIMENSIONS for i in model.dimensions[d].indicators if i.reason]
    strengths = [(d, i) for d in DIMENSIONS for i in model.dimensions[d].indicators if i.strength]
    # one contiguous row per reason: the points each concern costs / each strength brings
    loss = np.zeros((len(concerns), n), dtype=np.float32)
    gain = np.zeros((len(strengths), n), dtype=np.float32)
    for name in DIMENSIONS:
        dim = model.dimensions[name]
        score = np.zeros(n)
        for ind in dim.indicators:
            s = indicator_scores(frame, ind)
            score += ind.weight * s
            impact = dim.weight * ind.weight
            if ind.reason:
                loss[concerns.index((name, ind))] = np.where(s < ind.reason_below, impact * (100 - s), 0)
            if ind.strength:
                gain[strengths.index((name, ind))] = np.where(s >= ind.strength_from, impact * s, 0)
        out[f"score_{name}"] = np.round(score, 2)
        total += dim.weight * score
    out["ae_score"] = np.round(total, 2)
    bounds = np.array([model.thresholds[c] for c in ("E", "D", "C", "B")])
    out["ae_category"] = np.asarray(CATEGORIES)[np.searchsorted(bounds, out["ae_score"].to_numpy(), side="right")]
    # concerns first, ranked by the points they cost; a family with none is described by its
    # strengths, else "no concern"
    risk = top_texts(loss, [i.reason for _, i in concerns], model.top_reasons)
    strong = top_texts(gain, [i.strength for _, i in strengths], model.top_reasons, model.no_concern)
    text = np.where((loss > 0).any(axis=0), risk, strong)
    out["ae_reasons"] = pd.Series(text, dtype="str")
    return out
