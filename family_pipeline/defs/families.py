"""Family assets (group ``families``): resolved persons → families → the wide feature table.

The rules live in ``family_pipeline.families`` (no Dagster there); these assets read the lake,
call them, write the tables and report counts, the family size and type distributions, which
rule placed how many persons and — when the data is a synthetic country with its truth — the
exact-family rate and co-membership F1. No person id, name or IIN reaches the metadata.
"""

import json
import time

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import registry_key
from family_pipeline.defs.resolution import ANIMALS, PERSONS, XREF
from family_pipeline.defs.resources import DATA_ENGINEERING, LakeResource
from family_pipeline.execution import ON_THE_PATH, step_tags
from family_pipeline.families import (
    FEATURES_FILE,
    FormationRules,
    feature_dictionary,
    form_families,
    formation_inputs,
)
from family_pipeline.families.features import write_family_features
from family_pipeline.families.sources import FORMATION_REGISTRIES

GROUP = "families"
FAMILY_MEMBERS = dg.AssetKey([GROUP, "family_members"])
FAMILIES = dg.AssetKey([GROUP, "families"])
FAMILY_FEATURES = dg.AssetKey([GROUP, "family_features"])
OWNER = DATA_ENGINEERING
ONE_FAMILY_CHECK = "one_family_per_person"


def _feature_registries() -> list[str]:
    codes = set(catalog().codes)
    return sorted({s for f in feature_dictionary().features for s in f.sources if s in codes})


def _counts(series: pd.Series) -> dict:
    return {str(k): int(v) for k, v in series.value_counts().sort_index().items()}


def _truth_known(store) -> bool:
    """A synthetic country small enough to measure in the run (see ``evaluation.person_truth``)."""
    from family_pipeline.evaluation.person_truth import in_asset_truth

    return in_asset_truth(store)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FAMILY_MEMBERS, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     deps=[PERSONS, XREF] + [registry_key(c) for c in FORMATION_REGISTRIES],
                     description="Every living resident in exactly one family: person_id, family_id, role "
                                 "(head|spouse|child|single) and the documented rule that placed them."),
        dg.AssetSpec(FAMILIES, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     deps=[PERSONS, XREF] + [registry_key(c) for c in FORMATION_REGISTRIES],
                     description="One row per family: family_id, head_person_id, members, family_type, region, "
                                 "settlement_type (city|village)."),
    ],
    check_specs=[dg.AssetCheckSpec(ONE_FAMILY_CHECK, asset=FAMILY_MEMBERS,
                                   description="No person is in two families and every family has its head.")],
    op_tags=step_tags(ON_THE_PATH, whole_country=True),
)
def family_tables(context: dg.AssetExecutionContext, lake: LakeResource):
    store = lake.lake()
    t0 = time.perf_counter()
    rules = FormationRules(**feature_dictionary().formation.model_dump())
    tables = form_families(formation_inputs(store), rules)
    members, families = tables.members, tables.families
    paths = {FAMILY_MEMBERS: store.write(GROUP, "family_members", pa.Table.from_pandas(members, preserve_index=False)),
             FAMILIES: store.write(GROUP, "families", pa.Table.from_pandas(families, preserve_index=False))}
    seconds = round(time.perf_counter() - t0, 2)
    accuracy: dict = {}
    if store.truth("persons").exists() and _truth_known(store):
        from family_pipeline.evaluation.families import families_section

        accuracy = families_section(store).get("families", {})
    duplicates = int(members.person_id.duplicated().sum())
    headless = int((~families.head_person_id.isin(members.person_id)).sum())
    context.log.info(f"{len(members)} residents in {len(families)} families in {seconds}s "
                     f"(as of {tables.stats['as_of']}); rules {tables.stats['members_by_rule']}")
    meta = {
        "dagster/row_count": len(members),
        "families": len(families),
        "persons_per_family": round(len(members) / max(len(families), 1), 3),
        "members_by_rule": dg.MetadataValue.json(tables.stats["members_by_rule"]),
        "unions": dg.MetadataValue.json(tables.stats["unions"]),
        "alive_not_resident": dg.MetadataValue.int(tables.stats["golden_alive_not_resident"]),
        "as_of": tables.stats["as_of"],
        "seconds": seconds,
        "table": dg.MetadataValue.path(str(paths[FAMILY_MEMBERS])),
    }
    if accuracy:
        meta.update({
            "truth_exact_family_rate": accuracy["exact_family_rate"],
            "truth_pairwise_precision": accuracy["pairwise"]["precision"],
            "truth_pairwise_recall": accuracy["pairwise"]["recall"],
            "truth_pairwise_f1": accuracy["pairwise"]["f1"],
            "truth_accuracy": dg.MetadataValue.json(accuracy),
        })
    yield dg.MaterializeResult(asset_key=FAMILY_MEMBERS, metadata=meta)
    yield dg.MaterializeResult(asset_key=FAMILIES, metadata={
        "dagster/row_count": len(families),
        "size_distribution": dg.MetadataValue.json(_counts(families.members.clip(upper=10).astype(str).str.replace("10", "10+"))),
        "family_types": dg.MetadataValue.json(_counts(families.family_type)),
        "settlement_types": dg.MetadataValue.json(_counts(families.settlement_type)),
        "families_by_region": dg.MetadataValue.json(_counts(families.region.astype("object").fillna("unknown"))),
        "table": dg.MetadataValue.path(str(paths[FAMILIES])),
    })
    yield dg.AssetCheckResult(check_name=ONE_FAMILY_CHECK, asset_key=FAMILY_MEMBERS,
                              passed=duplicates == 0 and headless == 0,
                              metadata={"persons_in_two_families": duplicates, "families_without_head": headless})


