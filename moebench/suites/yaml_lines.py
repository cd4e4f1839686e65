"""YAML reading that remembers where things were: `parse_yaml(text)` → data + line per path.

The suite loader reports every error as `file:line: field: message`, so beside the plain
Python data we keep, for every mapping key and sequence item, the 1-based line it sits on,
keyed by its path (`("tasks", 1, "cases", 4, "id")`). Duplicate mapping keys, which YAML
silently resolves to the last one, are recorded too so the loader can flag them.

The loader is PyYAML's safe loader with YAML 1.2 scalars for booleans and dates: only
`true`/`false` are booleans (so an answer of `no` or `off` stays a string) and `2021-03-04`
stays a string rather than becoming a `datetime.date` the results store cannot serialise.
Valid text is parsed by libyaml when PyYAML has it (about 10x faster: a 2,000-case suite
costs 0.15 s instead of 1.5 s); anything libyaml rejects is parsed again by the pure-Python
loader, so error messages and positions are the same with or without libyaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: A location inside a document: mapping keys and sequence indexes from the root.
YamlPath = tuple[str | int, ...]

_BOOL_TAG = "tag:yaml.org,2002:bool"
_DATE_TAG = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """Safe loader without YAML 1.1's yes/no/on/off booleans and implicit dates."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _DATE_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

_FastLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):
    class _FastLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        """libyaml's parser with `_Loader`'s scalar rules."""

    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


class YamlSyntaxError(Exception):
    """The text is not valid YAML; `line`/`column` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class YamlDoc:
    """Parsed YAML: the data, the line of every key/item, and duplicate keys found."""

    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)
    #: (path of the repeated key, line of the repetition)
    duplicates: list[tuple[YamlPath, int]] = field(default_factory=list)

    def line_of(self, path: YamlPath) -> int:
        """Line of `path`, or of its nearest recorded ancestor (1 for the root)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


def parse_yaml(text: str) -> YamlDoc:
    """Parse one YAML document, recording lines; raises YamlSyntaxError with a position."""
    parsed = _parse_fast(text)
    node, data = parsed if parsed is not None else _parse(text)
    doc = YamlDoc(data)
    if node is not None:
        _walk(node, (), doc, set())
    return doc


def _parse_fast(text: str) -> tuple[Node | None, Any] | None:
    """(root node, data) through libyaml; None when it is missing or rejects the text."""
    if _FastLoader is None:
        return None
    loader = _FastLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.YAMLError:
        return None  # the pure-Python loader says what is wrong, with its usual wording
    finally:
        loader.dispose()


def _parse(text: str) -> tuple[Node | None, Any]:
    """(root node, data) through the pure-Python loader; YamlSyntaxError on bad YAML."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as error:  # control characters: a position, not a mark
        line = text[: error.position].count("\n") + 1
        message = f"{error.reason} (character #x{error.character:04x}) — remove it"
        raise YamlSyntaxError(message, line, 1) from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(" ".join(str(error).split()), 1, 1) from None
    finally:
        loader.dispose()
    return node, data


def _syntax_error(error: yaml.MarkedYAMLError) -> YamlSyntaxError:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    parts = [p for p in (error.context, error.problem) if p]
    message = ": ".join(parts) or "invalid YAML"
    return YamlSyntaxError(f"{message} (line {line}, column {column})", line, column)


def _walk(node: Node, path: YamlPath, doc: YamlDoc, active: set[int]) -> None:
    # `active` holds the nodes on the current branch: anchors can make a node its own child.
    if id(node) in active:
        return
    active.add(id(node))
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else str(key.start_mark)
            child = (*path, name)
            if name in seen:
                doc.duplicates.append((child, key.start_mark.line + 1))
            seen.add(name)
            doc.lines[child] = key.start_mark.line + 1
            _walk(value, child, doc, active)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            doc.lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), doc, active)
    active.discard(id(node))
