"""Jobs: the whole family map, and registry ingestion alone."""

import dagster as dg

from family_pipeline.defs.quality import cross_check_keys

#: checks of a registry against resolved persons: they belong to runs that resolve persons
CROSS_REGISTRY_CHECKS = dg.AssetSelection.checks(*cross_check_keys())

family_map = dg.define_asset_job(
    "family_map",
    selection=dg.AssetSelection.all(),
    description="The whole digital family map: every registry and every stage downstream.",
)
ingest_registries = dg.define_asset_job(
    "ingest_registries",
    selection=dg.AssetSelection.groups("registries") - CROSS_REGISTRY_CHECKS,
    description="Read, map, quarantine and check every registry on its own.",
)
