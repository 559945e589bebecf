"""Resources shared by every asset group: where the data lives and where registries come from.

Resources read the environment when they are built, never at import time.
"""


from pathlib import Path

import dagster as dg

from family_pipeline.lib.lake import Lake, default_data_dir

#: the team that owns the pipeline's own assets (registry assets are owned by their agencies)
DATA_ENGINEERING = "team:data-engineering"


class LakeResource(dg.ConfigurableResource):
    """The data directory (``$FAMILY_PIPELINE_DATA`` or ``./data`` when ``root`` is empty)."""

    root: str = ""

    def lake(self) -> Lake:
        return Lake(Path(self.root).resolve() if self.root else default_data_dir())


class RegistrySourceResource(dg.ConfigurableResource):
    """Where registries are read from: the landing zone of the lake by default; a registry whose
    catalog entry says ``location: database`` is read from ``database_url`` (any SQLAlchemy URL,
    ``$FAMILY_PIPELINE_REGISTRY_DB_URL``)."""

    database_url: str = ""


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "lake": LakeResource(root=dg.EnvVar("FAMILY_PIPELINE_DATA").get_value("") or ""),
            "registry_source": RegistrySourceResource(
                database_url=dg.EnvVar("FAMILY_PIPELINE_REGISTRY_DB_URL").get_value("") or ""
            ),
        }
    )
