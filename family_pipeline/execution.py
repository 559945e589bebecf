"""How a run executes.

The project's executor runs every step in one process: 200 steps (91 registries, their checks,
the stages downstream) on 2 cores, and a step process of its own would import pandas, pyarrow
and GX and build the definitions again before its first row (see ../shared/STACK.md). The heavy
steps use both cores themselves (Arrow and DuckDB threads).

:func:`run_job` runs a job of the definitions, or a subset of its assets and checks, as one run —
in this process, or (``processes=N``) with the multiprocess executor, each step in a process
forked from a server that imported :mod:`family_pipeline.warm` once.
"""

from __future__ import annotations

import dagster as dg

#: the module the forkserver imports before it forks step processes
PRELOAD = "family_pipeline.warm"

#: Dagster's own in-process-or-multiprocess executor, defaulting to one process
EXECUTOR = dg.ExecutorDefinition(
    name="in_process_unless_configured",
    config_schema=dg.Field(dg.multi_or_in_process_executor.config_field.config_type, default_value={"in_process": {}}),
    requirements=dg.multi_or_in_process_executor._requirements_fn,  # noqa: SLF001  (the same requirements)
    executor_creation_fn=dg.multi_or_in_process_executor.executor_creation_fn,
    description="Every step in the run's process, unless run config selects `multiprocess`.",
)


#: which ready step starts first when every process of a run is busy (Dagster's
#: ``dagster/priority`` op tag, higher first, 0 untagged): the path from the persons to the
#: benefit assignments, the run's longest, goes before the audits beside it, and the warehouse
#: copies go last; the cross-registry checks, the longest step beside that path, go as soon as
#: they can
ON_THE_PATH, LONGEST_BESIDE, COPIES = 2, 1, -1


def priority(level: int) -> dict[str, str]:
    """The op tags of a step of this priority (for ``op_tags=``)."""
    return {"dagster/priority": str(level)}


def multiprocess_config(processes: int) -> dict:
    return {"execution": {"config": {"multiprocess": {
        "max_concurrent": processes, "start_method": {"forkserver": {"preload_modules": [PRELOAD]}}}}}}


def run_job(instance: dg.DagsterInstance, job_name: str = "family_map", *, asset_keys=None, check_keys=None,
            run_config: dict | None = None, tags: dict | None = None, processes: int = 1):
    """Execute ``job_name`` (or the given assets and checks of it) as one run on ``instance``;
    returns when the run ends, with its result (``.success``, ``.run_id``)."""
    subset = asset_keys is not None or check_keys is not None
    if processes <= 1:
        from family_pipeline.definitions import build

        job = build().resolve_job_def(job_name)
        if subset:
            job = job.get_subset(asset_selection=_keys(asset_keys), asset_check_selection=_keys(check_keys))
        return job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config, tags=tags)
    # execute_job needs a job it can rebuild in the step processes: ours is rebuilt from the module
    from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

    job = ReconstructableJob(ReconstructableRepository.for_module("family_pipeline.definitions", "defs"), job_name)
    if subset:
        job = job.get_subset(asset_selection=_keys(asset_keys), asset_check_selection=_keys(check_keys))
    config = {**(run_config or {}), **multiprocess_config(processes)}
    _start_forkserver()
    try:
        return dg.execute_job(job, instance, run_config=config, tags=tags)
    finally:
        # the forkserver outlives the run with the environment it started with; the next run
        # must get a server with the environment then (its data directory, its warehouse)
        _stop_forkserver()


#: what the multiprocess executor asks the forkserver to import (it puts its own module first)
FORKSERVER_PRELOAD = ["dagster._core.executor.multiprocess", PRELOAD]


def _start_forkserver() -> None:
    """Start the forkserver now, with the executor's preload: it imports GX, pandas and the
    definitions on the other core while this process creates the run (a planned event for each
    of 119 assets and 1,007 checks); the executor finds it running. It would otherwise start
    only when the first step does, after the run is created."""
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
    forkserver.ensure_running()  # spawns the server and returns; the imports happen there


def _stop_forkserver() -> None:
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # noqa: SLF001  (no public way to stop it)


def _keys(keys) -> set | None:
    """A selection as Dagster takes it (None: the checks of the selected assets)."""
    return None if keys is None else set(keys)
