"""The one wiring point: load the ``defs`` folder and apply cross-cutting policy."""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import dagster as dg

from family_pipeline.defs.automation import DOWNSTREAM, DOWNSTREAM_CONDITION


def follow_dependencies(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Policy: an asset downstream of the registries is materialized when its dependencies update
    (the registries themselves are driven by the schedules and the landing-zone sensor)."""
    return spec.replace_attributes(automation_condition=DOWNSTREAM_CONDITION)


def build() -> dg.Definitions:
    """The project's definitions, built once per process for the same ``FAMILY_PIPELINE_*``
    environment (resources read it when they are built), so a step process forked from a warm
    server finds them built (family_pipeline.execution)."""
    return _build(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("FAMILY_PIPELINE_"))))


@functools.cache
def _build(environment: tuple) -> dg.Definitions:
    from family_pipeline.execution import EXECUTOR

    loaded = dg.load_from_defs_folder(project_root=Path(__file__).resolve().parent.parent)
    merged = dg.Definitions.merge(loaded, dg.Definitions(executor=EXECUTOR))
    with warnings.catch_warnings():
        # map_resolved_asset_specs is marked preview in 1.13; it is the documented way to apply
        # one policy to many assets and test_automation pins its effect.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return merged.map_resolved_asset_specs(func=follow_dependencies, selection=DOWNSTREAM)


@dg.definitions
def defs() -> dg.Definitions:
    return build()
