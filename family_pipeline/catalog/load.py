"""Load ``seeds/`` once into typed objects, failing loudly and precisely."""

from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from family_pipeline.catalog.model import Catalog, MoneyYear, Region, RegistrySpec


class CatalogError(ValueError):
    """The catalog or the reference data is wrong; the message names the place."""


def default_seeds_dir() -> Path:
    """``$FAMILY_PIPELINE_SEEDS`` or the repository's ``seeds/`` folder."""
    env = os.environ.get("FAMILY_PIPELINE_SEEDS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "seeds"


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return "; ".join(parts)


def _registry_label(raw: object, path: Path, index: int) -> str:
    code = raw.get("code") if isinstance(raw, dict) else None
    return f"registry {code!r} ({path.name} #{index + 1})" if code else f"{path.name} entry #{index + 1}"


def _column_label(raw: dict, loc: tuple) -> str:
    """Turn ('columns', 3, 'type') into "column 'amount' field 'type'"."""
    if len(loc) >= 2 and loc[0] == "columns" and isinstance(loc[1], int):
        cols = raw.get("columns") or []
        name = cols[loc[1]].get("name") if loc[1] < len(cols) and isinstance(cols[loc[1]], dict) else None
        rest = ".".join(str(x) for x in loc[2:])
        return f"column {name or '#' + str(loc[1] + 1)!r}" + (f" field {rest!r}" if rest else "")
    return "field " + repr(".".join(str(x) for x in loc)) if loc else "entry"


def load_registries(folder: Path) -> tuple[RegistrySpec, ...]:
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise CatalogError(f"no registry files (*.yaml) in {folder}")
    specs: list[RegistrySpec] = []
    where: dict[str, str] = {}
    for path in files:
        try:
            entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(entries, list):
            raise CatalogError(f"{path}: expected a list of registries")
        for i, raw in enumerate(entries):
            label = _registry_label(raw, path, i)
            try:
                spec = RegistrySpec.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise CatalogError(
                    f"{label}: {_column_label(raw, tuple(first['loc']))}: {first['msg']}"
                    + (f" (and {len(exc.errors()) - 1} more: {_describe(exc)})" if len(exc.errors()) > 1 else "")
                ) from exc
            _check_synth_mapping(spec, label)
            if spec.code in where:
                raise CatalogError(f"{label}: duplicate code {spec.code!r}, first defined in {where[spec.code]}")
            where[spec.code] = path.name
            specs.append(spec)
    return tuple(specs)


def _check_synth_mapping(spec: RegistrySpec, label: str) -> None:
    """Every column must come from somewhere in the synthetic country's entity table."""
    from family_pipeline.synth.entities import ENTITY_COLUMNS, group_id_column

    attrs = ENTITY_COLUMNS[spec.synth.entity]
    for col in spec.columns:
        if col.synth is not None:
            continue
        if col.role is not None:
            group = col.role_group
            if group == "animal":
                if spec.synth.entity != "animals":
                    raise CatalogError(f"{label}: column {col.name!r} field 'role': animal roles need entity 'animals'")
            elif group_id_column(group) not in attrs:
                raise CatalogError(
                    f"{label}: column {col.name!r} field 'role': entity {spec.synth.entity!r} has no "
                    f"{group_id_column(group)!r} to resolve group {group!r}"
                )
            continue
        if col.name not in attrs:
            raise CatalogError(
                f"{label}: column {col.name!r} maps to unknown column {col.name!r} of entity "
                f"{spec.synth.entity!r} (give it a 'synth' value or a 'role')"
            )


def load_regions(path: Path) -> tuple[Region, ...]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(Region.model_validate(row))
        except ValidationError as exc:
            raise CatalogError(f"{path.name} row {i + 2} ({row.get('iso')}): {_describe(exc)}") from exc
    total = sum(r.population_share for r in out)
    if abs(total - 1.0) > 1e-6:
        raise CatalogError(f"{path.name}: population shares sum to {total:.6f}, expected 1")
    return tuple(out)


def load_money(path: Path) -> tuple[MoneyYear, ...]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return tuple(MoneyYear.model_validate(r) for r in raw["years"])
    except (ValidationError, KeyError, TypeError) as exc:
        raise CatalogError(f"{path.name}: {exc}") from exc


def load_catalog(seeds_dir: Path | None = None) -> Catalog:
    seeds = Path(seeds_dir) if seeds_dir else default_seeds_dir()
    if not seeds.is_dir():
        raise CatalogError(f"seeds folder not found: {seeds}")
    return Catalog(
        registries=load_registries(seeds / "registries"),
        regions=load_regions(seeds / "regions.csv"),
        money=load_money(seeds / "money.yaml"),
    )


@functools.cache
def catalog() -> Catalog:
    """The repository's catalog, loaded once per process."""
    return load_catalog()
