"""The scoring seeds, typed and validated: ``seeds/scoring/welfare.yaml`` (how material welfare is
estimated), ``ae_map.yaml`` (the A–E map) and ``pilot_criteria.yaml`` (the six-category pilot).

A wrong seed fails loudly when it loads, with a message naming the file and the field: unknown
feature names (checked against the data dictionary ``seeds/family_features.yaml`` when it
exists), weights that do not add up, thresholds out of order, a missing version.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from family_pipeline.catalog import default_seeds_dir
from family_pipeline.lib.seeds import read_seed_yaml, validate_seed

__all__ = [
    "AeMap",
    "Criterion",
    "DERIVED",
    "Dimension",
    "Indicator",
    "PilotModel",
    "PilotRule",
    "ScoringSeedError",
    "ScoringSeeds",
    "WelfareSpec",
    "known_features",
    "load_ae_map",
    "load_pilot",
    "load_scoring_seeds",
    "load_welfare",
    "scoring_seeds",
]

#: quantities the scoring computes from family_features (usable wherever a feature name is)
DERIVED = {
    "income_before_asp_pc": "cash income per member before targeted social assistance, KZT/month",
    "imputed_income_pc": "cash per member the registries do not show (an LLP's yield, a missing pension), KZT/month",
    "produce_pc": "estimated monthly value of home produce (livestock, land) per member, KZT",
    "consumption_estimate_pc": "estimated consumption per member: realised income plus home produce, KZT/month",
    "poverty_line": "the family's poverty line (regional median share, floored by the subsistence minimum), KZT/month",
    "welfare_ratio": "estimated consumption per member divided by the poverty line",
    "subsistence_minimum": "the subsistence minimum on the snapshot date, KZT/month",
}
DIMENSIONS = ("economic", "social", "housing", "health", "education")
CATEGORIES = ("E", "D", "C", "B", "A")


class ScoringSeedError(ValueError):
    """A scoring seed is wrong; the message names the file and the field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _version(v: str) -> str:
    if not str(v).strip():
        raise ValueError("a version is required")
    return str(v)


# ---------------------------------------------------------------- welfare.yaml
class PovertyLine(_Frozen):
    median_share: float = Field(gt=0, lt=1)
    subsistence_share: float = Field(gt=0, le=2)


class IncomeSpec(_Frozen):
    feature: str
    subtract: tuple[str, ...] = ()
    realisation: float = Field(gt=0, le=1.5)


class ProduceItem(_Frozen):
    feature: str
    minus: tuple[str, ...] = ()
    kzt_per_unit: float = Field(ge=0)
    cap: float | None = Field(default=None, gt=0)
    meaning: str


class ImputedIncome(_Frozen):
    """Cash the family has although the registries read do not show it: ``kzt_per_unit`` per
    unit of ``feature``, counted only where ``when_zero`` (a feature) is 0, when given."""

    feature: str
    when_zero: str | None = None
    kzt_per_unit: float = Field(ge=0)
    meaning: str


class WelfareSpec(_Frozen):
    version: str
    poverty_line: PovertyLine
    income: IncomeSpec
    imputed_income: tuple[ImputedIncome, ...] = ()
    produce: tuple[ProduceItem, ...]

    _v = field_validator("version", mode="before")(_version)

    def features(self) -> set[str]:
        names = {self.income.feature, *self.income.subtract}
        for item in self.produce:
            names |= {item.feature, *item.minus}
        for extra in self.imputed_income:
            names |= {extra.feature} | ({extra.when_zero} if extra.when_zero else set())
        return names


