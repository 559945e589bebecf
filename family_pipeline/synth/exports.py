"""Build one registry's rows from the country's entity tables, as the catalog describes it.

An ``Export`` holds typed canonical columns (numpy/pandas arrays), the true person behind each
person-reference group and the true animal behind each animal record. Defects are injected on
it (``defects.py``), then ``writers.py`` renders it in the agency's own format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from family_pipeline.catalog import RegistrySpec
from family_pipeline.lib.identifiers import make_bins
from family_pipeline.synth.entities import group_id_column
from family_pipeline.synth.shards import Shard


@dataclass
class Export:
    spec: RegistrySpec
    #: canonical column name -> values (object arrays for text, datetime64[D], float, int, bool)
    columns: dict[str, np.ndarray]
    #: person-reference group -> true person id per row (-1: no such person)
    person_ids: dict[str, np.ndarray]
    #: true animal id per row, for registries of animals
    animal_ids: np.ndarray | None
    #: defects injected so far: (kind, row index, column, detail)
    defects: list[tuple[str, np.ndarray, str | None, str]] = field(default_factory=list)
    #: rows to be written malformed (indices), decided by the defect injector
    malformed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, idx: np.ndarray) -> Export:
        """Rows ``idx`` (used to append duplicates and to shuffle)."""
        return Export(
            self.spec,
            {k: v[idx] for k, v in self.columns.items()},
            {k: v[idx] for k, v in self.person_ids.items()},
            None if self.animal_ids is None else self.animal_ids[idx],
        )


def person_part(persons: pd.DataFrame, ids: np.ndarray, part: str) -> np.ndarray:
    """A part of a person reference for person ids (``-1`` gives a missing value)."""
    known = ids >= 0
    safe = np.where(known, ids, 0)
    if part == "full_name":
        last = persons.last_name.to_numpy()[safe]
        first = persons.first_name.to_numpy()[safe]
        patr = persons.patronymic.to_numpy()[safe]
        full = pd.Series(last, dtype=object) + " " + pd.Series(first, dtype=object)
        with_patr = pd.Series(patr, dtype=object).notna().to_numpy()
        full = np.where(with_patr, (full + " " + pd.Series(patr, dtype=object).fillna("")).to_numpy(), full.to_numpy())
        values = full.astype(object)
    else:
        values = persons[part].to_numpy()[safe]
    if values.dtype.kind == "M":
        return np.where(known, values, np.datetime64("NaT"))
    values = values.astype(object)
    values[~known] = None
    return values


def synth_values(spec_value, frame: pd.DataFrame, rng: np.random.Generator, snapshot: dt.date) -> np.ndarray:
    n = len(frame)
    if isinstance(spec_value, str):
        out = frame.eval(spec_value, engine="python")
        return np.asarray(out) if not np.isscalar(out) else np.full(n, out)
    kind = next(k for k in spec_value if k != "p")
    arg = spec_value[kind]
    if kind == "seq":
        return np.zeros(n, dtype=object)  # record ids are assigned after defects (see assign_record_ids)
    if kind == "choice":
        values = np.asarray(arg, dtype=object)
        p = spec_value.get("p")
        return values[rng.choice(len(values), size=n, p=None if p is None else np.asarray(p, float) / np.sum(p))]
    if kind == "uniform":
        return np.round(rng.uniform(float(arg[0]), float(arg[1]), n), 2)
    if kind == "normal":
        return np.round(rng.normal(float(arg[0]), float(arg[1]), n), 2)
    if kind == "int":
        return rng.integers(int(arg[0]), int(arg[1]) + 1, n).astype(np.int64)
    if kind == "date_between":
        a = np.datetime64(str(arg[0]), "D").astype(np.int64)
        b = np.datetime64(str(arg[1]), "D").astype(np.int64)
        return (a + rng.integers(0, max(1, b - a + 1), n)).astype("datetime64[D]")
    if kind == "const":
        return np.full(n, arg, dtype=object)
    if kind == "bin":
        days = (np.datetime64(snapshot, "D").astype(np.int64) - rng.integers(100, 9000, n)).astype("datetime64[D]")
        return make_bins(days, np.full(n, 4), rng.integers(0, 99_999, n)).astype(object)
    raise ValueError(f"unknown synth value {spec_value!r}")


def build_export(spec: RegistrySpec, entities: dict[str, pd.DataFrame], rng: np.random.Generator,
                 snapshot: dt.date) -> Export:
    frame = entities[spec.synth.entity]
    if spec.synth.where:
        frame = frame.query(spec.synth.where, engine="python")
    if spec.synth.coverage < 1:
        frame = frame[rng.random(len(frame)) < spec.synth.coverage]
    frame = frame.reset_index(drop=True)
    persons = entities["persons"]
    person_ids = {g: frame[group_id_column(g)].to_numpy().astype(np.int64) for g in spec.person_groups}
    animal_ids = frame["animal_id"].to_numpy() if spec.has_animals else None
    cols: dict[str, np.ndarray] = {}
    for col in spec.columns:
        if col.synth is not None:
            cols[col.name] = synth_values(col.synth, frame, rng, snapshot)
        elif col.role_group == "animal":
            part = col.role_part
            if part == "settlement":
                cols[col.name] = frame["settlement_name"].to_numpy().astype(object)
            elif part == "owner_iin":
                cols[col.name] = person_part(persons, frame["owner_id"].to_numpy(), "iin")
            else:
                v = frame[part].to_numpy()
                cols[col.name] = v if v.dtype.kind == "M" else v.astype(object)
        elif col.role is not None:
            cols[col.name] = person_part(persons, person_ids[col.role_group], col.role_part)
        else:
            v = frame[col.name].to_numpy()
            cols[col.name] = v.astype(object) if v.dtype.kind in "OUT" or str(v.dtype) == "str" else v
    return Export(spec, cols, person_ids, animal_ids)


def assign_record_ids(export: Export, rng: np.random.Generator, shard: Shard | None = None) -> Export:
    """Shuffle rows (so injected rows do not sit at the end) and number them (shards of a
    country interleave their numbers, see ``shards.py``)."""
    order = rng.permutation(len(export))
    # defects point at row indices: remap them through the shuffle
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    shuffled = export.take(order)
    shuffled.defects = [(k, where[rows], c, d) for k, rows, c, d in export.defects]
    shuffled.malformed = np.sort(where[export.malformed])
    rid = export.spec.column(export.spec.record_id)
    prefix = rid.synth.get("seq", "") if isinstance(rid.synth, dict) else ""
    local = np.arange(len(order))
    numbers = (local if shard is None else shard.serial(local)) + 1
    width = max(7, len(str(int(numbers[-1]) if len(numbers) else 0)))
    numbers = numbers.astype(str)
    shuffled.columns[rid.name] = (
        np.char.add(prefix, np.char.zfill(numbers, width)).astype(object) if len(order) else np.zeros(0, dtype=object)
    )
    return shuffled
