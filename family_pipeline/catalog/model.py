"""Typed model of the registry catalog and the reference data in ``seeds/``.

A registry entry says who owns the registry, how the agency exports it (format, encoding,
delimiter, date format, its own column names and value codes), how each agency column maps to
the canonical schema, which columns reference a person or an animal, and how the synthetic
country produces it. Everything downstream (ingestion, quality suites, resolution, the
generator) reads these objects; nothing re-reads the YAML.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ColumnType = Literal[
    "string",  # free text, trimmed
    "name",  # a person's name part, trimmed and NFC-normalised
    "iin",  # 12-digit individual identification number
    "bin",  # 12-digit business identification number
    "date",  # a calendar date in the source's date format
    "int",
    "decimal",  # amounts and measures; the source may use a decimal comma
    "bool",
    "category",  # one of ``values`` (after ``codes`` are mapped)
    "region",  # ISO 3166-2:KZ code after mapping from the source's region format
    "sex",  # M or F after ``codes``
]

Domain = Literal[
    "population",
    "civil_status",
    "property",
    "income",
    "employment",
    "social_payments",
    "health",
    "education",
    "justice",
    "finance",
    "agriculture",
    "housing",
    "tax",
    "business",
    "transport",
    "migration",
]

Cadence = Literal["daily", "weekly", "monthly", "quarterly", "yearly"]
CADENCE_DAYS: dict[str, int] = {
    "daily": 1,
    "weekly": 7,
    "monthly": 31,
    "quarterly": 92,
    "yearly": 366,
}

#: Parts of a person reference. ``full_name`` is "Фамилия Имя Отчество" in one column.
PERSON_PARTS = (
    "iin",
    "last_name",
    "first_name",
    "patronymic",
    "full_name",
    "birth_date",
    "sex",
    "region",
    "address",
)
#: Parts of an animal reference.
ANIMAL_PARTS = ("tag", "species", "sex", "birth_date", "settlement", "owner_iin", "region")

#: Entity tables of the synthetic country a registry can be drawn from (see synth/README).
SYNTH_ENTITIES = (
    "persons",
    "families",
    "marriages",
    "births",
    "deaths",
    "real_estate",
    "land_plots",
    "vehicles",
    "businesses",
    "animals",
    "loans",
    "payments",
    "housing_queue",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Frozen):
    """How the agency exports the registry."""

    format: Literal["csv", "parquet", "jsonl"]
    location: Literal["landing", "database"] = "landing"
    encoding: Literal["utf-8", "utf-8-sig", "cp1251", "utf-16"] = "utf-8"
    delimiter: str = ","
    decimal: Literal[".", ","] = "."
    date_format: str = "%Y-%m-%d"
    region_format: Literal["iso", "kato", "name_ru"] = "iso"
    #: file name inside the registry's landing folder; defaults to ``<code>.<format>``
    file: str | None = None
    #: table name for a registry that lives in a database
    table: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SourceSpec:
        if self.format != "csv" and self.encoding not in ("utf-8",):
            raise ValueError(f"encoding {self.encoding!r} applies to csv only")
        if len(self.delimiter) != 1:
            raise ValueError(f"delimiter must be one character, got {self.delimiter!r}")
        return self


class ColumnSpec(_Frozen):
    """One canonical column and the agency column it comes from."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: str
    type: ColumnType
    description: str = ""
    required: bool = False
    unique: bool = False
    #: allowed canonical values (category columns)
    values: tuple[str, ...] | None = None
    #: agency value -> canonical value (e.g. {"1": "M", "2": "F"})
    codes: dict[str, str] | None = None
    min: float | None = None
    max: float | None = None
    #: person or animal reference: "<group>.<part>", e.g. "subject.iin", "mother.full_name",
    #: "animal.tag"; groups other than "animal" are persons
    role: str | None = None
    #: how the synthetic country fills this column (see synth/fields.py); defaults to the
    #: role's value or the entity attribute of the same name
    synth: str | dict | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _values_as_strings(cls, v):
        return None if v is None else tuple(str(x) for x in v)

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_strings(cls, v):
        return None if v is None else {str(k): str(val) for k, val in v.items()}

    @model_validator(mode="after")
    def _check(self) -> ColumnSpec:
        if self.type == "category" and not self.values:
            raise ValueError("a category column needs 'values'")
        if self.codes and self.type not in ("category", "sex", "bool"):
            raise ValueError("'codes' apply to category, sex and bool columns")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        if self.role is not None:
            group, _, part = self.role.partition(".")
            allowed = ANIMAL_PARTS if group == "animal" else PERSON_PARTS
            if not group or part not in allowed:
                raise ValueError(f"role {self.role!r}: part must be one of {', '.join(allowed)}")
        return self

    @property
    def role_group(self) -> str | None:
        return None if self.role is None else self.role.split(".", 1)[0]

    @property
    def role_part(self) -> str | None:
        return None if self.role is None else self.role.split(".", 1)[1]


