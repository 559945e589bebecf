"""Person mentions: every reference to a person in every registry, in one columnar table.

A registry row can mention several people (a marriage record: husband and wife; a birth record:
child, mother, father); each reference group of the catalog (``subject``, ``husband``, …) gives
one mention per row where any of its identifying parts is present.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from family_pipeline.catalog import Catalog, RegistrySpec
from family_pipeline.lib.lake import ROW_GROUP as LAKE_ROW_GROUP
from family_pipeline.lib.lake import Lake

__all__ = ["MENTION_SCHEMA", "registry_mentions", "person_mentions", "write_person_mentions"]

MENTION_SCHEMA = pa.schema([
    ("registry", pa.string()),
    ("record_id", pa.string()),
    ("group", pa.string()),
    ("iin", pa.string()),
    ("iin_valid", pa.bool_()),
    ("last_name", pa.string()),
    ("first_name", pa.string()),
    ("patronymic", pa.string()),
    ("full_name", pa.string()),
    ("birth_date", pa.date32()),
    ("sex", pa.string()),
    ("region", pa.string()),
    ("address", pa.string()),
    #: a death the registry records for its subject (population register, civil registry)
    ("death_date", pa.date32()),
])
_IDENTIFYING = ("iin", "last_name", "first_name", "full_name")


def registry_mentions(spec: RegistrySpec, clean: pa.Table, groups: list[str] | None = None) -> pa.Table:
    """The mentions of one registry's clean table (of its reference ``groups``, default all), group
    after group."""
    out = []
    n = clean.num_rows
    for group in spec.person_groups if groups is None else groups:
        roles = spec.role_columns(group)
        cols = {}
        for f in MENTION_SCHEMA:
            if f.name == "registry":
                cols[f.name] = pa.repeat(pa.scalar(spec.code, pa.string()), n)
            elif f.name == "record_id":
                cols[f.name] = clean.column(spec.record_id).cast(pa.string())
            elif f.name == "group":
                cols[f.name] = pa.repeat(pa.scalar(group, pa.string()), n)
            elif f.name == "iin_valid":
                source = roles.get("iin")
                cols[f.name] = clean.column(f"{source}_valid") if source else pa.nulls(n, pa.bool_())
            elif f.name == "death_date":
                has = group == "subject" and "death_date" in clean.column_names
                cols[f.name] = clean.column("death_date").cast(f.type) if has else pa.nulls(n, f.type)
            elif f.name in roles:
                cols[f.name] = clean.column(roles[f.name]).cast(f.type)
            else:
                cols[f.name] = pa.nulls(n, f.type)
        table = pa.table(cols, schema=MENTION_SCHEMA)
        present = None
        for name in _IDENTIFYING:
            valid = pc.is_valid(table.column(name))
            present = valid if present is None else pc.or_(present, valid)
        out.append(table.filter(present))
    return pa.concat_tables(out) if out else MENTION_SCHEMA.empty_table()


def _columns_read(spec: RegistrySpec, path) -> list[str]:
    """Only the columns the mentions are made of (a registry table is mostly other fields)."""
    names = pq.read_schema(path).names
    wanted = {spec.record_id, "death_date"}
    for group in spec.person_groups:
        for part, name in spec.role_columns(group).items():
            wanted.add(name)
            if part == "iin":
                wanted.add(f"{name}_valid")
    return [c for c in names if c in wanted]


#: rows per row group of the mentions file: the lake's
ROW_GROUP = LAKE_ROW_GROUP


def _registry_parts(spec: RegistrySpec, path: Path) -> Iterator[pa.Table]:
    """A registry's mentions in the order :func:`registry_mentions` gives them for the whole
    table (group after group, rows in order), read a row group of the registry at a time: a
    national registry read whole (20M rows, with the mentions made of it) took the step past
    12 GB at 20M persons."""
    registry = pq.ParquetFile(path)
    columns = _columns_read(spec, path)
    for group in spec.person_groups:
        for i in range(registry.num_row_groups):
            yield registry_mentions(spec, registry.read_row_group(i, columns=columns), [group])


def _each_registry(lake: Lake, catalog: Catalog, registries: list[str] | None):
    """(registry code, its mentions in parts of at most :data:`ROW_GROUP` rows) for every
    ingested registry, in catalog order; a registry without mentions gives one empty part."""
    for spec in catalog.registries:
        if not spec.person_groups or (registries is not None and spec.code not in registries):
            continue
        path = lake.table("registries", spec.code)
        if not path.exists():
            continue
        yield spec.code, _rebatched(_registry_parts(spec, path), ROW_GROUP)


def _rebatched(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of ``tables`` in order, as tables of ``rows`` rows but the last (at least one)."""
    held: list[pa.Table] = []
    count, given = 0, False
    for table in tables:
        held.append(table)
        count += table.num_rows
        while count >= rows:
            whole = pa.concat_tables(held)
            yield whole.slice(0, rows)
            held, count, given = [whole.slice(rows)], count - rows, True
    if count or not given:
        yield pa.concat_tables(held) if held else MENTION_SCHEMA.empty_table()


def person_mentions(lake: Lake, catalog: Catalog, registries: list[str] | None = None) -> tuple[pa.Table, dict]:
    """All mentions of the registries that have been ingested; and mentions per registry."""
    tables, counts = [], {}
    for code, parts in _each_registry(lake, catalog, registries):
        t = pa.concat_tables(list(parts))
        counts[code] = t.num_rows
        tables.append(t)
    table = pa.concat_tables(tables) if tables else MENTION_SCHEMA.empty_table()
    return table, counts


def write_person_mentions(lake: Lake, catalog: Catalog, path: Path, registries: list[str] | None = None) -> dict:
    """``person_mentions`` streamed to a Parquet file a row group at a time (the same rows in the
    same order, in row groups of :data:`ROW_GROUP` rows that start at each registry), so only
    one row group of a registry and of its mentions is in memory; mentions per registry.
    Written to a temporary file and renamed, like every lake table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    counts = {}
    with pq.ParquetWriter(tmp, MENTION_SCHEMA, compression="zstd") as writer:
        for code, parts in _each_registry(lake, catalog, registries):
            counts[code] = 0
            for t in parts:
                counts[code] += t.num_rows
                writer.write_table(t, row_group_size=ROW_GROUP)
    os.replace(tmp, path)
    return counts
