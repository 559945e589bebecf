"""Imported by the executor's forkserver (family_pipeline.execution): the libraries every step
uses, the classes of the Dagster instance's storages and the resolved job, so a forked step
process starts warm.

A step process otherwise spends most of its start-up importing the instance's storage modules
(which the job's own imports do not pull in) and resolving the job from the definitions. Only
classes are loaded here: no storage is opened, so no connection is shared across the fork.

What it loaded is then frozen out of the garbage collector (``gc.freeze``, as Python's
documentation advises before forking): otherwise a step's first collections walk the server's
whole heap, and writing each object's GC header copies every page of it into the step process.
That was 0.27 of the 0.32 s a step spent planning before its first line ran (110 steps a run).
"""

import gc
import importlib
import os

import great_expectations  # noqa: F401  (the registry checks)
import pandas  # noqa: F401
import pyarrow.dataset  # (pyarrow.parquet imports it on the first read)
import pyarrow.parquet  # noqa: F401
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import ConfigurableClassData

from family_pipeline.definitions import build
from family_pipeline.instance_storage import head_revision

#: modules a step process imports while it opens the instance, whatever its storage
INSTANCE_MODULES = ("dagster._core.storage.event_log", "dagster._core.storage.runs",
                    "dagster._core.storage.schedules", "dagster._core.secrets.env_file", "upath", "upath.core")


def _instance_classes() -> None:
    for name in INSTANCE_MODULES:
        importlib.import_module(name)
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return
    for data in InstanceRef.from_dir(home):
        if isinstance(data, ConfigurableClassData):
            importlib.import_module(data.module_name)


_instance_classes()
head_revision()  # what the instance's databases are checked against: read once, not per step
build().resolve_all_job_defs()  # cached in the repository: the step processes find the jobs resolved
gc.collect()
gc.freeze()  # what the server loaded is never collected in the step processes (see the docstring)
