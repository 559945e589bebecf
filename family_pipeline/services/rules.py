"""The rules of the services stage, loaded from ``seeds/services/*.yaml`` into typed objects.

Each file is validated once; a wrong value fails loudly with the file and field. Nothing in the
services code hard-codes an age limit, a window or an amount: it all comes from here (money —
the subsistence minimum and MRP of a year — from ``catalog().money_on(date)``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from family_pipeline.catalog.load import CatalogError, default_seeds_dir
from family_pipeline.lib.seeds import read_seed_yaml, validate_seed

__all__ = [
    "HOUSING_REASONS",
    "BenefitRules",
    "HousingRules",
    "JurorRules",
    "ServiceRule",
    "benefit_rules",
    "housing_rules",
    "juror_rules",
    "load_rules",
]

#: the failing criteria of the housing-queue audit, in report order
HOUSING_REASONS = ("owned_housing", "other_region", "no_registration", "registered_too_briefly",
                   "not_citizen", "dead")
REGION_CODE = r"^KZ-\d{2}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------ housing queue
class Ownership(_Frozen):
    lookback_years: int = Field(gt=0, le=50)
    residential_kinds: tuple[str, ...] = Field(min_length=1)


class Registration(_Frozen):
    long_registration_regions: tuple[str, ...]
    minimum_years: int = Field(ge=0, le=50)


class Citizenship(_Frozen):
    eligible: tuple[str, ...] = Field(min_length=1)


class EligibleOutsideQueue(_Frozen):
    minimum_age: int = Field(ge=0, le=120)
    roles: tuple[Literal["head", "spouse", "child", "single"], ...] = Field(min_length=1)


class HousingRules(_Frozen):
    queue_registries: tuple[str, ...] = Field(min_length=1)
    queue_registry_regions: dict[str, str] = {}
    ownership: Ownership
    registration: Registration
    citizenship: Citizenship
    reasons: dict[str, str]
    eligible_outside_queue: EligibleOutsideQueue

    @model_validator(mode="after")
    def _reasons_known(self) -> HousingRules:
        unknown = set(self.queue_registry_regions) - set(self.queue_registries)
        if unknown:
            raise ValueError(f"queue_registry_regions names registries that are not queues: {sorted(unknown)}")
        if tuple(self.reasons) != HOUSING_REASONS:
            raise ValueError(f"reasons must be exactly {list(HOUSING_REASONS)} in this order, got {list(self.reasons)}")
        return self


# ------------------------------------------------------------------ jurors
class JurorRules(_Frozen):
    legal_basis: str = Field(min_length=10)
    minimum_age: int = Field(ge=18, le=100)
    flag_over_age: int = Field(ge=18, le=120)
    citizenship_eligible: tuple[str, ...] = Field(min_length=1)
    order_seed: int
    exclusions: dict[str, tuple[str, ...]]
    flags: dict[str, tuple[str, ...]]
    age_bands: tuple[int, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> JurorRules:
        if self.flag_over_age < self.minimum_age:
            raise ValueError("flag_over_age must not be below minimum_age")
        if list(self.age_bands) != sorted(set(self.age_bands)) or self.age_bands[0] != self.minimum_age:
            raise ValueError("age_bands must be increasing and start at minimum_age")
        for needed in ("under_25", "criminal_record", "not_citizen"):
            if needed not in self.exclusions:
                raise ValueError(f"exclusions must include {needed!r}")
        if "over_65" not in self.flags:
            raise ValueError("flags must include 'over_65'")
        return self


# ------------------------------------------------------------------ benefits
class ServiceRule(_Frozen):
    """One proactive service: who is eligible (a unit and a condition over family features or
    person attributes), the amount formula if it pays money, and the legal basis in words."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    legal_basis: str = Field(min_length=10)
    unit: Literal["family", "person"]
    kind: Literal["cash", "in_kind"]
    recipient_registries: tuple[str, ...] = ()
    parameters: dict[str, float | int | str] = {}
    category_gate: tuple[int, ...] = ()
    """pilot categories that may receive it (empty: every category but the excluded ones)"""


class BenefitRules(_Frozen):
    excluded_pilot_categories: tuple[int, ...]
    period_months: int = Field(ge=1, le=24)
    services: tuple[ServiceRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> BenefitRules:
        codes = [s.code for s in self.services]
        if len(codes) != len(set(codes)):
            raise ValueError(f"duplicate service codes: {sorted({c for c in codes if codes.count(c) > 1})}")
        return self

    def service(self, code: str) -> ServiceRule:
        for s in self.services:
            if s.code == code:
                return s
        raise KeyError(code)


# ------------------------------------------------------------------ loading
def load_rules(path: Path, model: type[BaseModel]) -> BaseModel:
    return validate_seed(path, read_seed_yaml(path, CatalogError), model, CatalogError)


def _services_dir(seeds: Path | None) -> Path:
    return (seeds or default_seeds_dir()) / "services"


@functools.cache
def housing_rules(seeds: Path | None = None) -> HousingRules:
    return load_rules(_services_dir(seeds) / "housing_queue.yaml", HousingRules)  # type: ignore[return-value]


@functools.cache
def juror_rules(seeds: Path | None = None) -> JurorRules:
    return load_rules(_services_dir(seeds) / "jurors.yaml", JurorRules)  # type: ignore[return-value]


@functools.cache
def benefit_rules(seeds: Path | None = None) -> BenefitRules:
    return load_rules(_services_dir(seeds) / "benefits.yaml", BenefitRules)  # type: ignore[return-value]
