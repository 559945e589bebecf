"""Data quality: GX expectation suites from the catalog, cross-registry checks, owner reports.

Plain logic, no Dagster: ``registry_checks`` (one registry alone, GX 1.x), ``cross`` (against the
population register and the resolved persons), ``report`` (static HTML). The Dagster side
(``defs/registries.py``, ``defs/quality.py``) turns outcomes into asset check results.
"""

from family_pipeline.quality.checks import (
    CHECKS,
    CROSS_CHECKS,
    CheckOutcome,
    read_flags,
    write_flags,
)
from family_pipeline.quality.expectations import build_suite, registry_checks

__all__ = ["CHECKS", "CROSS_CHECKS", "CheckOutcome", "build_suite", "read_flags", "registry_checks", "write_flags"]
