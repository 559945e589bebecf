"""The registry catalog and the reference data in ``seeds/``, as typed objects."""

from family_pipeline.catalog.load import (
    CatalogError,
    catalog,
    default_seeds_dir,
    load_catalog,
)
from family_pipeline.catalog.model import (
    CADENCE_DAYS,
    Catalog,
    ColumnSpec,
    MoneyYear,
    Region,
    RegistrySpec,
    SourceSpec,
    SynthSpec,
)

__all__ = [
    "CADENCE_DAYS",
    "Catalog",
    "CatalogError",
    "ColumnSpec",
    "MoneyYear",
    "Region",
    "RegistrySpec",
    "SourceSpec",
    "SynthSpec",
    "catalog",
    "default_seeds_dir",
    "load_catalog",
]
