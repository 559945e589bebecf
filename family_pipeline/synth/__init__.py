"""The synthetic country: a population with its ground truth, exported registry by registry.

    generate_country(out_dir, persons=100_000, seed=42)

writes ``out_dir/landing`` (every registry of the catalog, as its agency exports it) and
``out_dir/truth`` (who is who, which family, latent welfare, every injected defect).

A big country is generated in shards of families (``shards.py``), two at a time in worker
processes: each shard writes its rows of every registry as a part file beside the export
(``landing/<code>/<stem>.part0001.<ext>``; database registries are appended to their table) and
its truth as part tables, which are then appended row group by row group to
``truth/<table>.parquet``. The manifest lists the parts and their row counts. Memory is bounded
by the shard size; the result does not depend on how the shards were scheduled.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from family_pipeline.catalog import Catalog, default_seeds_dir
from family_pipeline.catalog import catalog as repo_catalog
from family_pipeline.lib.lake import Lake, write_parquet
from family_pipeline.synth.defects import DEFAULT_RATES, DefectInjector
from family_pipeline.synth.economy import (
    add_person_attributes,
    build_holdings,
    build_housing_queue,
    build_payments,
    build_welfare,
    employer_count,
    make_employers,
)
from family_pipeline.synth.exports import assign_record_ids, build_export
from family_pipeline.synth.names import NameBank
from family_pipeline.synth.population import build_population, build_settlements
from family_pipeline.synth.random import Streams
from family_pipeline.synth.shards import Shard, global_person, globalize, plan_shards, shard_persons
from family_pipeline.synth.writers import append_database_part, part_file_name, write_export

__all__ = ["DEFAULT_SNAPSHOT", "SynthSummary", "generate_country"]

DEFAULT_SNAPSHOT = dt.date(2026, 11, 1)


@dataclass(frozen=True)
class SynthSummary:
    out: Path
    persons: int
    families: int
    registries: int
    rows: int
    defects: int
    seconds: float

    def as_dict(self) -> dict:
        return {**self.__dict__, "out": str(self.out)}


def _progress(items, enabled: bool, desc: str, unit: str = "registry"):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, file=sys.stderr)


def generate_country(out: Path | str, persons: int = 100_000, seed: int = 42, *,
                     defect_scale: float = 1.0, snapshot: dt.date = DEFAULT_SNAPSHOT,
                     catalog: Catalog | None = None, seeds_dir: Path | None = None,
                     registries: list[str] | None = None, progress: bool | None = None,
                     shard_size: int | None = None, workers: int | None = None) -> SynthSummary:
    """Generate a country of ``persons`` living persons (plus the recently deceased).

    ``shard_size``: persons per shard (default ``shards.SHARD_PERSONS`` or
    ``$FAMILY_PIPELINE_SYNTH_SHARD_PERSONS``); ``workers``: shard processes at once (default:
    up to two). Neither changes a single-shard country; ``workers`` never changes any country."""
    t0 = time.perf_counter()
    cat = catalog or repo_catalog()
    lake = Lake(Path(out).resolve())
    show = sys.stderr.isatty() if progress is None else progress
    shards = plan_shards(persons, seed, shard_persons(shard_size), snapshot)
    specs = [s for s in cat.registries if registries is None or s.code in registries]
    lake.landing.mkdir(parents=True, exist_ok=True)
    db = lake.landing / "registry_db.sqlite"
    if db.exists():
        db.unlink()
    for spec in specs:  # parts of an earlier, bigger country in the same place
        folder = lake.landing_dir(spec.code)
        stem, suffix = Path(spec.file_name).stem, Path(spec.file_name).suffix
        for old in folder.glob(f"{stem}.part*{suffix}") if folder.exists() else ():
            old.unlink()
    job = _Job(root=lake.root, seed=seed, snapshot=snapshot, defect_scale=defect_scale,
               catalog=catalog, seeds_dir=seeds_dir, registries=registries, work=lake.root / ".synth-shards")

    if len(shards) == 1:
        results = [_run_shard(job, shards[0], progress=show)]
    else:
        streams = Streams(seed)
        names = NameBank.load(seeds_dir or default_seeds_dir())
        settlements = build_settlements(cat, persons, names, streams)
        everyone = sum(sh.persons + sh.deceased for sh in shards)
        employers = make_employers(streams.get("employers"), employer_count(everyone), snapshot)
        job = _Job(**{**job.__dict__, "settlements": settlements, "employers": employers})
        if job.work.exists():
            shutil.rmtree(job.work)
        results = _run_shards(job, shards, specs, lake, workers, show)
        write_parquet(lake.truth("settlements"), pa.Table.from_pandas(settlements, preserve_index=False))
        write_parquet(lake.truth("employers"), pa.Table.from_pandas(employers[0], preserve_index=False))
        for spec in specs:
            _write_manifest(spec, lake, [r["registries"][spec.code] for r in results])
        shutil.rmtree(job.work, ignore_errors=True)

    (lake.landing / "snapshot.json").write_text(json.dumps({"as_of": snapshot.isoformat()}) + "\n", encoding="utf-8")
    total_rows = sum(r["rows"] for r in results)
    summary = SynthSummary(lake.root, persons, sum(r["families"] for r in results), len(specs), total_rows,
                           sum(r["defects"] for r in results), round(time.perf_counter() - t0, 2))
    (lake.truth_dir / "country.json").write_text(json.dumps({
        "seed": seed, "persons": persons, "snapshot": snapshot.isoformat(), "defect_scale": defect_scale,
        "families": summary.families, "registries": summary.registries, "rows": total_rows,
        "defects": summary.defects,
    }, indent=2) + "\n", encoding="utf-8")
    return summary


@dataclass(frozen=True)
class _Job:
    """What every shard needs (pickled to the shard processes)."""
    root: Path
    seed: int
    snapshot: dt.date
    defect_scale: float
    catalog: Catalog | None
    seeds_dir: Path | None
    registries: list[str] | None
    work: Path
    settlements: pd.DataFrame | None = None
    employers: tuple[pd.DataFrame, object] | None = None


def _run_shards(job: _Job, shards: list[Shard], specs, lake: Lake, workers: int | None, show: bool) -> list[dict]:
    """Run the shards (in worker processes) and take their results in shard order; a database
    registry's later parts are appended as soon as the shards before them are in."""
    n = max(1, min(workers or 2, len(shards), os.cpu_count() or 1))
    db_specs = [s for s in specs if s.source.location == "database"]
    results: list[dict] = []
    truth = _TruthAppender(job.work, lake)

    def take(shard: Shard, result: dict) -> None:
        for spec in db_specs:
            part = job.work / f"{shard.index:04d}" / "db" / f"{spec.code}.arrow"
            if part.exists():
                append_database_part(part, spec, lake)
                part.unlink()
        truth.add(shard)
        results.append(result)

    bar = _progress(range(len(shards)), show, "shards", "shard")
    if n == 1:
        for shard in shards:
            take(shard, _run_shard(job, shard))
            if show:
                bar.update(1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_run_shard, job, shard) for shard in shards]
            try:
                for shard, future in zip(shards, futures):
                    take(shard, future.result())
                    if show:
                        bar.update(1)
            except BaseException:  # a failed shard fails the country at once
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    if show:
        bar.close()
    truth.close()
    return results


