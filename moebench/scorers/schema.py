"""Typed scorer schemas: the parameters a scorer takes and the case fields it reads.

Each scorer declares two pydantic models. `ScorerParams` subclasses (extra keys forbidden,
strict types) check the `scorer: {type: NAME, ...}` mapping; `CaseFields` subclasses check
the case's fields merged over those parameters (a case may override a parameter such as
`tolerance`). The suite loader validates both when it reads a suite, so a wrong type is a
`file:line: field: message` at load time, never a crash in the middle of a run; the docs
(`docs/suites.md`) are generated from the same models. Adding a scorer (e.g. `judge`) is one
`@scorer("judge", params=JudgeParams, case=JudgeCase)` with two such models.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


#: a number that is not NaN/inf (YAML `.nan`, `.inf`)
FiniteFloat = Annotated[float, AfterValidator(_finite)]


class ScorerParams(BaseModel):
    """Base for a scorer's parameters: unknown keys are typos, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CaseFields(BaseModel):
    """Base for the case fields a scorer reads: other keys are template fields (allowed)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class NoParams(ScorerParams):
    """A scorer without parameters."""


class NoFields(CaseFields):
    """A scorer that reads no case field."""


class MatchParams(ScorerParams):
    """The normalisation the text scorers share (a case may override either)."""

    case_sensitive: bool = Field(default=False, description="compare letter case too")
    normalize_whitespace: bool = Field(
        default=True, description="runs of spaces/newlines count as one space; ends trimmed")


def untyped(name: str, base: type[BaseModel], fields: tuple[str, ...]) -> type[BaseModel]:
    """A model with optional, any-valued `fields` (for scorers registered by names only)."""
    spec: dict[str, Any] = {field: (Any, None) for field in fields}
    return create_model(name, __base__=base, **spec)


_MESSAGES = {
    "int_type": "must be an integer", "int_parsing": "must be an integer",
    "float_type": "must be a number", "float_parsing": "must be a number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be text", "list_type": "must be a list",
    "dict_type": "must be a mapping", "model_type": "must be a mapping",
    "finite_number": "must be a finite number",
}


def describe(item: Any) -> str:
    """A pydantic error item as a short message that names the fix."""
    kind, ctx = item["type"], item.get("ctx") or {}
    if kind in _MESSAGES:
        message = _MESSAGES[kind]
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤",
                "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "")
        message = f"must be {sign} {bound}"
    elif kind == "value_error":
        message = str(ctx.get("error", item["msg"]))
    else:
        message = item["msg"][0].lower() + item["msg"][1:]
    got = repr(item.get("input"))
    return f"{message} (got {got if len(got) <= 60 else got[:57] + '...'})"


def errors(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    """Validate `data` against `model`: (loc, error type, message) per problem; [] when valid."""
    try:
        model.model_validate(data)
    except ValidationError as error:
        return [(tuple(item["loc"]), item["type"], describe(item)) for item in error.errors()]
    except (OverflowError, ValueError, RecursionError) as error:
        return [((), "value_error", f"cannot check this value: {error}")]
    return []
