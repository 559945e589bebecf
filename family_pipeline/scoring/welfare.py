"""Material welfare of a family estimated from its features: income before targeted social
assistance (plus cash the registries read cannot show, such as an LLP's yield to its owner),
what its land and livestock produce for its own table, and the ratio of the two to the family's
poverty line. Both scoring models build on these quantities.

Income poverty is offset here by what holdings produce: a family with little cash but cattle or
a field eats from them, the way the generator's latent consumption (and real households) do.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from family_pipeline.catalog import MoneyYear, Region
from family_pipeline.scoring.seeds import WelfareSpec

__all__ = ["derived_quantities", "feature_values", "poverty_lines"]


def feature_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A feature or derived column as float64 (booleans as 0/1, missing as 0)."""
    if name not in frame.columns:
        raise KeyError(f"family_features has no column {name!r} (needed by the scoring seeds)")
    column = frame[name]
    if column.dtype == bool or str(column.dtype) == "boolean":
        return column.fillna(False).to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").fillna(0).to_numpy(dtype=np.float64)


def poverty_lines(region: Iterable[str], spec: WelfareSpec, regions: Iterable[Region], money: MoneyYear) -> np.ndarray:
    """max(median_share × regional median income, subsistence_share × subsistence minimum)."""
    medians = pd.Series({r.iso: float(r.median_income) for r in regions})
    median = medians.reindex(pd.Index(np.asarray(region, dtype=object))).to_numpy(dtype=np.float64)
    # an unknown region falls back to the national median of the regional medians
    median = np.where(np.isnan(median), float(medians.median()), median)
    return np.maximum(spec.poverty_line.median_share * median,
                      spec.poverty_line.subsistence_share * money.subsistence_minimum)


def derived_quantities(features: pd.DataFrame, spec: WelfareSpec, regions: Iterable[Region],
                       money: MoneyYear) -> pd.DataFrame:
    """The derived columns of ``seeds.DERIVED``, one row per family, aligned with ``features``."""
    members = np.maximum(feature_values(features, "members"), 1)
    income = feature_values(features, spec.income.feature)
    for name in spec.income.subtract:
        income = income - feature_values(features, name)
    income = np.maximum(income, 0)
    imputed = np.zeros(len(features))
    for extra in spec.imputed_income:
        units = np.maximum(feature_values(features, extra.feature), 0)
        if extra.when_zero:
            units = np.where(feature_values(features, extra.when_zero) == 0, units, 0)
        imputed += units * extra.kzt_per_unit
    imputed_pc = imputed / members
    produce = np.zeros(len(features))
    for item in spec.produce:
        units = feature_values(features, item.feature)
        for name in item.minus:
            units = units - feature_values(features, name)
        units = np.maximum(units, 0)
        if item.cap is not None:
            units = np.minimum(units, item.cap)
        produce += units * item.kzt_per_unit
    produce_pc = produce / members
    consumption = spec.income.realisation * (income + imputed_pc) + produce_pc
    line = poverty_lines(features["region"], spec, regions, money)
    return pd.DataFrame({
        "income_before_asp_pc": income,
        "imputed_income_pc": imputed_pc,
        "produce_pc": produce_pc,
        "consumption_estimate_pc": consumption,
        "poverty_line": line,
        "welfare_ratio": consumption / line,
        "subsistence_minimum": np.full(len(features), float(money.subsistence_minimum)),
    }, index=features.index)
