"""Entity resolution: person mentions linked into persons, animal records into animals.

Public, Dagster-free API: :func:`link` (any person records, any column names) and the pieces it
is made of (blocking, comparisons, the Fellegi-Sunter model, clustering).
"""

from family_pipeline.resolution.blocking import BlockingPass
from family_pipeline.resolution.linker import COLUMNS, DEFAULT_PASSES, LinkResult, link
from family_pipeline.resolution.model import FellegiSunter

__all__ = ["COLUMNS", "DEFAULT_PASSES", "BlockingPass", "FellegiSunter", "LinkResult", "link"]
