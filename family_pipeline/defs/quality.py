"""Cross-registry checks (group ``quality``): each registry against the population register and
the resolved persons, run once resolution has materialized. Their outcomes become asset check
results on the registry's own asset, so the owner sees them in one place.
"""

import dagster as dg

from family_pipeline.catalog import RegistrySpec, catalog
from family_pipeline.defs.check_results import to_check_result
from family_pipeline.defs.registries import registry_key
from family_pipeline.defs.resolution import ANIMALS, ANOMALIES, PERSONS, XREF
from family_pipeline.defs.resources import LakeResource
from family_pipeline.quality import CROSS_CHECKS, write_flags
from family_pipeline.quality.cross import POPULATION_REGISTER
from family_pipeline.quality.report import write_report
from family_pipeline.quality.runner import MissingInput, run_cross_checks


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
                                 + ([ANIMALS, ANOMALIES] if n == "livestock" else []),
                                 # re-run when the registry or the persons it is compared with change
                                 automation_condition=dg.AutomationCondition.eager())
               for n in names],
    )
    def cross_checks(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.lake()
        try:
            outcomes = run_cross_checks(store, spec)
        except MissingInput as e:
            raise dg.Failure(str(e)) from e
        write_flags(store, spec.code, "cross", outcomes)
        report = str(write_report(store, spec, context.run.run_id, "cross", outcomes))
        for o in outcomes:
            yield to_check_result(o, key, report)

    return cross_checks


@dg.definitions
def quality() -> dg.Definitions:
    return dg.Definitions(asset_checks=[build_cross_checks(s) for s in catalog().registries])
