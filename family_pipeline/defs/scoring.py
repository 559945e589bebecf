"""Scoring assets (group ``scoring``): every family on the A–E map and in the six-category pilot.

The logic lives in ``family_pipeline.scoring`` (no Dagster there) and the models in
``seeds/scoring/``; these assets read ``family_features``, score, write the tables and report
the category distributions, the model versions and — on a synthetic country with its truth —
the inclusion and exclusion errors of the lowest categories. Only counts reach the metadata.
"""

import time

import dagster as dg
import pyarrow as pa

from family_pipeline.catalog import catalog
from family_pipeline.defs.resources import DATA_ENGINEERING, LakeResource
from family_pipeline.execution import ON_THE_PATH, step_tags
from family_pipeline.quality.expectations import read_snapshot, reference_date
from family_pipeline.scoring import category_summary as summarise
from family_pipeline.scoring import load_scoring_seeds, score_families
from family_pipeline.scoring.charts import distribution_markdown

GROUP = "scoring"
FAMILY_FEATURES = dg.AssetKey(["families", "family_features"])
FAMILY_SCORES = dg.AssetKey([GROUP, "family_scores"])
CATEGORY_SUMMARY = dg.AssetKey([GROUP, "category_summary"])
OWNER = DATA_ENGINEERING
#: every family of family_features scored exactly once, with a category and both model versions
EVERY_FAMILY_CHECK = "every_family_scored_once"


def _truth_known(store) -> bool:
    """A synthetic country small enough to measure in the run (see ``evaluation.person_truth``)."""
    from family_pipeline.evaluation.person_truth import in_asset_truth

    return in_asset_truth(store)


@dg.asset(
    key=FAMILY_SCORES,
    group_name=GROUP,
    deps=[FAMILY_FEATURES],
    kinds={"parquet"},
    owners=[OWNER],
    code_version="1",
    check_specs=[dg.AssetCheckSpec(EVERY_FAMILY_CHECK, asset=FAMILY_SCORES,
                                   description="Every family of family_features has exactly one row, a category "
                                               "in both models and both model versions.")],
    description="Every family's A–E category (A prosperous … E critical) with its score, the five "
                "dimension scores (economic, social, housing, health, education) and top reasons; its "
                "six-category pilot category (1 no money for food … 6 high well-being) with the criteria "
                "that placed it; both model versions on every row. Models: seeds/scoring/.",
    op_tags=step_tags(ON_THE_PATH),
)
def family_scores(context: dg.AssetExecutionContext, lake: LakeResource):
    store = lake.lake()
    t0 = time.perf_counter()
    seeds = load_scoring_seeds()
    as_of = reference_date(read_snapshot(store.landing / "snapshot.json"))
    money = catalog().money_on(as_of)
    if not store.table("families", "family_features").exists():
        raise dg.Failure(description=f"no family_features at {store.table('families', 'family_features')}: "
                                     "materialize families/family_features first")
    features = store.read("families", "family_features", columns=seeds.required_features()).to_pandas()
    scores = score_families(features, seeds, catalog().regions, money)
    path = store.write(GROUP, "family_scores", pa.Table.from_pandas(scores, preserve_index=False))
    seconds = round(time.perf_counter() - t0, 2)
    ae = scores.ae_category.value_counts().reindex(list("ABCDE"), fill_value=0)
    pilot = scores.pilot_category.value_counts().reindex(range(1, 7), fill_value=0)
    context.log.info(f"{len(scores)} families scored in {seconds}s; A–E {ae.to_dict()}, pilot {pilot.to_dict()}")
    meta = {
        "dagster/row_count": len(scores),
        "ae_model_version": seeds.ae_version,
        "pilot_model_version": seeds.pilot_version,
        "as_of": as_of.isoformat(),
        "subsistence_minimum": money.subsistence_minimum,
        "ae_distribution": dg.MetadataValue.json({k: int(v) for k, v in ae.items()}),
        "pilot_distribution": dg.MetadataValue.json({str(k): int(v) for k, v in pilot.items()}),
        "seconds": seconds,
        "table": dg.MetadataValue.path(str(path)),
    }
    if store.truth("families").exists() and store.table("families", "families").exists() and _truth_known(store):
        from family_pipeline.evaluation.scoring import scoring_section

        accuracy = scoring_section(store)
        if accuracy.get("status") == "ok":
            for model in ("ae_map", "pilot"):
                meta[f"truth_{model}_inclusion_error"] = accuracy[model]["inclusion_error"]
                meta[f"truth_{model}_exclusion_error"] = accuracy[model]["exclusion_error"]
            meta["truth_accuracy"] = dg.MetadataValue.json(
                {m: {k: v for k, v in accuracy[m].items() if k != "by_region"} for m in ("ae_map", "pilot")})
    yield dg.MaterializeResult(metadata=meta)
    unscored = int((~features.family_id.isin(scores.family_id)).sum())
    repeated = int(scores.family_id.duplicated().sum())
    uncategorised = int((~scores.ae_category.isin(list("ABCDE")) | ~scores.pilot_category.between(1, 6)).sum())
    unversioned = int((scores.ae_model_version != seeds.ae_version).sum()
                      + (scores.pilot_model_version != seeds.pilot_version).sum())
    yield dg.AssetCheckResult(check_name=EVERY_FAMILY_CHECK, asset_key=FAMILY_SCORES,
                              passed=unscored + repeated + uncategorised + unversioned == 0,
                              metadata={"families_not_scored": unscored, "families_scored_twice": repeated,
                                        "rows_without_category": uncategorised,
                                        "rows_without_model_version": unversioned})


@dg.asset(
    key=CATEGORY_SUMMARY,
    group_name=GROUP,
    deps=[FAMILY_SCORES],
    kinds={"parquet"},
    owners=[OWNER],
    code_version="1",
    description="Families per region × model × category (with the share of the region), and the "
                "distribution drawn as stacked bars per region for both models.",
)
def category_summary(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()
    scores = store.read(GROUP, "family_scores", columns=["region", "ae_model_version", "ae_category",
                                                          "pilot_model_version", "pilot_category"]).to_pandas()
    summary = summarise(scores)
    path = store.write(GROUP, "category_summary", pa.Table.from_pandas(summary, preserve_index=False))
    ae_chart = distribution_markdown(summary, "ae_map", list("ABCDE"), "A–E map: families per region")
    pilot_chart = distribution_markdown(summary, "pilot", [str(c) for c in range(6, 0, -1)],
                                        "Six-category pilot: families per region")
    wide = summary.pivot_table(index="region", columns=["model", "category"], values="families", fill_value=0)
    wide.columns = [f"{m}_{c}" for m, c in wide.columns]
    columns = [dg.TableColumn("region", "string")] + [dg.TableColumn(c, "int") for c in wide.columns]
    records = [dg.TableRecord({"region": str(r), **{c: int(v) for c, v in row.items()}})
               for r, row in wide.iterrows()]  # one record per region (20), not per family
    context.log.info(f"category summary: {len(summary)} rows over {summary.region.nunique()} regions")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(summary),
        "regions": int(summary.region.nunique()),
        "ae_model_version": str(scores.ae_model_version.iloc[0]) if len(scores) else "",
        "pilot_model_version": str(scores.pilot_model_version.iloc[0]) if len(scores) else "",
        "ae_map_chart": dg.MetadataValue.md(ae_chart),
        "pilot_chart": dg.MetadataValue.md(pilot_chart),
        "families_per_region": dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns)),
        "table": dg.MetadataValue.path(str(path)),
    })