@dg.asset(
    key=FAMILY_FEATURES,
    group_name=GROUP,
    deps=[FAMILY_MEMBERS, FAMILIES, PERSONS, XREF, ANIMALS] + [registry_key(c) for c in _feature_registries()],
    kinds={"parquet"},
    owners=[OWNER],
    description=f"About 150 documented parameters of every family; each column's meaning, unit, dtype and "
                f"source registries are in seeds/{FEATURES_FILE}.",
    op_tags=step_tags(ON_THE_PATH, whole_country=True),
)
def family_features_asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    from family_pipeline.families.sources import reference_date

    store = lake.lake()
    t0 = time.perf_counter()
    dictionary = feature_dictionary()
    members = store.read(GROUP, "family_members", columns=["person_id", "family_id", "role"]).to_pandas()
    families = store.read(GROUP, "families", columns=["family_id", "head_person_id", "family_type", "region",
                                                      "settlement_type"]).to_pandas()
    persons = store.read("resolution", "persons", columns=["person_id", "sex", "birth_date"]).to_pandas()
    as_of = reference_date(store)
    path = store.table(GROUP, "family_features")
    families_n = write_family_features(store, path, members, families, persons, dictionary, catalog(), as_of)
    del members, families, persons
    seconds = round(time.perf_counter() - t0, 2)
    columns_n = len(dictionary.names)
    context.log.info(f"{columns_n} parameters for {families_n} families in {seconds}s")
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, f.dtype, description=f"{f.meaning} [{f.unit}]")
                                     for f in dictionary.features])
    summarized = store.read(GROUP, "family_features", columns=[
        "income_pc", "receives_asp", "large_family", "single_parent", "livestock_heads", "land_plots"])

    def column(name: str) -> np.ndarray:
        return summarized.column(name).to_numpy()

    summary = {
        "families": families_n,
        "income_pc_median": float(pd.Series(column("income_pc")).median()) if families_n else 0.0,
        "receives_asp": int(column("receives_asp").sum()),
        "large_families": int(column("large_family").sum()),
        "single_parent_families": int(column("single_parent").sum()),
        "with_livestock": int((column("livestock_heads") > 0).sum()),
        "with_land": int((column("land_plots") > 0).sum()),
    }
    return dg.MaterializeResult(metadata={
        "dagster/row_count": families_n,
        "dagster/column_schema": schema,
        "columns": columns_n,
        "parameters": columns_n - 1,
        "dictionary": dg.MetadataValue.path(f"seeds/{FEATURES_FILE}"),
        "dictionary_version": dictionary.version,
        "as_of": as_of.isoformat(),
        "summary": dg.MetadataValue.json(json.loads(json.dumps(summary))),
        "seconds": seconds,
        "table": dg.MetadataValue.path(str(path)),
    })