class SynthSpec(_Frozen):
    """How the synthetic country produces this registry."""

    entity: str
    #: pandas ``DataFrame.query`` expression over the entity table (after person joins)
    where: str | None = None
    #: share of the selected entities the registry holds
    coverage: float = Field(default=1.0, gt=0, le=1)
    #: extra defect kinds this registry is prone to, with a rate multiplier
    defects: dict[str, float] = Field(default_factory=dict)

    @field_validator("entity")
    @classmethod
    def _entity_known(cls, v: str) -> str:
        if v not in SYNTH_ENTITIES:
            raise ValueError(f"unknown entity {v!r}; one of {', '.join(SYNTH_ENTITIES)}")
        return v


class RegistrySpec(_Frozen):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_ru: str
    name_en: str
    agency: str
    owner_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    domain: Domain
    cadence: Cadence
    description: str = ""
    #: the registry's data feeds families/scoring (ERROR checks then block downstream)
    feeds_scoring: bool = False
    #: the registry holds living persons only (enrolments, payments, current registrations): a
    #: subject the population register knows to be dead is a defect
    living_only: bool = False
    source: SourceSpec
    #: canonical column that identifies a record inside the registry
    record_id: str
    columns: tuple[ColumnSpec, ...]
    synth: SynthSpec

    @model_validator(mode="after")
    def _check(self) -> RegistrySpec:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns: duplicate canonical column(s) {', '.join(dupes)}")
        sources = [c.source for c in self.columns]
        dupes = sorted({s for s in sources if sources.count(s) > 1})
        if dupes:
            raise ValueError(f"columns: agency column(s) mapped twice: {', '.join(dupes)}")
        if self.record_id not in names:
            raise ValueError(f"record_id: {self.record_id!r} is not a canonical column")
        roles = [c.role for c in self.columns if c.role]
        dupes = sorted({r for r in roles if roles.count(r) > 1})
        if dupes:
            raise ValueError(f"columns: role(s) used twice: {', '.join(dupes)}")
        if self.source.location == "database" and not self.source.table:
            raise ValueError("source.table is required for a database registry")
        return self

    # ------------------------------------------------------------------ derived views
    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"registry {self.code}: no canonical column {name!r}")

    @property
    def file_name(self) -> str:
        return self.source.file or f"{self.code}.{self.source.format}"

    @property
    def person_groups(self) -> tuple[str, ...]:
        """Person reference groups in column order (e.g. ("husband", "wife"))."""
        seen: list[str] = []
        for c in self.columns:
            g = c.role_group
            if g and g != "animal" and g not in seen:
                seen.append(g)
        return tuple(seen)

    @property
    def has_animals(self) -> bool:
        return any(c.role_group == "animal" for c in self.columns)

    def role_columns(self, group: str) -> dict[str, str]:
        """part -> canonical column name for one reference group."""
        return {c.role_part: c.name for c in self.columns if c.role_group == group}

    @property
    def max_age_days(self) -> int:
        return CADENCE_DAYS[self.cadence]


class Region(_Frozen):
    iso: str = Field(pattern=r"^KZ-\d\d$")
    kato: str = Field(pattern=r"^\d\d$")
    name_ru: str
    name_en: str
    kind: Literal["oblast", "city"]
    population_share: float = Field(gt=0, lt=1)
    urban_share: float = Field(ge=0, le=1)
    #: the administrative centre (a city) used for addresses
    centre_ru: str
    #: median monthly income per capita, KZT (used by the generator and by ASP's poverty line)
    median_income: int = Field(gt=0)


class MoneyYear(_Frozen):
    year: int
    subsistence_minimum: int = Field(gt=0)
    mrp: int = Field(gt=0)


class Catalog(_Frozen):
    registries: tuple[RegistrySpec, ...]
    regions: tuple[Region, ...]
    money: tuple[MoneyYear, ...]

    def registry(self, code: str) -> RegistrySpec:
        for r in self.registries:
            if r.code == code:
                return r
        raise KeyError(f"no registry {code!r} in the catalog")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.registries)

    def region(self, iso: str) -> Region:
        for r in self.regions:
            if r.iso == iso:
                return r
        raise KeyError(f"no region {iso!r}")

    def money_for(self, year: int) -> MoneyYear:
        for m in self.money:
            if m.year == year:
                return m
        raise KeyError(f"no subsistence minimum / MRP for {year} in seeds/money.yaml")

    def money_on(self, day: dt.date) -> MoneyYear:
        return self.money_for(day.year)
