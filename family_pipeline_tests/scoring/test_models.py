"""The A–E map and the pilot on families made by hand: a model, not a filter; category 6 exactly
as the pilot defines it; category 1 for a family without money for food; reproducibility."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from family_pipeline.scoring import SCORE_COLUMNS, category_summary, scoring_seeds
from family_pipeline.scoring.charts import distribution_markdown
from family_pipeline_tests.scoring.cases import families, score

#: a village family of four living on 4,000 KZT per member a month (far below the poverty line)
POOR_ON_INCOME = {"region": "KZ-61", "settlement_type": "village", "income_pc": 4_000.0,
                  "income_pc_no_asp": 4_000.0, "working_adults": 1}
HOLDINGS = {
    "land plot": {"land_plots": 1, "land_area_ha": 12.0},
    "livestock": {"livestock_cattle": 4, "livestock_sheep": 15, "livestock_heads": 19},
    "land plot and livestock": {"land_plots": 1, "land_area_ha": 2.0, "livestock_cattle": 4,
                                "livestock_sheep": 12, "livestock_heads": 16},
}
#: the four conditions of category 6 (DESIGN.md), each on its own
RICH = {
    "2+ housing units": {"housing_units": 2},
    "1+ vehicles": {"vehicles": 1, "vehicle_value": 6_000_000.0},
    "a legal entity or sole proprietorship": {"businesses_active": 1},
    "income above 4 subsistence minimums": {"income_pc": 260_000.0, "income_pc_no_asp": 260_000.0},
}


@pytest.mark.parametrize("holding", sorted(HOLDINGS))
def test_income_poor_family_with_land_or_livestock_is_not_in_the_highest_risk_group(holding):
    without, with_holding = score(POOR_ON_INCOME, POOR_ON_INCOME | HOLDINGS[holding]).itertuples()
    # on income alone: critical (E) and the pilot's "no money for food" (1)
    assert without.ae_category == "E" and without.pilot_category == 1
    # the holding feeds the family: still poor, but not in the highest-risk group
    assert with_holding.ae_category == "D"
    assert with_holding.pilot_category == 2
    assert with_holding.score_economic > without.score_economic
    assert with_holding.ae_score > without.ae_score


def test_category_6_needs_all_four_conditions_together():
    rows = {"none": {}} | {f"only {k}": v for k, v in RICH.items()}
    rows |= {f"all but {k}": {kk: vv for name, c in RICH.items() if name != k for kk, vv in c.items()} for k in RICH}
    rows["all four"] = {k: v for c in RICH.values() for k, v in c.items()}
    scored = score(*rows.values())
    category = dict(zip(rows, scored.pilot_category))
    assert category["all four"] == 6
    for name in RICH:
        assert category[f"only {name}"] != 6, name
        assert category[f"all but {name}"] != 6, name
    reasons = scored.pilot_reasons.iloc[-1]
    assert "two or more homes" in reasons and "four subsistence minimums" in reasons


def test_income_exactly_at_four_subsistence_minimums_is_not_above_them():
    sm = 50_851  # seeds/money.yaml, 2026
    at = {k: v for c in RICH.values() for k, v in c.items()} | {"income_pc": 4.0 * sm, "income_pc_no_asp": 4.0 * sm}
    above = at | {"income_pc": 4.0 * sm + 1}
    assert score(at, above).pilot_category.tolist()[1] == 6
    assert score(at).pilot_category.iloc[0] != 6


def test_category_1_is_a_family_without_money_for_food():
    no_food = {"income_pc": 0.0, "income_pc_no_asp": 0.0, "working_adults": 0, "adults": 2}
    # ASP lifts cash income, but the family's own means are what the pilot judges
    on_asp = no_food | {"income_pc": 30_000.0, "receives_asp": True}
    scored = score(no_food, on_asp, no_food | {"vehicles": 1})
    assert scored.pilot_category.tolist()[:2] == [1, 1]
    assert "not enough for food" in scored.pilot_reasons.iloc[0]
    assert scored.ae_category.tolist()[:2] == ["E", "E"]
    # a car to sell is something to fall back on: in need, not extreme need
    assert scored.pilot_category.iloc[2] == 2


def test_every_row_has_a_category_score_reasons_and_model_versions():
    rows = [{}, POOR_ON_INCOME, {"housing_units": 0, "housing_area_pc": 0.0, "unemployed_adults": 1,
                                 "disabled_members": 1, "narcological_members": 1}]
    scored = score(*rows)
    seeds = scoring_seeds()
    assert list(scored.columns[:len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert (scored.ae_model_version == seeds.ae_version).all() and seeds.ae_map.version in seeds.ae_version
    assert (scored.pilot_model_version == seeds.pilot_version).all()
    assert scored.ae_category.isin(list("ABCDE")).all() and scored.pilot_category.between(1, 6).all()
    assert scored.ae_score.between(0, 100).all()
    for dim in ("economic", "social", "housing", "health", "education"):
        assert scored[f"score_{dim}"].between(0, 100).all()
    assert (scored.ae_reasons.str.len() > 0).all() and (scored.pilot_reasons.str.len() > 0).all()
    # reasons are plain words, ranked: the poor family's first reason is its income
    assert scored.ae_reasons.iloc[1].startswith("income and home produce per member below the poverty line")
    troubled = scored.ae_reasons.iloc[2].split("; ")
    assert len(troubled) == seeds.ae_map.top_reasons and "no home of its own" in troubled
    assert scored.score_housing.iloc[2] < scored.score_housing.iloc[0]
    assert scored.score_social.iloc[2] < scored.score_social.iloc[0]


def test_same_inputs_give_the_same_categories_and_bytes():
    rng = np.random.default_rng(5)
    n = 2_000
    rows = [{"income_pc": float(x), "income_pc_no_asp": float(x), "livestock_cattle": int(c),
             "land_area_ha": float(a), "vehicles": int(v), "housing_units": int(h), "businesses_active": int(b),
             "region": r}
            for x, c, a, v, h, b, r in zip(rng.lognormal(11, 1, n), rng.poisson(0.5, n), rng.exponential(1, n),
                                            rng.poisson(0.4, n), rng.poisson(0.9, n), rng.poisson(0.1, n),
                                            rng.choice(["KZ-61", "KZ-71", "KZ-35"], n))]
    frame = families(*rows)
    from family_pipeline.catalog import catalog
    from family_pipeline.scoring import score_families
    from family_pipeline_tests.scoring.cases import AS_OF

    seeds = scoring_seeds()
    money = catalog().money_on(AS_OF)
    first = score_families(frame, seeds, catalog().regions, money)
    shuffled = score_families(frame.sample(frac=1, random_state=3), seeds, catalog().regions, money)
    pd.testing.assert_frame_equal(first, shuffled)

    def parquet_bytes(df: pd.DataFrame) -> bytes:
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, compression="zstd")
        return buf.getvalue()

    assert parquet_bytes(first) == parquet_bytes(score_families(frame, seeds, catalog().regions, money))
    # the models separate families: several categories in use
    assert first.ae_category.nunique() >= 4 and first.pilot_category.nunique() >= 4


def test_category_summary_counts_every_family_once_per_model_and_draws_a_chart():
    scored = score({}, POOR_ON_INCOME, {"region": "KZ-71"}, {"region": "KZ-71", "income_pc_no_asp": 0.0})
    summary = category_summary(scored)
    assert set(summary.model) == {"ae_map", "pilot"}
    assert summary.groupby("model").families.sum().tolist() == [4, 4]
    # every category is listed for every region, zeros included
    assert len(summary) == summary.region.nunique() * (5 + 6)
    kz71 = summary[(summary.model == "ae_map") & (summary.region == "KZ-71")].set_index("category").families
    assert kz71["E"] == 1 and kz71.sum() == 2
    assert np.isclose(summary.groupby(["model", "region"]).share.sum(), 1).all()
    chart = distribution_markdown(summary, "ae_map", list("ABCDE"), "A–E")
    assert "data:image/svg+xml;base64," in chart and "| KZ-71 |" in chart and "50%" in chart


def test_cash_the_registries_miss_is_imputed_only_where_it_is_missing():
    no_income = {"income_pc": 0.0, "income_pc_no_asp": 0.0, "working_adults": 0, "members": 1, "adults": 1}
    scored = score(no_income, no_income | {"legal_entities_active": 1},
                   no_income | {"pensioners": 1}, no_income | {"pensioners": 1, "income_pension": 90_000.0,
                                                               "income_pc": 90_000.0, "income_pc_no_asp": 90_000.0})
    ratio = scored.welfare_ratio.tolist()
    assert scored.ae_category.iloc[0] == "E"
    # an LLP owner lives on its yield; a pensioner has a pension even when no payment record is read
    assert scored.ae_category.iloc[1] not in ("D", "E") and ratio[1] > 1
    assert ratio[2] > 1
    # a pension that is on record is not counted twice
    line = 0.35 * 115_000  # Shymkent's median income (seeds/regions.csv) × the ASP share
    assert ratio[3] == pytest.approx(scoring_seeds().welfare.income.realisation * 90_000 / line, rel=1e-3)
