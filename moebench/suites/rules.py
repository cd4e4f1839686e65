"""Suite rules pydantic cannot see: scorer specs, the case fields scorers need, templates.

Private to `moebench.suites.loader`. Each check raises `Invalid` with a one-line message naming the
fix; the loader records it in `Problems` at the YAML path being checked (or at `Invalid.key`
below it), and `Problems.lines()` formats them as `file:line: field: message`.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from moebench.scorers.schema import errors as schema_errors
from moebench.suites.yaml_lines import YamlDoc, YamlPath
from moebench.types import ScorerSpec


class Invalid(Exception):
    """One problem at the path being checked (caught and recorded by the caller).

    `key` names the offending key below that path when there is one (e.g. `expected`).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class Problems:
    """Problems of one file, each at a YAML path; formatted with lines from the doc."""

    file: str
    doc: YamlDoc | None = None
    items: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, path: YamlPath, message: str, line: int | None = None,
            name: str | None = None) -> None:
        """Record `message` at `path` (line looked up unless given; `name` overrides the field)."""
        if line is None:
            line = self.doc.line_of(path) if self.doc else 1
        self.items.append((line, name or field_name(path), message))

    def attempt(self, path: YamlPath, check: Any, *args: Any) -> tuple[Any, bool]:
        """`check(*args)`; an Invalid it raises is recorded at `path` (or its key below)."""
        try:
            return check(*args), True
        except Invalid as error:
            self.add((*path, error.key) if error.key else path, str(error))
            return None, False

    def lines(self) -> list[str]:
        """Every problem as `file:line: field: message`, in line order."""
        ordered = sorted(self.items, key=lambda item: item[0])  # stable: same line keeps order
        return [f"{self.file}:{line}: {name}: {_printable(message)}"
                for line, name, message in ordered]


def _printable(text: str) -> str:
    """One line: control characters (a newline or tab inside a key) written as escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def field_name(path: YamlPath) -> str:
    """`("tasks", 1, "cases", 4)` → `tasks[1].cases[4]`; the root is `suite`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):  # a key with spaces, dots or controls: quoted
            text += f"[{_printable(repr(part))}]"
        else:
            text += f".{part}" if text else part
    return text or "suite"


_PLAIN_KEY = re.compile(r"[^\s\[\].]+")


def hint(word: str, known: Iterable[str]) -> str:
    """`(did you mean 'prompt'? known: a, b)` for a misspelt `word`."""
    known = sorted(known)
    close = difflib.get_close_matches(word, known, n=1)
    guess = f"did you mean '{close[0]}'? " if close else ""
    return f"({guess}known: {', '.join(known)})"


