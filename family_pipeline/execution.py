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

#: how long Dagster's multiprocess executor waits on each running step's event queue in a round
#: (its ``TICK``, 20 ms). It takes one event from a step per round and waits on the others: a
#: step that ends with thirty events (its checks' results) was seen done 0.2-0.3 s after it
#: was, with a process idle meanwhile — 20 of the 43 s of the registries stage at 1M persons.
#: So the wait is short while events come, and doubles up to the executor's own 20 ms while none
#: do: a constant 2 ms kept the run's process at a quarter of a core through a long step, a core
#: the steps' own threads would have used
EVENT_POLL_SECONDS, QUIET_POLL_SECONDS = 0.002, 0.02


def _poll_for_event(process, event_queue):
    """Dagster's poll of a step's event queue, with the wait adapted to the events' pace."""
    from dagster._core.executor import child_process_executor

    # one wait for every step's queue: while one step sends its events, a quiet step beside it
    # is waited on for 2-4 ms a round, not 20
    event = _DAGSTER_POLL(process, event_queue)
    child_process_executor.TICK = (EVENT_POLL_SECONDS if event is not None
                                   else min(child_process_executor.TICK * 2, QUIET_POLL_SECONDS))
    return event


_DAGSTER_POLL = None


def install_event_poll() -> None:
    """Put :func:`_poll_for_event` in place of Dagster's, with the short wait (both are read at
    each poll, in the process that runs the steps)."""
    global _DAGSTER_POLL
    from dagster._core.executor import child_process_executor

    if _DAGSTER_POLL is None:
        _DAGSTER_POLL = child_process_executor._poll_for_event  # noqa: SLF001
        child_process_executor._poll_for_event = _poll_for_event  # noqa: SLF001
    child_process_executor.TICK = EVENT_POLL_SECONDS


def _create_executor(init_context):
    install_event_poll()
    return dg.multi_or_in_process_executor.executor_creation_fn(init_context)


#: Dagster's own in-process-or-multiprocess executor, defaulting to one process
EXECUTOR = dg.ExecutorDefinition(
    name="in_process_unless_configured",
    config_schema=dg.Field(dg.multi_or_in_process_executor.config_field.config_type, default_value={"in_process": {}}),
    requirements=dg.multi_or_in_process_executor._requirements_fn,  # noqa: SLF001  (the same requirements)
    executor_creation_fn=_create_executor,
    description="Every step in the run's process, unless run config selects `multiprocess`.",
)


#: which ready step starts first when every process of a run is busy (Dagster's
#: ``dagster/priority`` op tag, higher first, 0 untagged): the path from the persons to the
#: benefit assignments, the run's longest, goes before the audits beside it, and the warehouse
#: copies go last; the cross-registry checks, the longest step beside that path, go as soon as
#: they can
ON_THE_PATH, LONGEST_BESIDE, COPIES = 2, 1, -1


def step_tags(level: int, *, whole_country: bool = False) -> dict[str, str]:
    """The op tags of a step (for ``op_tags=``): its priority ``level`` and, if
    ``whole_country``, that it holds a table of the whole country in memory (:data:`MEMORY_TAG`)."""
    return {"dagster/priority": str(level), **({MEMORY_TAG: WHOLE_COUNTRY} if whole_country else {})}


#: op tag of the steps that hold tables of the whole country in memory at once (person
#: resolution, the livestock, the cross-registry checks, families and their features, the housing audit and the
#: benefit assignments): about 3 GB per million persons each. Run with several processes, at most
#: ``whole_country_steps`` of them run at once (the executor's tag concurrency limit), so two of
#: them never share a machine too small for both while the small steps still run beside them
MEMORY_TAG, WHOLE_COUNTRY = "family_pipeline/memory", "whole-country"
#: a whole-country step's peak memory per byte of the registries' exports on disk (landing),
#: measured on the synthetic country's largest such step: 1M persons 4.8 GB (resolution) from
#: 1.22 GB of exports (3.9 times), 5M 13.2 GB (the cross-registry checks) from 6.13 GB (2.2 times)
PEAK_PER_LANDING_BYTE = 3.0
#: share of the machine's memory the whole-country steps running at once may plan to use
MEMORY_SHARE = 0.75


def whole_country_steps(data_dir, processes: int, memory_bytes: int | None = None) -> int:
    """How many whole-country steps may run at once with ``processes`` processes: as many as fit
    in :data:`MEMORY_SHARE` of the machine's memory by their estimated peak (from the size of
    the exports under ``data_dir/landing``), at least one."""
    import os
    from pathlib import Path

    from family_pipeline.lib.lake import Lake

    if processes <= 1:
        return 1
    landing = Lake(Path(data_dir)).landing
    size = sum(f.stat().st_size for f in landing.rglob("*") if f.is_file()) if landing.is_dir() else 0
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    peak = max(size * PEAK_PER_LANDING_BYTE, 1.0)
    return max(1, min(processes, int(memory_bytes * MEMORY_SHARE // peak)))


def multiprocess_config(processes: int, whole_country_at_once: int | None = None) -> dict:
    """Run config of the multiprocess executor: ``processes`` steps at once, of which at most
    ``whole_country_at_once`` (default: any) hold the whole country."""
    config: dict = {"max_concurrent": processes, "start_method": {"forkserver": {"preload_modules": [PRELOAD]}}}
    if whole_country_at_once is not None and whole_country_at_once < processes:
        config["tag_concurrency_limits"] = [{"key": MEMORY_TAG, "value": WHOLE_COUNTRY,
                                             "limit": max(1, whole_country_at_once)}]
    return {"execution": {"config": {"multiprocess": config}}}


def run_job(instance: dg.DagsterInstance, job_name: str = "family_map", *, asset_keys=None, check_keys=None,
            run_config: dict | None = None, tags: dict | None = None, processes: int = 1,
            whole_country_at_once: int | None = None):
    """Execute ``job_name`` (or the given assets and checks of it) as one run on ``instance``;
    returns when the run ends, with its result (``.success``, ``.run_id``). With several
    ``processes``, at most ``whole_country_at_once`` whole-country steps run at once (default: as
    many as :func:`whole_country_steps` finds room for with the run's data)."""
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
    if whole_country_at_once is None:
        from family_pipeline.lib.lake import default_data_dir

        whole_country_at_once = whole_country_steps(default_data_dir(), processes)
    config = {**(run_config or {}), **multiprocess_config(processes, whole_country_at_once)}
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
