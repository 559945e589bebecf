"""The data dictionary of ``family_features`` (``seeds/family_features.yaml``), loaded and validated.

Every column of the features table is listed there with its meaning, unit, dtype and source
registries, in table order; the reference values the features are computed with (business
margin, pension ages, the ASP poverty-line shares, livestock units, …) sit in its
``parameters`` section. Loading fails loudly, naming the feature and the field.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from family_pipeline.catalog import Catalog, CatalogError, catalog, default_seeds_dir

__all__ = [
    "FEATURES_FILE",
    "GUARANTEED_FEATURES",
    "FeatureDictionary",
    "FeatureSpec",
    "FeatureParameters",
    "FormationSettings",
    "feature_dictionary",
    "load_feature_dictionary",
]

FEATURES_FILE = "family_features.yaml"

#: names promised to later stages (CONTRACT.md); the dictionary must list every one of them
GUARANTEED_FEATURES = (
    "family_id", "region", "settlement_type", "members", "adults", "children_under_18", "children_under_1",
    "children_1_6", "children_school_age", "pensioners", "disabled_members", "disabled_children",
    "disabled_group1", "students_university", "students_college", "working_adults", "unemployed_adults",
    "income_total", "income_pc", "income_wage_pc", "income_pension_pc", "income_benefits_pc",
    "income_business_pc", "housing_units", "housing_area_m2", "housing_area_pc", "owned_housing_last_5y",
    "vehicles", "vehicle_value", "land_plots", "land_area_ha", "livestock_heads", "livestock_cattle",
    "businesses_active", "overdue_loans", "overdue_debt", "tax_arrears", "benefits_received", "receives_asp",
    "large_family", "single_parent", "criminal_record_members", "psychiatric_members", "narcological_members",
    "health_uninsured_members", "head_age", "head_sex",
)
#: sources that are not registries: the stage's own table and seed files
OWN_SOURCES = ("family_members", "families")
SPECIES = ("cattle", "sheep", "goat", "horse", "camel")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureSpec(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    meaning: str = Field(min_length=3)
    unit: str = Field(min_length=1)
    dtype: Literal["int64", "float64", "bool", "str"]
    sources: tuple[str, ...] = Field(min_length=1)


class FeatureParameters(_Frozen):
    business_income_margin: float = Field(gt=0, le=1)
    pension_contribution_rate: float = Field(gt=0, le=1)
    pension_age_men: int = Field(ge=40, le=80)
    pension_age_women: int = Field(ge=40, le=80)
    large_family_minors: int = Field(ge=2)
    housing_lookback_years: int = Field(ge=1)
    income_rich_subsistence_minimums: float = Field(gt=0)
    asp_median_share: float = Field(gt=0, lt=1)
    asp_subsistence_floor: float = Field(gt=0, le=1)
    livestock_units: dict[str, float]

    @model_validator(mode="after")
    def _species(self) -> FeatureParameters:
        if set(self.livestock_units) != set(SPECIES):
            raise ValueError(f"livestock_units must give exactly {list(SPECIES)}")
        return self


class FormationSettings(_Frozen):
    """Thresholds of the family rules (see ``family_pipeline.families.formation``)."""

    adult_age: int = Field(ge=14, le=21)
    student_max_age: int = Field(ge=18, le=30)
    cohabitation_min_gap: int = Field(ge=-30, le=0)
    cohabitation_max_gap: int = Field(ge=0, le=40)
    cohabitation_usual_gap: int = Field(ge=-10, le=20)
    parent_usual_age: int = Field(ge=14, le=60)
    max_dependency_passes: int = Field(ge=1, le=10)


class FeatureDictionary(_Frozen):
    version: int = Field(ge=1)
    formation: FormationSettings
    parameters: FeatureParameters
    features: tuple[FeatureSpec, ...] = Field(min_length=100)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def dtypes(self) -> dict[str, str]:
        return {f.name: f.dtype for f in self.features}

    def feature(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in {FEATURES_FILE}")


def _check(dictionary: FeatureDictionary, cat: Catalog, path: Path) -> None:
    seen: set[str] = set()
    for f in dictionary.features:
        if f.name in seen:
            raise CatalogError(f"{path.name}: feature {f.name!r} listed twice")
        seen.add(f.name)
        for source in f.sources:
            if source in OWN_SOURCES or source in cat.codes:
                continue
            if source.startswith("seeds/") and (path.parent.parent / source).exists():
                continue
            raise CatalogError(f"{path.name}: feature {f.name!r} field 'sources': unknown source {source!r} "
                               "(a registry code, family_members, or a seeds/ file)")
    missing = [g for g in GUARANTEED_FEATURES if g not in seen]
    if missing:
        raise CatalogError(f"{path.name}: guaranteed features missing: {missing}")
    if dictionary.features[0].name != "family_id":
        raise CatalogError(f"{path.name}: the first feature must be family_id")


def load_feature_dictionary(seeds_dir: Path | None = None, cat: Catalog | None = None) -> FeatureDictionary:
    path = Path(seeds_dir or default_seeds_dir()) / FEATURES_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read the feature dictionary: {exc}") from exc
    try:
        dictionary = FeatureDictionary.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        if len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
            items = (raw or {}).get("features") or []
            name = items[loc[1]].get("name") if loc[1] < len(items) and isinstance(items[loc[1]], dict) else None
            where = f"feature {name or '#' + str(loc[1] + 1)!r}" + (f" field {'.'.join(map(str, loc[2:]))!r}" if loc[2:] else "")
        else:
            where = "field " + repr(".".join(map(str, loc)))
        raise CatalogError(f"{path.name}: {where}: {first['msg']}") from exc
    _check(dictionary, cat or catalog(), path)
    return dictionary


@functools.cache
def feature_dictionary() -> FeatureDictionary:
    """The repository's feature dictionary, loaded once per process."""
    return load_feature_dictionary()
