"""Running one registry's cross checks against a lake: what every registry shares (the
resolved persons, the population register, the crosswalk, the animals' tag disputes) is read once per
process and lake state and kept while the files are unchanged — a run checks some ninety
registries in one process (see ``definitions.py``), so a national crosswalk is read once, not
ninety times.

:func:`check_registries` checks several registries, ``processes`` at a time: the reference is
built in the step's process, and each registry is checked in a process forked from it, which
shares the reference's memory (copy-on-write) instead of reading it again. Outcomes come back
in the registries' order, so the results do not depend on which process finished first."""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from family_pipeline.catalog import RegistrySpec, catalog
from family_pipeline.ingestion.sources import read_manifest
from family_pipeline.lib.lake import Lake
from family_pipeline.lib.parquet_columns import ParquetColumns
from family_pipeline.quality.checks import CheckOutcome, write_flags
from family_pipeline.quality.cross import (
    POPULATION_REGISTER,
    Reference,
    RegionTally,
    after_death,
    align_persons,
    duplicate_candidates,
    duplicates,
    fact_columns,
    join_parts,
    livestock,
    population_register,
    region_follows,
    region_pairs,
    row_hashes,
    tag_disputes,
)
from family_pipeline.resolution.blocking import release_free_memory

__all__ = ["CHECK_ROWS", "PROCESSES", "MissingInput", "animal_records", "check_registries", "reference", "release_reference",
           "run_cross_checks"]


#: a crosswalk up to this many references is held in memory and cut by registry once; a larger
#: one (a national crosswalk holds some 270M) is read registry by registry (see Reference.xref_of)
XREF_IN_MEMORY_ROWS = 60_000_000
#: rows of a registry checked against the population register at a time (see run_cross_checks)
CHECK_ROWS = 1_000_000
#: registries checked at once (processes forked from the step's, which built the reference)
PROCESSES = min(2, os.cpu_count() or 1)


class MissingInput(RuntimeError):
    """A table the checks need has not been materialized."""


@functools.lru_cache(maxsize=1)
def _reference(persons_path: str, persons_mtime: float, register_path: str, register_mtime: float,
               xref_path: str, xref_mtime: float) -> Reference:
    persons = _read_compact(persons_path, ["person_id", "iin", "iin_disputed", "last_name", "first_name", "patronymic",
                                           "birth_date", "region", "death_date", "mentions"])
    register = (_read_compact(register_path, ["iin", "iin_valid", "last_name", "first_name", "patronymic", "birth_date"])
                if register_path else pd.DataFrame({"iin": pd.Series([], dtype=object)}))
    xref = None
    if xref_path and pq.ParquetFile(xref_path).metadata.num_rows > XREF_IN_MEMORY_ROWS:
        xref = xref_path  # read registry by registry
    elif xref_path:
        xref = pq.read_table(xref_path, columns=["registry", "record_id", "group", "person_id"],
                             read_dictionary=["registry", "group"])
    return Reference(persons, register["iin"], register if register_path else None, xref)


def _compact_frame(table: pa.Table) -> pd.DataFrame:
    """A table as pandas with no Python object per date (datetime64, not ``datetime.date``);
    dictionaries become categories, and text is pandas' own Arrow-backed strings."""
    return table.to_pandas(date_as_object=False)


#: text columns of the persons and the register read as categories (a few hundred thousand
#: distinct names among millions of rows)
_CATEGORIES = ("last_name", "first_name", "patronymic", "region")


def _read_compact(path: str, columns: list[str]) -> pd.DataFrame:
    """Columns of a national table with no Python object per row: names and regions as
    categories (one code a row; as text, the reference's names were hashed row by row to be
    keyed), dates as datetime64, the IINs as Arrow text."""
    return _compact_frame(pq.read_table(path, columns=columns, read_dictionary=[c for c in columns if c in _CATEGORIES]))


def _stamp(path: Path) -> tuple[str, float]:
    return (str(path), path.stat().st_mtime) if path.exists() else ("", 0.0)


def reference(lake: Lake) -> Reference:
    """The reference every registry's cross checks share, read once per process and lake state
    (a run checks 90 registries in one process: see definitions.py)."""
    ref = _reference(*_stamp(lake.table("resolution", "persons")),
                     *_stamp(lake.table("registries", POPULATION_REGISTER)),
                     *_stamp(lake.table("resolution", "person_xref")))
    if not getattr(ref, "regions_voted", False):
        ref.region = _region_votes(lake, ref)
        ref.regions_voted = True
        ref.warm()
        # the tables it was built from are gone: their pages go back to the kernel before the
        # checking processes fork, instead of staying in this process's heap for the whole step
        release_free_memory()
    return ref


