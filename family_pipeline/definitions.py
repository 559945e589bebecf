"""The one wiring point: load the ``defs`` folder and apply cross-cutting policy."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from family_pipeline.defs.automation import DOWNSTREAM, DOWNSTREAM_CONDITION


def follow_dependencies(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Policy: an asset downstream of the registries is materialized when its dependencies update
    (the registries themselves are driven by the schedules and the landing-zone sensor)."""
    return spec.replace_attributes(automation_condition=DOWNSTREAM_CONDITION)


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(project_root=Path(__file__).resolve().parent.parent)
    merged = dg.Definitions.merge(
        loaded,
        # 80+ small registry steps on 2 cores: one process beats a process per step
        # (each would import pandas, pyarrow and GX again; see ../shared/STACK.md).
        dg.Definitions(executor=dg.in_process_executor),
    )
    with warnings.catch_warnings():
        # map_resolved_asset_specs is marked preview in 1.13; it is the documented way to apply
        # one policy to many assets and test_automation pins its effect.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return merged.map_resolved_asset_specs(func=follow_dependencies, selection=DOWNSTREAM)
