"""The six-category pilot: 23 documented yes/no criteria (``seeds/scoring/pilot_criteria.yaml``)
evaluated for every family, then ordered rules place the family into a category — 1 extreme
need (no money for food) … 6 high well-being (all of: 2+ housing units, 1+ vehicles, a legal
entity or sole proprietorship, per-capita income above 4 subsistence minimums). The first rule
that holds wins; a family no rule takes gets the default category. The reasons are the criteria
that placed the family, in plain words. Vectorised over families.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from family_pipeline.families.sets import isin
from family_pipeline.scoring.seeds import Criterion, PilotModel, PilotRule
from family_pipeline.scoring.welfare import feature_values

__all__ = ["criteria_flags", "pilot_categories", "rule_holds"]

_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
        "==": np.equal, "!=": np.not_equal}


def _criterion(frame: pd.DataFrame, c: Criterion) -> np.ndarray:
    x = feature_values(frame, c.feature)
    if c.divide_by:
        divisor = feature_values(frame, c.divide_by)
        x = np.divide(x, divisor, out=np.zeros_like(x), where=divisor > 0)
    if c.unit == "subsistence_minimum":
        limit = c.value * feature_values(frame, "subsistence_minimum")
    elif c.unit == "poverty_line":
        limit = c.value * feature_values(frame, "poverty_line")
    else:
        limit = np.full(len(frame), c.value)
    return _OPS[c.op](x, limit)


def criteria_flags(frame: pd.DataFrame, model: PilotModel) -> pd.DataFrame:
    """One boolean column per criterion code (K01..K23)."""
    return pd.DataFrame({c.code: _criterion(frame, c) for c in model.criteria}, index=frame.index)


def rule_holds(flags: pd.DataFrame, rule: PilotRule) -> np.ndarray:
    holds = np.ones(len(flags), dtype=bool)
    for code in rule.all_of:
        holds &= flags[code].to_numpy()
    if rule.any_of:
        holds &= flags[list(rule.any_of)].to_numpy().any(axis=1)
    for code in rule.none_of:
        holds &= ~flags[code].to_numpy()
    if rule.at_least is not None:
        holds &= flags[list(rule.of)].to_numpy().sum(axis=1) >= rule.at_least
    return holds


def pilot_categories(frame: pd.DataFrame, model: PilotModel, version: str) -> pd.DataFrame:
    """``frame``: family_features joined with the derived welfare quantities. Returns family_id,
    pilot_model_version, pilot_category, pilot_reasons and one boolean column per criterion."""
    n = len(frame)
    flags = criteria_flags(frame, model)
    category = np.zeros(n, dtype=np.int64)
    reasons = np.full(n, "", dtype=object)
    codes = [c.code for c in model.criteria]
    texts = [c.text for c in model.criteria]
    held = flags.to_numpy()
    for rule in model.rules:  # loops over the seed's rules, never over families
        take = np.flatnonzero((category == 0) & rule_holds(flags, rule))
        if not len(take):
            continue
        category[take] = rule.category
        cited = isin(codes, sorted(set(rule.all_of) | set(rule.any_of) | set(rule.of)))
        # the criteria of the rule that hold, as a bit mask; strings built once per distinct mask
        bits = (held[take] & cited) @ (np.int64(1) << np.arange(len(codes), dtype=np.int64))
        masks, inverse = np.unique(bits, return_inverse=True)
        strings = ["; ".join(t for j, t in enumerate(texts) if m >> j & 1) for m in masks.tolist()]
        reasons[take] = np.asarray(strings, dtype=object)[inverse]
    rest = category == 0
    category[rest] = model.default_category
    reasons[rest] = model.default_reason
    out = pd.DataFrame({"family_id": frame["family_id"].to_numpy(dtype=np.int64)})
    out["pilot_model_version"] = version
    out["pilot_category"] = category
    out["pilot_reasons"] = pd.Series(reasons, dtype="str")
    for code in codes:
        out[f"pilot_{code}"] = flags[code].to_numpy()
    return out