def _run_shard(job: _Job, shard: Shard, progress: bool = False) -> dict:
    """Generate one shard: its population, every registry's rows (a part file for shards
    after the first) and its truth. Returns counts and, per registry, the part written."""
    cat = job.catalog or repo_catalog()
    lake = Lake(job.root)
    snapshot, defect_scale = job.snapshot, job.defect_scale
    streams = Streams(job.seed, shard.index)
    names = NameBank.load(job.seeds_dir or default_seeds_dir())

    pop = build_population(cat, shard.persons, snapshot, streams, names, job.settlements, shard)
    employers = add_person_attributes(pop, cat, snapshot, streams, job.employers)
    holdings = build_holdings(pop, cat, snapshot, streams, employers, defect_scale, shard)
    payments = build_payments(pop, cat, snapshot, streams, holdings)
    asp = build_welfare(pop, cat, snapshot, streams, holdings, payments)
    payments = pd.concat([payments, asp], ignore_index=True)
    queue = build_housing_queue(pop, cat, snapshot, streams, holdings, shard)

    # text columns as object arrays once, so every export takes from them without conversion
    for col in pop.persons.columns:
        if pd.api.types.is_string_dtype(pop.persons[col]) and pop.persons[col].dtype != object:
            pop.persons[col] = pop.persons[col].astype(object).where(pop.persons[col].notna(), None)
    entities: dict[str, pd.DataFrame] = {
        "persons": pop.persons,
        "families": pop.families,
        "settlements": pop.settlements,
        "marriages": pop.marriages,
        "births": pop.births,
        "deaths": pop.deaths,
        "payments": payments,
        "housing_queue": queue,
        **holdings,
    }
    del pop, holdings, payments, asp, queue

    specs = [s for s in cat.registries if job.registries is None or s.code in job.registries]
    mentions: list[pd.DataFrame] = []
    animal_records: list[pd.DataFrame] = []
    defects: list[pd.DataFrame] = []
    written: dict[str, dict] = {}
    total_rows = 0
    snap_time = dt.datetime.combine(snapshot, dt.time(2, 0))
    spool = job.work / f"{shard.index:04d}" / "db"
    for spec in _progress(specs, progress, "registries"):
        rng = streams.get(f"export:{spec.code}")
        export = build_export(spec, entities, rng, snapshot)
        export = DefectInjector(defect_scale, rng, entities).inject(export)
        export = assign_record_ids(export, rng, shard)
        stale, extracted = False, None
        if shard.index == 0:  # the registry's extract time: drawn once, by its first shard
            stale = defect_scale > 0 and rng.random() < min(1.0, DEFAULT_RATES["stale_extract"] * defect_scale)
            extracted = snap_time - (dt.timedelta(days=3 * spec.max_age_days + 2) if stale else dt.timedelta(hours=int(rng.integers(0, 12))))
        info = write_export(export, cat, lake, extracted, rng, part=shard.index, spool=spool, manifest=shard.single)
        written[spec.code] = {"file": info["file"], "rows": info["rows"],
                              "extracted_at": extracted.isoformat(timespec="seconds") if extracted else None}
        rid = export.columns[spec.record_id]
        total_rows += len(export)
        for group, ids in export.person_ids.items():
            mentions.append(_frame(len(rid), {"registry": spec.code, "record_id": rid, "group": group,
                                              "person_id": ids if shard.single else global_person(ids, shard)}))
        if export.animal_ids is not None:
            animal_records.append(_frame(len(rid), {"registry": spec.code, "record_id": rid, "animal_id":
                                                    export.animal_ids if shard.single else shard.serial(export.animal_ids)}))
        for kind, rows, column, detail in export.defects:
            if len(rows):
                defects.append(_frame(len(rows), {"kind": kind, "registry": spec.code, "record_id": rid[rows],
                                                  "column": column, "detail": detail}))
        if stale:
            defects.append(pd.DataFrame({"kind": ["stale_extract"], "registry": [spec.code], "record_id": [None],
                                         "column": [None], "detail": [extracted.isoformat()]}))
        del export

    truth_dir = lake.truth_dir if shard.single else job.work / f"{shard.index:04d}" / "truth"
    shared = () if shard.single else ("settlements", "employers")  # the parent writes those once
    truth = {name: globalize(name, df, shard) for name, df in entities.items() if name not in shared}
    n_families = len(entities["families"])
    del entities
    truth["mentions"] = _concat(mentions, {"registry": "str", "record_id": "str", "group": "str", "person_id": "int64"})
    del mentions
    truth["animal_records"] = _concat(animal_records, {"registry": "str", "record_id": "str", "animal_id": "int64"})
    truth["defects"] = _concat(defects, {"kind": "str", "registry": "str", "record_id": "str", "column": "str", "detail": "str"})
    n_defects = len(truth["defects"])
    for name in list(truth):
        write_parquet(truth_dir / f"{name}.parquet", pa.Table.from_pandas(truth.pop(name), preserve_index=False))
    return {"shard": shard.index, "families": n_families, "rows": total_rows, "defects": n_defects,
            "registries": written}


