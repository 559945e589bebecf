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
from family_pipeline.execution import LONGEST_BESIDE, step_tags
from family_pipeline.quality import CROSS_CHECKS
from family_pipeline.quality.cross import POPULATION_REGISTER
from family_pipeline.quality.runner import MissingInput, check_registries, release_reference


def cross_check_names(spec: RegistrySpec) -> list[str]:
    names = ["population_register", "after_death", "duplicates"] if spec.person_groups else ["duplicates"]
    return names + (["livestock"] if spec.has_animals else [])


def cross_check_keys() -> list[dg.AssetCheckKey]:
    return [dg.AssetCheckKey(registry_key(s.code), n) for s in catalog().registries for n in cross_check_names(s)]


def _specs(spec: RegistrySpec) -> list[dg.AssetCheckSpec]:
    key = registry_key(spec.code)
    return [dg.AssetCheckSpec(n, asset=key, description=CROSS_CHECKS[n],
                              additional_deps=[PERSONS, XREF]
                              + ([] if spec.code == POPULATION_REGISTER else [registry_key(POPULATION_REGISTER)])
                              + ([ANIMALS, ANOMALIES] if n == "livestock" else []),
                              # re-run when the registry or the persons it is compared with change
                              automation_condition=dg.AutomationCondition.eager())
            for n in cross_check_names(spec)]


def build_cross_checks(specs: list[RegistrySpec] | tuple[RegistrySpec, ...]) -> dg.AssetChecksDefinition:
    """Every registry's cross checks as one step that runs the selected ones registry by
    registry: what they share (the resolved persons, the register, the crosswalk) is read once
    for all of them, and a registry's rows are in memory only while it is checked (two registries
    at a time, in processes forked from the step's: see quality.runner). A step per registry
    would read that reference again in each step process."""

    @dg.multi_asset_check(name="cross_registry_checks", specs=[s for spec in specs for s in _specs(spec)],
                          can_subset=True, op_tags=step_tags(LONGEST_BESIDE, whole_country=True))
    def cross_checks(context: dg.AssetCheckExecutionContext, lake: LakeResource):
        store = lake.lake()
        selected = context.selected_asset_check_keys
        wanted = {spec.code: [n for n in cross_check_names(spec) if dg.AssetCheckKey(registry_key(spec.code), n) in selected]
                  for spec in specs}
        try:
            for spec, outcomes, report in check_registries(store, [s for s in specs if wanted[s.code]],
                                                           context.run.run_id):
                for o in outcomes:
                    if o.check in wanted[spec.code]:
                        yield to_check_result(o, registry_key(spec.code), report)
        except MissingInput as e:
            raise dg.Failure(str(e)) from e
        finally:
            release_reference()  # the steps after this one get the memory back

    return cross_checks


@dg.definitions
def quality() -> dg.Definitions:
    return dg.Definitions(asset_checks=[build_cross_checks(catalog().registries)])
