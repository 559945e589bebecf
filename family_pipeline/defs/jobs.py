"""Jobs: the whole family map, and registry ingestion alone."""

import dagster as dg

family_map = dg.define_asset_job(
    "family_map",
    selection=dg.AssetSelection.all(),
    description="The whole digital family map: every registry and every stage downstream.",
)
ingest_registries = dg.define_asset_job(
    "ingest_registries",
    selection=dg.AssetSelection.groups("registries"),
    description="Read, map and quarantine every registry.",
)