def type_name(value: Any) -> str:
    """How to name a YAML value's type in a message ("a list", "text", "int")."""
    names: dict[type, str] = {list: "a list", str: "text", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


# ---- scorers ----


def scorer_spec(raw: Any) -> ScorerSpec:
    """A `scorer:` value → ScorerSpec, checked against the registry (raises Invalid)."""
    from moebench.scorers import registry

    if isinstance(raw, Mapping):
        params = {str(k): v for k, v in raw.items() if k != "type"}
        name = raw.get("type")
        if not isinstance(name, str):
            raise Invalid("a scorer mapping needs `type: NAME` "
                          "(e.g. {type: summary, max_sentences: 1})")
    elif isinstance(raw, str):
        name, params = raw, {}
    else:
        raise Invalid(f"scorer must be a name or a mapping with `type:`, got {type_name(raw)}")
    entries = registry()
    if name not in entries:
        raise Invalid(f"unknown scorer '{name}' {hint(name, entries)}")
    entry = entries[name]
    for loc, kind, message in schema_errors(entry.params_model, params):
        key = str(loc[0]) if loc else None
        if kind == "extra_forbidden":
            accepted = entry.params
            why = hint(str(key), accepted) if accepted else f"(scorer '{name}' takes no parameters)"
            raise Invalid(f"unknown parameter '{key}' for scorer '{name}' {why}", key)
        raise Invalid(message, key)
    return ScorerSpec(name, params)


def check_case_fields(spec: ScorerSpec, fields: Mapping[str, Any]) -> None:
    """The case fields the scorer reads, typed by its case model (§3); raises Invalid.

    A case may override a parameter, so the fields are checked merged over the parameters.
    """
    from moebench.scorers import registry

    if spec.name == "judge" and not (spec.params.get("model") and spec.params.get("rubric")):
        raise Invalid("scorer 'judge' needs `model:` and `rubric:` "
                      "(e.g. {type: judge, model: qwen3:4b, backend: ollama, rubric: ...})")
    entry = registry()[spec.name]
    for loc, kind, message in schema_errors(entry.case_model, {**spec.params, **fields}):
        name = str(loc[0]) if loc else ""
        wanted = field_phrase(entry.case_model, name)
        if kind == "missing" and len(loc) == 1:
            raise Invalid(f"scorer '{spec.name}' needs `{name}:` {wanted}", name)
        if len(loc) > 1:
            inner = field_name(loc[1:]).lstrip(".")
            message = f"{wanted} ({name}{'' if inner.startswith('[') else '.'}{inner}: {message})"
        elif loc:
            message = message.removeprefix("must be ")
        raise Invalid(f"scorer '{spec.name}' needs `{name}:` {message}" if loc
                      else f"scorer '{spec.name}': {message}", name if name in fields else None)


#: keys every case may have besides template fields
CASE_KEYS = ("id", "prompt", "scorer", "options", "expected")


def check_case_typos(spec: ScorerSpec | None, fields: Mapping[str, Any],
                     used: Iterable[str]) -> None:
    """A case key no placeholder uses that looks like a known key is a typo (raises Invalid).

    Other keys of a case are template fields, so `expcted:` would silently be one.
    """
    from moebench.scorers import registry

    reads = registry()[spec.name].reads if spec is not None and spec.name in registry() else ()
    known = {*CASE_KEYS, *reads}
    for key in fields:
        if key in known or key in used:
            continue
        close = _close_keys(str(key), tuple(sorted(known)))
        if close:
            raise Invalid(f"unknown key '{key}' — did you mean '{close[0]}'? (no placeholder "
                          f"uses it and scorer '{spec.name if spec else '-'}' does not read it)",
                          str(key))


@lru_cache(maxsize=4096)
def _close_keys(key: str, known: tuple[str, ...]) -> list[str]:
    """difflib's nearest known key (every case of a task has the same field names)."""
    return difflib.get_close_matches(key, known, n=1, cutoff=0.75)


_PHRASES = {int: "an integer", float: "a number", str: "text", bool: "true or false"}


def field_phrase(model: Any, name: str) -> str:
    """How to ask for a model field: "an integer ≥ 1", "a number", else its description."""
    info = model.model_fields.get(name)
    if info is None:
        return ""
    phrase = _PHRASES.get(info.annotation) or info.description or "see docs/suites.md"
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                phrase += f" {sign} {getattr(meta, attr)}"
    return phrase


# ---- templates ----


def placeholders(template: str) -> list[str]:
    """Field names a template uses; raises Invalid for malformed or positional ones."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise Invalid(f"bad template: {error} — write {{{{ and }}}} for literal braces") from None
    names = []
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise Invalid(f"placeholder {{{name}}} must be a field name such as {{question}} "
                          "— write {{ and }} for literal braces")
        _check_spec(name, spec or "")
        names.append(name)
    return names


#: widest `{field:>N}` / precision a template may ask for (larger ones build huge prompts)
MAX_FORMAT_WIDTH = 1000


def _check_spec(name: str, spec: str) -> None:
    if "{" in spec:
        raise Invalid(f"placeholder {{{name}:{spec}}}: nested fields in a format spec are not "
                      "supported — write the width out")
    widths = [int(w) for w in re.findall(r"\d+", spec[:40])] if len(spec) <= 40 else [10**9]
    if any(w > MAX_FORMAT_WIDTH for w in widths):
        raise Invalid(f"placeholder {{{name}:{spec[:20]}}}: a width or precision over "
                      f"{MAX_FORMAT_WIDTH} — use a smaller one")


def render(template: str, names: list[str], fields: Mapping[str, Any], what: str) -> str:
    """Fill `template` from the case's fields (raises Invalid naming a missing field)."""
    for name in names:
        if name not in fields:
            close = difflib.get_close_matches(name, [str(k) for k in fields], n=1)
            typo = f" (the case has '{close[0]}')" if close else ""
            raise Invalid(f"no field '{name}' for placeholder {{{name}}} in the {what} template"
                          f"{typo} — add `{name}:` to the case")
    try:
        return template.format_map(fields)
    except (ValueError, TypeError) as error:
        raise Invalid(f"cannot fill the {what} template: {error}") from None
