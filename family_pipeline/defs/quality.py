"""Cross-registry checks (group ``quality``): each registry against the population register and
the resolved persons, run once resolution has materialized. Their outcomes become asset check
results on the registry's own asset, so the owner sees them in one place.
"""

import functools

import dagster as dg
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from family_pipeline.catalog import RegistrySpec, catalog
from family_pipeline.defs.check_results import to_check_result
from family_pipeline.defs.registries import registry_key
from family_pipeline.defs.resolution import ANIMALS, ANOMALIES, PERSONS, XREF
from family_pipeline.defs.resources import LakeResource
from family_pipeline.ingestion.sources import read_manifest
from family_pipeline.lib.lake import Lake
from family_pipeline.quality import CROSS_CHECKS, write_flags
from family_pipeline.quality.cross import (
    POPULATION_REGISTER,
    Reference,
    after_death,
    duplicates,
    livestock,
    population_register,
)
from family_pipeline.quality.report import write_report


@functools.lru_cache(maxsize=2)
def _reference(persons_path: str, persons_mtime: float, register_path: str, register_mtime: float) -> Reference:
    persons = pd.read_parquet(persons_path, columns=["person_id", "iin", "iin_disputed", "last_name", "first_name",
                                                     "patronymic", "birth_date", "region", "death_date", "mentions"])
    register = pd.read_parquet(register_path, columns=["iin"]).iin if register_path else pd.Series([], dtype=object)
    return Reference(persons, register)


def reference(lake: Lake) -> Reference:
    persons = lake.table("resolution", "persons")
    register = lake.table("registries", POPULATION_REGISTER)
    reg = (str(register), register.stat().st_mtime) if register.exists() else ("", 0.0)
    return _reference(str(persons), persons.stat().st_mtime, *reg)


def _xref_of(lake: Lake, code: str) -> pd.DataFrame:
    table = pq.read_table(lake.table("resolution", "person_xref"), columns=["registry", "record_id", "group", "person_id"],
                          filters=[("registry", "=", code)])
    return table.filter(pc.equal(table["registry"], code)).to_pandas()


def cross_check_names(spec: RegistrySpec) -> list[str]:
    names = ["population_register", "after_death", "duplicates"] if spec.person_groups else ["duplicates"]
    return names + (["livestock"] if spec.has_animals else [])


def cross_check_keys() -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(registry_key(s.code), n) for s in catalog().registries for n in cross_check_names(s)]


def build_cross_checks(spec: RegistrySpec) -> dg.AssetChecksDefinition:
    key = registry_key(spec.code)
    names = cross_check_names(spec)

    @dg.multi_asset_check(
        name=f"{spec.code}_cross_registry_checks",
        specs=[dg.AssetCheckSpec(n, asset=key, description=CROSS_CHECKS[n],
                                 additional_deps=[PERSONS, XREF]
                                 + ([] if spec.code == POPULATION_REGISTER else [registry_key(POPULATION_REGISTER)])
                                 + ([ANIMALS, ANOMALIES] if n == "livestock" else []))
               for n in names],
    )
    def cross_checks(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.lake()
        clean = store.read("registries", spec.code).to_pandas()
        xref = _xref_of(store, spec.code)
        outcomes = []
        if spec.person_groups:
            ref = reference(store)
            outcomes += [population_register(spec, clean, xref, ref),
                         after_death(spec, clean, xref, ref, read_manifest(spec, store).get("extracted_at"))]
        outcomes.append(duplicates(spec, clean, xref))
        if spec.has_animals:
            if not store.table("resolution", "livestock_anomalies").exists():
                raise dg.Failure(f"the livestock check of {spec.code} needs resolution/animal_records and "
                                 "resolution/livestock_anomalies: materialize them in the same run")
            linked = pd.read_parquet(store.table("resolution", "animal_records"), columns=["registry", "record_id", "tag", "tag_norm", "animal_key"],
                                     filters=[("registry", "=", spec.code)])
            anomalies = pd.read_parquet(store.table("resolution", "livestock_anomalies"), columns=["animal_key", "kind"])
            outcomes.append(livestock(spec, linked, anomalies))
        write_flags(store, spec.code, "cross", outcomes)
        report = str(write_report(store, spec, context.run.run_id, "cross", outcomes))
        for o in outcomes:
            yield to_check_result(o, key, report)

    return cross_checks


@dg.definitions
def quality() -> dg.Definitions:
    return dg.Definitions(asset_checks=[build_cross_checks(s) for s in catalog().registries])