class _TruthAppender:
    """Appends every shard's truth tables, in shard order, row group by row group, to
    ``truth/<table>.parquet`` (written under a temporary name until the last shard is in)."""

    def __init__(self, work: Path, lake: Lake):
        self.work, self.lake = work, lake
        self.writers: dict[str, tuple[pq.ParquetWriter, pa.Schema, Path]] = {}

    def add(self, shard: Shard) -> None:
        folder = self.work / f"{shard.index:04d}" / "truth"
        for part in sorted(folder.glob("*.parquet")):
            name = part.stem
            f = pq.ParquetFile(part)
            if name not in self.writers:
                # a column without a value in the first shard is typed by the later ones: text
                schema = pa.schema([fld.with_type(pa.string()) if pa.types.is_null(fld.type) else fld
                                    for fld in f.schema_arrow], metadata=f.schema_arrow.metadata)
                target = self.lake.truth(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(target.suffix + ".tmp")
                self.writers[name] = (pq.ParquetWriter(tmp, schema, compression="zstd"), schema, tmp)
            writer, schema, _ = self.writers[name]
            for i in range(f.num_row_groups):
                writer.write_table(f.read_row_group(i).cast(schema), row_group_size=1 << 20)
            del f
            part.unlink()

    def close(self) -> None:
        for name, (writer, _, tmp) in self.writers.items():
            writer.close()
            os.replace(tmp, self.lake.truth(name))
        self.writers.clear()


def _write_manifest(spec, lake: Lake, parts: list[dict]) -> None:
    """A sharded export's manifest: the total row count and every part with its rows."""
    database = spec.source.location == "database"
    manifest = {
        "registry": spec.code,
        "file": None if database else spec.file_name,
        "table": spec.source.table,
        "format": "sql" if database else spec.source.format,
        "extracted_at": parts[0]["extracted_at"],
        "rows": sum(p["rows"] for p in parts),
    }
    if not database:
        manifest["parts"] = [{"file": p["file"], "rows": p["rows"]} for p in parts]
        assert parts[0]["file"] == spec.file_name and all(
            p["file"] == part_file_name(spec.file_name, i) for i, p in enumerate(parts))
    folder = lake.landing_dir(spec.code)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _frame(n: int, columns: dict) -> pd.DataFrame:
    """A truth frame with text as object columns from the start (pandas would infer Arrow
    strings, which ``_concat`` turns back into objects)."""
    out = {}
    for k, v in columns.items():
        if isinstance(v, np.ndarray) and v.dtype.kind in "iuf":
            out[k] = v
        else:
            arr = np.full(n, v, dtype=object) if v is None or isinstance(v, str) else np.asarray(v, dtype=object)
            out[k] = pd.Series(arr, dtype=object, copy=False)
    return pd.DataFrame(out)


def _concat(frames: list[pd.DataFrame], schema: dict[str, str]) -> pd.DataFrame:
    if frames:
        df = pd.concat(frames, ignore_index=True)
    else:
        df = pd.DataFrame({k: pd.Series([], dtype=object) for k in schema})
    for k, t in schema.items():
        if t == "str":
            df[k] = df[k].astype(object).where(df[k].notna(), None)
        else:
            df[k] = df[k].astype(t)
    return df
