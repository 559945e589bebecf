"""A country generated in shards of families, so memory stays bounded at any size.

Each shard is a small country of its own: its families, their deceased relatives, holdings,
payments and registry rows, drawn from the streams of ``(seed, shard)``. What is shared is built
once: the settlements, the employers and the snapshot. The shard size is a constant (or the
``FAMILY_PIPELINE_SYNTH_SHARD_PERSONS`` override, for tests), never derived from the machine, so
a seed gives the same country anywhere. A country of up to ``SHARD_PERSONS`` persons is one
shard and is exactly the country an unsharded generator makes.

Identifiers stay unique across shards:

- person ids are contiguous: shard ``k`` starts after the living and deceased of shards ``< k``
  (their counts are known before anything is drawn);
- family ids are contiguous too (the family layout of every shard is drawn up front, cheaply);
- IIN serials of a birth day and sex continue where the earlier shards left off (the plan
  replays each shard's first draws to count them);
- every other id and running number (records, properties, animals, plates, cadastral numbers...)
  is interleaved: local number ``i`` of shard ``k`` of ``K`` becomes ``i*K + k``.
"""

from __future__ import annotations

import math
import os
import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

SHARD_PERSONS = 500_000
SHARD_ENV = "FAMILY_PIPELINE_SYNTH_SHARD_PERSONS"


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1
    persons: int = 0  # living persons of the shard
    deceased: int = 0
    person_base: int = 0
    family_base: int = 0
    #: IIN groups of the shard's persons (sorted) and how many persons of each earlier shards hold
    iin_keys: np.ndarray | None = field(default=None, compare=False, repr=False)
    iin_base: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def single(self) -> bool:
        return self.count == 1

    def serial(self, local) -> np.ndarray:
        """Interleaved global number of local running numbers."""
        return np.asarray(local, dtype=np.int64) * self.count + self.index


def shard_persons(override: int | None = None) -> int:
    if override:
        return int(override)
    env = os.environ.get(SHARD_ENV)
    return int(env) if env else SHARD_PERSONS


def deceased_count(persons: int) -> int:
    return max(10, int(round(persons * 0.035)))


def plan_shards(persons: int, seed: int, size: int, snapshot: dt.date | None = None) -> list[Shard]:
    """Shard sizes (as equal as possible) and id bases, deterministic in (persons, seed, size);
    with the ``snapshot``, also where each shard's IIN serials start (per birth day and sex)."""
    from family_pipeline.synth.population import family_layout, iin_group_counts
    from family_pipeline.synth.random import Streams

    count = max(1, math.ceil(persons / max(1, size)))
    q, r = divmod(persons, count)
    sizes = [q + (1 if i < r else 0) for i in range(count)]
    shards = []
    pbase = fbase = 0
    for i, p in enumerate(sizes):
        dead = deceased_count(p)
        shards.append(Shard(i, count, p, dead, pbase, fbase))
        if count > 1:
            # the layout can fall a person short of ``p`` (the last family cannot always be
            # trimmed to fit): the bases count the persons the shard really has
            _, _, _, size = family_layout(Streams(seed, i).get("families"), p)
            pbase += int(size.sum()) + dead
            fbase += len(size)
    if count > 1 and snapshot is not None:
        used = pd.Series(dtype=np.int64)
        for i, sh in enumerate(shards):
            keys, counts = iin_group_counts(seed, sh, snapshot)
            base = used.reindex(keys, fill_value=0).to_numpy().astype(np.int64)
            shards[i] = replace(sh, iin_keys=keys, iin_base=base)
            used = used.add(pd.Series(counts, index=keys), fill_value=0).astype(np.int64)
    return shards


# entity table -> columns holding a person id (-1: nobody), family id, or the table's own id
PERSON_REFS = {
    "persons": ("person_id",), "families": ("head_id",), "marriages": ("husband_id", "wife_id"),
    "births": ("child_id", "mother_id", "father_id"), "deaths": ("person_id",),
    "real_estate": ("owner_id",), "land_plots": ("owner_id",), "vehicles": ("owner_id",),
    "businesses": ("owner_id",), "animals": ("owner_id",), "loans": ("borrower_id",),
    "payments": ("person_id",), "housing_queue": ("person_id",),
}
FAMILY_REFS = {"persons": ("family_id",), "families": ("family_id",)}
OWN_IDS = {
    "marriages": "marriage_id", "births": "birth_id", "deaths": "death_id", "real_estate": "property_id",
    "land_plots": "plot_id", "vehicles": "vehicle_id", "businesses": "business_id", "animals": "animal_id",
    "loans": "loan_id", "payments": "payment_id", "housing_queue": "entry_id",
}


def global_person(ids: np.ndarray, shard: Shard) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    return np.where(ids >= 0, ids + shard.person_base, ids)


def globalize(name: str, df: pd.DataFrame, shard: Shard) -> pd.DataFrame:
    """The shard's entity table with country-wide ids (the shard works with local ones)."""
    if shard.single:
        return df
    df = df.copy(deep=False)
    for col in PERSON_REFS.get(name, ()):
        df[col] = global_person(df[col].to_numpy(), shard)
    for col in FAMILY_REFS.get(name, ()):
        v = df[col].to_numpy().astype(np.int64)
        df[col] = np.where(v >= 0, v + shard.family_base, v)
    if name in OWN_IDS:
        df[OWN_IDS[name]] = shard.serial(df[OWN_IDS[name]].to_numpy())
    return df