def _region_votes(lake: Lake, ref: Reference) -> pd.Series:
    """person -> the region their records agree on, counted over every region any registry gives
    a resolved person, registry by registry (only the region columns are read)."""
    tally = RegionTally(ref.golden["region"])
    for spec in catalog().registries:
        columns = [c.name for c in spec.columns if c.type == "region"]
        if not columns or not spec.person_groups or not lake.table("registries", spec.code).exists():
            continue
        clean = lake.read("registries", spec.code, columns=[spec.record_id, *columns]).to_pandas()
        tally.add(region_pairs(spec, clean, ref.xref_of(spec.code), ref))
    return tally.votes()


@functools.lru_cache(maxsize=1)
def _tag_disputes(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Whether each animal record's tag is disputed (see :func:`tag_disputes`, which judges an
    animal's records across registries) and each record's registry, as codes into the list of
    registries, in the file's order: all the checks keep of every registry's animal records,
    read once per lake state (the records themselves, 9M at 5M persons, took 1.5 GB)."""
    table = pq.read_table(path, columns=["registry", "tag_norm", "animal_key"], read_dictionary=["registry"])
    registry = table.column("registry").combine_chunks()
    codes = registry.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    disputed = tag_disputes(table.drop_columns(["registry"]).to_pandas()).to_numpy(dtype=bool)
    return disputed, codes, [str(v) for v in registry.dictionary.to_pylist()]


def animal_records(lake: Lake, registry: str) -> pd.DataFrame:
    """One registry's linked animal records with their tag disputes (the registry's own rows of
    resolution's animal records, which are read with a filter on the registry)."""
    path = lake.table("resolution", "animal_records")
    disputed, codes, names = _tag_disputes(*_stamp(path))
    mine = pq.read_table(path, columns=["registry", "record_id", "tag", "tag_norm", "animal_key"],
                         filters=[("registry", "=", registry)]).to_pandas()
    # a filtered read keeps the file's order, so the registry's rows line up with its flags
    mine["disputed"] = disputed[codes == names.index(registry)] if registry in names else np.zeros(0, bool)
    return mine


def release_reference() -> None:
    """Forget the shared reference and animal records (their memory goes back to the process)."""
    _reference.cache_clear()
    _tag_disputes.cache_clear()


def run_cross_checks(store: Lake, spec: RegistrySpec) -> list[CheckOutcome]:
    """Every cross check of one registry (plain logic: the Dagster step and benchmarks call it).

    A registry is read a part of :data:`CHECK_ROWS` rows at a time, so a worker holds a bounded
    part of a national registry (a whole one took 4.3 GB beside the shared reference at 5M
    persons). What is judged on the whole registry reads only what it needs: who each row's
    persons are and which person a region column follows, from the record ids and region
    columns; the duplicates from a hash of each row's facts and persons, made part by part,
    and then only the rows whose hash another row shares (comparing every row's facts at once
    peaked at 0.9 GB over the rest for the population register at 5M)."""
    ref = reference(store)
    path = store.table("registries", spec.code)
    regions = [c.name for c in spec.columns if c.type == "region"]
    whole = _read(path, [spec.record_id, *regions])
    # who each row's references are, looked up once for all of the registry's checks
    persons = align_persons(spec, whole, ref.xref_of(spec.code))
    follows = region_follows(spec, whole, persons, ref)
    rows = len(whole)
    del whole
    outcomes = []
    extracted_at = read_manifest(spec, store).get("extracted_at") if spec.person_groups else None
    compared = bool(fact_columns(spec) or spec.person_groups)  # else no record is another's copy
    register, death, hashes = [], [], [np.empty(0, np.uint64)]
    for clean in _parts(path, CHECK_ROWS):
        xref = persons.iloc[clean.index.start:clean.index.stop]
        if compared:
            hashes.append(row_hashes(spec, clean, xref))
        if spec.person_groups:
            register.append(population_register(spec, clean, xref, ref, follows))
            death.append(after_death(spec, clean, xref, ref, extracted_at))
    if spec.person_groups:
        outcomes += [join_parts(register), join_parts(death)]
    candidates = duplicate_candidates(np.concatenate(hashes))
    del hashes
    copies = _rows(path, [spec.record_id, *fact_columns(spec)], candidates)
    outcomes.append(duplicates(spec, copies, persons.iloc[candidates].set_axis(copies.index), rows))
    if spec.has_animals:
        if not store.table("resolution", "livestock_anomalies").exists():
            raise MissingInput(f"the livestock check of {spec.code} needs resolution/animal_records and "
                               "resolution/livestock_anomalies: materialize them in the same run")
        anomalies = pd.read_parquet(store.table("resolution", "livestock_anomalies"), columns=["animal_key", "kind"])
        outcomes.append(livestock(spec, animal_records(store, spec.code), anomalies))
    return outcomes


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    """Some columns of a whole registry, its rows numbered from 0 (as :func:`_parts` numbers
    them), dates as datetime64 (see :func:`_compact_frame`)."""
    frame = _compact_frame(pq.read_table(path, columns=columns))
    frame.index = pd.RangeIndex(len(frame))
    return frame


def _rows(path: Path, columns: list[str], rows: np.ndarray) -> pd.DataFrame:
    """Some columns of the registry's rows ``rows`` (ascending), indexed by their place in it,
    read a part at a time."""
    taken = [table.take(pa.array(rows[(rows >= start) & (rows < start + table.num_rows)] - start))
             for start, table in ParquetColumns(path).slices(list(dict.fromkeys(columns)), CHECK_ROWS)]
    frame = pa.concat_tables(taken).to_pandas()
    frame.index = pd.Index(rows)
    return frame


def _parts(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """A registry ``rows`` at a time, each part's rows numbered by their place in the registry
    (an empty registry is one empty part)."""
    registry = ParquetColumns(path)
    for start, table in registry.slices(registry.column_names, rows):
        frame = table.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        yield frame


def check_registries(store: Lake, specs: Sequence[RegistrySpec], run_id: str,
                     processes: int = PROCESSES) -> Iterator[tuple[RegistrySpec, list[CheckOutcome], str]]:
    """(registry, its cross-check outcomes, its report) for each of ``specs`` in their order, the
    flags and the report written; ``processes`` registries at a time (see the module docstring)."""
    specs = list(specs)
    if not specs:
        return
    reference(store)  # built here once: forked processes inherit it
    if any(s.has_animals for s in specs) and store.table("resolution", "animal_records").exists():
        _tag_disputes(*_stamp(store.table("resolution", "animal_records")))
    if processes <= 1 or len(specs) == 1 or "fork" not in multiprocessing.get_all_start_methods():
        for spec in specs:
            yield spec, *_check_registry(store, run_id, spec)
        return
    # the reference is out of the workers' collections: they never copy its pages to walk it
    thawed = not gc.get_freeze_count()  # a step process forked from a warm server starts frozen
    gc.freeze()
    pool, finished = worker_pool(processes), False
    try:
        results = pool.imap(functools.partial(_check_registry, store, run_id), specs)
        for spec, (outcomes, report) in zip(specs, results):
            yield spec, outcomes, report
        pool.close()  # every registry is checked: the workers leave as the queue tells them to
        finished = True
    finally:
        if not finished:
            pool.terminate()
        pool.join()
        if thawed:
            gc.unfreeze()


def worker_pool(processes: int):
    """A pool of processes forked from this one, whose workers die on SIGTERM. A step process
    has Dagster's interrupt handler on SIGTERM, and a worker that inherits it outlives
    ``Pool.terminate``: blocked on the pool's queue for ever, it hangs the step (seen once at 1M,
    when the pool was left by terminating it). The pool is closed and joined when its work is
    done, and terminated only when it is not.

    The workers are forked with SIGTERM blocked and unblock it once their handler is the
    default: a SIGTERM that reaches a worker before its initializer has run (``terminate`` right
    after the pool starts) waits for it instead of going to the inherited handler, which would
    swallow it and leave the worker blocked on the queue (seen in the test suite)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        return multiprocessing.get_context("fork").Pool(processes, initializer=_default_signals)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # a pending SIGTERM ends it now


def _check_registry(store: Lake, run_id: str, spec: RegistrySpec) -> tuple[list[CheckOutcome], str]:
    from family_pipeline.quality.report import write_report

    outcomes = run_cross_checks(store, spec)
    write_flags(store, spec.code, "cross", outcomes)
    return outcomes, str(write_report(store, spec, run_id, "cross", outcomes))
