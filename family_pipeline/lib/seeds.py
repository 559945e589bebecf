"""Reading a seed file (YAML) into a validated pydantic model, with errors that name the file
and the field — shared by every stage whose rules live in ``seeds/``."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["read_seed_yaml", "validate_seed"]

Model = TypeVar("Model", bound=BaseModel)


def read_seed_yaml(path: Path, error: type[Exception]) -> object:
    """The parsed YAML of ``path``; a missing or malformed file raises ``error`` naming it."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


def _field(loc: tuple) -> str:
    return ".".join(str(x) for x in loc) or "(top level)"


def validate_seed(path: Path, raw: object, model: type[Model], error: type[Exception]) -> Model:
    """``raw`` as ``model``; the first validation problem raises ``error`` with the file, the
    field's dotted path and how many more problems there are."""
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        where = f"field {_field(tuple(first['loc']))!r}: " if first["loc"] else ""
        raise error(f"{path}: {where}{message}{more}") from exc
