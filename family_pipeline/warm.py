"""Imported by the executor's forkserver (family_pipeline.execution): the libraries every step
uses and the built definitions, so a forked step process starts warm."""

import great_expectations  # noqa: F401  (the registry checks)
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401

from family_pipeline.definitions import build

build().get_repository_def()
