"""The mart catalog (``seeds/warehouse_marts.yaml``): which lake tables are published to the
warehouse, into which schema, and what is dropped or pseudonymized on the way.

Two schemas keep restricted and analytics data apart:

- ``restricted`` — personal data (IINs, names, addresses) for the officers entitled to it;
- ``analytics`` — pseudonymous keys only. A column named like an identifier or a name
  (``iin``, ``last_name``, ``first_name``, ``patronymic``, ``full_name``, ``surname``,
  ``address``) is refused there, both when the catalog loads and again when a table is published.

The catalog is validated when it loads; an error names the mart and the field.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from family_pipeline.catalog.load import default_seeds_dir

__all__ = [
    "ANALYTICS",
    "RESTRICTED",
    "MartCatalog",
    "MartCatalogError",
    "MartSource",
    "MartSpec",
    "forbidden_analytics_columns",
    "load_marts",
    "mart_catalog",
]

RESTRICTED = "restricted"
ANALYTICS = "analytics"
#: column names that identify a person directly; never allowed in an analytics mart
_FORBIDDEN_PARTS = ("last_name", "first_name", "patronymic", "full_name", "surname", "address")
_FORBIDDEN_TOKENS = {"iin", "fio"}
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class MartCatalogError(ValueError):
    """The mart catalog is wrong, or a mart would publish what its schema must not hold."""


def forbidden_analytics_columns(columns) -> list[str]:
    """The columns an analytics mart must not carry: any whose name holds an identifier or a
    name part (``iin``, ``head_iin``, ``last_name``, ``address_id``, ``name`` …)."""
    out = []
    for column in columns:
        lowered = str(column).lower()
        tokens = set(lowered.split("_"))
        if tokens & _FORBIDDEN_TOKENS or lowered == "name" or any(p in lowered for p in _FORBIDDEN_PARTS):
            out.append(str(column))
    return out


class MartSource(BaseModel):
    """Where a mart's rows come from: a lake table (``stage``/``table``) or a table of one of the
    project's own SQL databases (``database: alerts`` is the ``dq_alerts`` store)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stage: str | None = None
    table: str
    database: Literal["alerts"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MartSource:
        if (self.stage is None) == (self.database is None):
            raise ValueError("give either 'stage' (a lake table) or 'database' (alerts), not both or neither")
        return self

    def describe(self) -> str:
        return f"lake/{self.stage}/{self.table}.parquet" if self.stage else f"{self.database} database, table {self.table}"


class MartSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    schema_: Literal["restricted", "analytics"] = Field(alias="schema")
    description: str
    source: MartSource
    #: the asset the mart is published from (``[group, name]``); none for a database source
    upstream: tuple[str, ...] | None = None
    #: a mart whose upstream stage is not wired yet stays off (no asset is made for it)
    enabled: bool = True
    #: only these source columns (all when absent)
    columns: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    #: source column → published column holding its keyed hash (HMAC-SHA256, 16 hex characters)
    pseudonymize: dict[str, str] = Field(default_factory=dict)
    #: snapshots kept in the table (the newest ones); older snapshots are deleted on publish
    keep_snapshots: int | None = Field(default=None, ge=1)

    @property
    def schema_name(self) -> str:
        return self.schema_

    @property
    def table_name(self) -> str:
        return f"{self.schema_}.{self.name}"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a lower-case SQL identifier")
        return value

    @field_validator("pseudonymize")
    @classmethod
    def _targets(cls, value: dict[str, str]) -> dict[str, str]:
        for target in value.values():
            if not _IDENTIFIER.match(target):
                raise ValueError(f"pseudonymized column {target!r} is not a lower-case SQL identifier")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MartSpec:
        if self.source.stage and not self.upstream:
            raise ValueError("a lake-table mart names its upstream asset ('upstream: [group, name]')")
        both = set(self.drop) & set(self.pseudonymize)
        if both:
            raise ValueError(f"columns both dropped and pseudonymized: {sorted(both)}")
        if self.schema_ == ANALYTICS:
            declared = [c for c in (self.columns or ()) if c not in self.drop and c not in self.pseudonymize]
            bad = forbidden_analytics_columns(declared + list(self.pseudonymize.values()))
            if bad:
                raise ValueError(f"an analytics mart must not carry identifying columns {bad}: "
                                 "drop or pseudonymize them, or publish to 'restricted'")
        return self

    def published_columns(self, source_columns) -> list[str]:
        """The columns this mart publishes from a source with ``source_columns`` (before the
        snapshot columns), in source order; pseudonymized columns take their new names."""
        keep = set(self.columns) if self.columns is not None else None
        out = []
        for column in source_columns:
            if column in self.drop or (keep is not None and column not in keep and column not in self.pseudonymize):
                continue
            out.append(self.pseudonymize.get(column, column))
        return out

    def check_publishable(self, source_columns) -> None:
        """Fail before anything is written if an analytics mart would carry an identifying column."""
        if self.schema_ != ANALYTICS:
            return
        bad = forbidden_analytics_columns(self.published_columns(source_columns))
        if bad:
            raise MartCatalogError(f"mart {self.name!r} ({ANALYTICS}): source {self.source.describe()} has "
                                   f"identifying columns {bad}; drop or pseudonymize them in the mart catalog")


class MartCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    keep_snapshots: int = Field(default=7, ge=1)
    marts: tuple[MartSpec, ...]

    @model_validator(mode="after")
    def _unique(self) -> MartCatalog:
        names = [m.name for m in self.marts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"mart names repeat: {dupes}")
        return self

    def mart(self, name: str) -> MartSpec:
        for m in self.marts:
            if m.name == name:
                return m
        raise KeyError(f"no mart {name!r} in the mart catalog")

    def enabled(self) -> tuple[MartSpec, ...]:
        return tuple(m for m in self.marts if m.enabled)

    def snapshots_kept(self, mart: MartSpec) -> int:
        return mart.keep_snapshots or self.keep_snapshots


def _label(raw: object, index: int) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"mart {name!r}" if name else f"mart #{index + 1}"


def load_marts(path: Path | str | None = None) -> MartCatalog:
    """Load and validate the mart catalog (default ``seeds/warehouse_marts.yaml``)."""
    path = Path(path) if path else default_seeds_dir() / "warehouse_marts.yaml"
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MartCatalogError(f"{path}: cannot read the mart catalog: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("marts"), list):
        raise MartCatalogError(f"{path}: expected a mapping with a 'marts' list")
    marts = []
    for index, entry in enumerate(raw["marts"]):
        try:
            marts.append(MartSpec.model_validate(entry))
        except ValidationError as exc:
            details = "; ".join(
                (".".join(str(x) for x in e["loc"]) + ": " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
                for e in exc.errors())
            raise MartCatalogError(f"{path}: {_label(entry, index)}: {details}") from None
    try:
        return MartCatalog(keep_snapshots=raw.get("keep_snapshots", 7), marts=tuple(marts))
    except ValidationError as exc:
        raise MartCatalogError(f"{path}: " + "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None


@functools.cache
def mart_catalog() -> MartCatalog:
    """The project's mart catalog, loaded once."""
    return load_marts()
