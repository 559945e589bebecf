"""The synthetic country: a population with its ground truth, exported registry by registry.

    generate_country(out_dir, persons=100_000, seed=42)

writes ``out_dir/landing`` (every registry of the catalog, as its agency exports it) and
``out_dir/truth`` (who is who, which family, latent welfare, every injected defect).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

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
)
from family_pipeline.synth.exports import assign_record_ids, build_export
from family_pipeline.synth.names import NameBank
from family_pipeline.synth.population import build_population
from family_pipeline.synth.random import Streams
from family_pipeline.synth.writers import write_export

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


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="registry", file=sys.stderr)


def generate_country(out: Path | str, persons: int = 100_000, seed: int = 42, *,
                     defect_scale: float = 1.0, snapshot: dt.date = DEFAULT_SNAPSHOT,
                     catalog: Catalog | None = None, seeds_dir: Path | None = None,
                     registries: list[str] | None = None, progress: bool | None = None) -> SynthSummary:
    """Generate a country of ``persons`` living persons (plus the recently deceased)."""
    t0 = time.perf_counter()
    cat = catalog or repo_catalog()
    lake = Lake(Path(out).resolve())
    streams = Streams(seed)
    names = NameBank.load(seeds_dir or default_seeds_dir())
    show = sys.stderr.isatty() if progress is None else progress

    pop = build_population(cat, persons, snapshot, streams, names)
    employers = add_person_attributes(pop, cat, snapshot, streams)
    holdings = build_holdings(pop, cat, snapshot, streams, employers, defect_scale)
    payments = build_payments(pop, cat, snapshot, streams, holdings)
    asp = build_welfare(pop, cat, snapshot, streams, holdings, payments)
    payments = pd.concat([payments, asp], ignore_index=True)
    queue = build_housing_queue(pop, cat, snapshot, streams, holdings)

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

    specs = [s for s in cat.registries if registries is None or s.code in registries]
    mentions: list[pd.DataFrame] = []
    animal_records: list[pd.DataFrame] = []
    defects: list[pd.DataFrame] = []
    total_rows = 0
    lake.landing.mkdir(parents=True, exist_ok=True)
    db = lake.landing / "registry_db.sqlite"
    if db.exists():
        db.unlink()
    snap_time = dt.datetime.combine(snapshot, dt.time(2, 0))
    for spec in _progress(specs, show, "registries"):
        rng = streams.get(f"export:{spec.code}")
        export = build_export(spec, entities, rng, snapshot)
        export = DefectInjector(defect_scale, rng, entities).inject(export)
        export = assign_record_ids(export, rng)
        stale = defect_scale > 0 and rng.random() < min(1.0, DEFAULT_RATES["stale_extract"] * defect_scale)
        extracted = snap_time - (dt.timedelta(days=3 * spec.max_age_days + 2) if stale else dt.timedelta(hours=int(rng.integers(0, 12))))
        write_export(export, cat, lake, extracted, rng)
        rid = export.columns[spec.record_id]
        total_rows += len(export)
        for group, ids in export.person_ids.items():
            mentions.append(pd.DataFrame({"registry": spec.code, "record_id": rid, "group": group, "person_id": ids}))
        if export.animal_ids is not None:
            animal_records.append(pd.DataFrame({"registry": spec.code, "record_id": rid, "animal_id": export.animal_ids}))
        for kind, rows, column, detail in export.defects:
            if len(rows):
                defects.append(pd.DataFrame({"kind": kind, "registry": spec.code, "record_id": rid[rows],
                                             "column": column, "detail": detail}))
        if stale:
            defects.append(pd.DataFrame({"kind": ["stale_extract"], "registry": [spec.code], "record_id": [None],
                                         "column": [None], "detail": [extracted.isoformat()]}))

    (lake.landing / "snapshot.json").write_text(json.dumps({"as_of": snapshot.isoformat()}) + "\n", encoding="utf-8")
    truth = {name: df for name, df in entities.items()}
    truth["mentions"] = _concat(mentions, {"registry": "str", "record_id": "str", "group": "str", "person_id": "int64"})
    truth["animal_records"] = _concat(animal_records, {"registry": "str", "record_id": "str", "animal_id": "int64"})
    truth["defects"] = _concat(defects, {"kind": "str", "registry": "str", "record_id": "str", "column": "str", "detail": "str"})
    for name, df in truth.items():
        write_parquet(lake.truth(name), pa.Table.from_pandas(df, preserve_index=False))
    summary = SynthSummary(lake.root, persons, len(pop.families), len(specs), total_rows, len(truth["defects"]),
                           round(time.perf_counter() - t0, 2))
    (lake.truth_dir / "country.json").write_text(json.dumps({
        "seed": seed, "persons": persons, "snapshot": snapshot.isoformat(), "defect_scale": defect_scale,
        "families": summary.families, "registries": summary.registries, "rows": total_rows,
        "defects": summary.defects,
    }, indent=2) + "\n", encoding="utf-8")
    return summary


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