# ---------------------------------------------------------------- ae_map.yaml
class Indicator(_Frozen):
    """One measured aspect of a dimension: a feature (optionally divided by another), mapped to a
    0..100 score (100 = no concern) by linear interpolation between ``points`` (x, score)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    feature: str
    divide_by: str | None = None
    points: tuple[tuple[float, float], ...] = Field(min_length=2)
    weight: float = Field(gt=0, le=1)
    reason: str | None = None
    """plain words shown when the indicator's score is below ``reason_below``"""
    reason_below: float = Field(default=50, gt=0, le=100)
    strength: str | None = None
    """plain words shown (for a family with no concern) when the score is at least ``strength_from``"""
    strength_from: float = Field(default=90, ge=0, le=100)

    @field_validator("points")
    @classmethod
    def _increasing(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        xs = [p[0] for p in points]
        if any(b <= a for a, b in zip(xs, xs[1:])):
            raise ValueError(f"x values must increase strictly, got {xs}")
        if any(not 0 <= p[1] <= 100 for p in points):
            raise ValueError("scores must be between 0 and 100")
        return points


class Dimension(_Frozen):
    weight: float = Field(gt=0, le=1)
    meaning: str
    indicators: tuple[Indicator, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights(self) -> Dimension:
        total = sum(i.weight for i in self.indicators)
        if abs(total - 1) > 1e-6:
            raise ValueError(f"indicator weights must add up to 1, got {total:g}")
        names = [i.name for i in self.indicators]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate indicator names {names}")
        return self


class AeMap(_Frozen):
    version: str
    top_reasons: int = Field(ge=1, le=10)
    no_concern: str
    """the reason text of a family where no indicator is of concern and none is a strength"""
    dimensions: dict[Literal["economic", "social", "housing", "health", "education"], Dimension]
    thresholds: dict[Literal["E", "D", "C", "B"], float]
    """the score *below* which a family is in that category (A: at or above B's)"""
    category_meaning: dict[Literal["A", "B", "C", "D", "E"], str]

    _v = field_validator("version", mode="before")(_version)

    @model_validator(mode="after")
    def _consistent(self) -> AeMap:
        missing = [d for d in DIMENSIONS if d not in self.dimensions]
        if missing:
            raise ValueError(f"dimensions: missing {missing}")
        total = sum(d.weight for d in self.dimensions.values())
        if abs(total - 1) > 1e-6:
            raise ValueError(f"dimensions.*.weight: dimension weights must add up to 1, got {total:g}")
        if set(self.thresholds) != {"E", "D", "C", "B"}:
            raise ValueError("thresholds need E, D, C and B")
        values = [self.thresholds[c] for c in ("E", "D", "C", "B")]
        if any(b <= a for a, b in zip(values, values[1:])) or not 0 < values[0] or values[-1] > 100:
            raise ValueError(f"thresholds must rise strictly within 0..100 from E to B, got {values}")
        return self

    def features(self) -> set[str]:
        return {n for d in self.dimensions.values() for i in d.indicators for n in (i.feature, i.divide_by) if n}


# ---------------------------------------------------------------- pilot_criteria.yaml
class Criterion(_Frozen):
    """A yes/no statement about a family: ``feature`` (optionally divided by ``divide_by``)
    compared with ``value`` in ``unit`` (KZT, or a multiple of the subsistence minimum or of the
    poverty line, or a plain number)."""

    code: str = Field(pattern=r"^K\d\d$")
    kind: Literal["economic", "socio-demographic"]
    text: str
    """the criterion in plain words, as shown in the reasons"""
    feature: str
    divide_by: str | None = None
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float
    unit: Literal["number", "kzt", "subsistence_minimum", "poverty_line"] = "number"


class PilotRule(_Frozen):
    """Places a family into ``category`` when every given condition holds."""

    category: int = Field(ge=1, le=6)
    meaning: str
    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()
    at_least: int | None = Field(default=None, ge=1)
    of: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_condition(self) -> PilotRule:
        if not (self.all_of or self.any_of or self.of):
            raise ValueError("a rule needs all_of, any_of or at_least/of")
        if (self.at_least is None) != (not self.of):
            raise ValueError("at_least and of go together")
        if self.at_least is not None and self.at_least > len(self.of):
            raise ValueError(f"at_least {self.at_least} of only {len(self.of)} criteria")
        return self

    def codes(self) -> set[str]:
        return {*self.all_of, *self.any_of, *self.none_of, *self.of}


class PilotModel(_Frozen):
    version: str
    criteria: tuple[Criterion, ...]
    rules: tuple[PilotRule, ...] = Field(min_length=1)
    """first matching rule wins, in this order"""
    default_category: int = Field(ge=1, le=6)
    default_reason: str
    category_meaning: dict[int, str]

    _v = field_validator("version", mode="before")(_version)

    @model_validator(mode="after")
    def _consistent(self) -> PilotModel:
        codes = [c.code for c in self.criteria]
        if len(codes) != 23:
            raise ValueError(f"criteria: the pilot has 23 criteria, got {len(codes)}")
        if len(set(codes)) != len(codes):
            raise ValueError(f"criteria.*.code: duplicate criterion codes: {sorted(c for c in set(codes) if codes.count(c) > 1)}")
        for k, rule in enumerate(self.rules):
            unknown = sorted(rule.codes() - set(codes))
            if unknown:
                raise ValueError(f"rules.{k} (category {rule.category}) names unknown criteria {unknown}")
        reachable = {r.category for r in self.rules} | {self.default_category}
        if reachable != set(range(1, 7)):
            raise ValueError(f"rules: categories 1..6 must all be reachable, got {sorted(reachable)}")
        if set(self.category_meaning) != set(range(1, 7)):
            raise ValueError("category_meaning: needs categories 1..6")
        return self

    def criterion(self, code: str) -> Criterion:
        return next(c for c in self.criteria if c.code == code)

    def features(self) -> set[str]:
        return {n for c in self.criteria for n in (c.feature, c.divide_by) if n}


class ScoringSeeds(_Frozen):
    welfare: WelfareSpec
    ae_map: AeMap
    pilot: PilotModel

    def required_features(self) -> list[str]:
        """The family_features columns the models read (derived quantities excluded)."""
        used = self.welfare.features() | self.ae_map.features() | self.pilot.features()
        return sorted((used - set(DERIVED)) | {"family_id", "region", "settlement_type", "members"})

    @property
    def ae_version(self) -> str:
        return f"ae-map {self.ae_map.version} (welfare {self.welfare.version})"

    @property
    def pilot_version(self) -> str:
        return f"pilot {self.pilot.version} (welfare {self.welfare.version})"


# ---------------------------------------------------------------- loading
def _load(path: Path, model: type[BaseModel]):
    raw = read_seed_yaml(path, ScoringSeedError)
    if not isinstance(raw, dict):
        raise ScoringSeedError(f"{path}: expected a mapping at the top level")
    if "version" not in raw or raw["version"] in (None, ""):
        raise ScoringSeedError(f"{path}: field 'version': a version is required")
    return validate_seed(path, raw, model, ScoringSeedError)


def known_features(seeds_dir: Path) -> set[str] | None:
    """Parameter names of the data dictionary ``seeds/family_features.yaml`` (None if absent)."""
    path = seeds_dir / "family_features.yaml"
    if not path.exists():
        return None
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = raw.get("features") if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        raise ScoringSeedError(f"{path}: field 'features': expected the list of parameters")
    return {e["name"] for e in entries if isinstance(e, dict) and "name" in e}


def _check_names(path: Path, used: dict[str, str], known: set[str] | None) -> None:
    if known is None:
        return
    allowed = known | set(DERIVED) | {"family_id"}
    for name, where in sorted(used.items()):
        if name not in allowed:
            raise ScoringSeedError(f"{path}: field {where!r}: unknown feature {name!r} "
                                   f"(not in seeds/family_features.yaml nor a derived quantity)")


def load_welfare(path: Path, known: set[str] | None = None) -> WelfareSpec:
    spec = _load(path, WelfareSpec)
    used = {spec.income.feature: "income.feature"}
    used |= {n: f"income.subtract.{k}" for k, n in enumerate(spec.income.subtract)}
    for k, extra in enumerate(spec.imputed_income):
        used |= {extra.feature: f"imputed_income.{k}.feature"}
        if extra.when_zero:
            used |= {extra.when_zero: f"imputed_income.{k}.when_zero"}
    for k, item in enumerate(spec.produce):
        used |= {item.feature: f"produce.{k}.feature"} | {n: f"produce.{k}.minus" for n in item.minus}
    _check_names(path, used, known)
    return spec


def load_ae_map(path: Path, known: set[str] | None = None) -> AeMap:
    spec = _load(path, AeMap)
    used: dict[str, str] = {}
    for dname, dim in spec.dimensions.items():
        for k, ind in enumerate(dim.indicators):
            used.setdefault(ind.feature, f"dimensions.{dname}.indicators.{k}.feature")
            if ind.divide_by:
                used.setdefault(ind.divide_by, f"dimensions.{dname}.indicators.{k}.divide_by")
    _check_names(path, used, known)
    return spec


def load_pilot(path: Path, known: set[str] | None = None) -> PilotModel:
    spec = _load(path, PilotModel)
    used: dict[str, str] = {}
    for k, c in enumerate(spec.criteria):
        used.setdefault(c.feature, f"criteria.{k}.feature ({c.code})")
        if c.divide_by:
            used.setdefault(c.divide_by, f"criteria.{k}.divide_by ({c.code})")
    _check_names(path, used, known)
    return spec


def load_scoring_seeds(seeds_dir: Path | None = None) -> ScoringSeeds:
    seeds = Path(seeds_dir) if seeds_dir else default_seeds_dir()
    known = known_features(seeds)
    folder = seeds / "scoring"
    return ScoringSeeds(welfare=load_welfare(folder / "welfare.yaml", known),
                        ae_map=load_ae_map(folder / "ae_map.yaml", known),
                        pilot=load_pilot(folder / "pilot_criteria.yaml", known))


@functools.cache
def scoring_seeds() -> ScoringSeeds:
    """The repository's scoring seeds, loaded once."""
    return load_scoring_seeds()
