"""YAML reading that remembers where things were: `parse_yaml(text)` → data + line per path.

The suite loader reports every error as `file:line: field: message`, so beside the plain
Python data we keep, for every mapping key and sequence item, the 1-based line it sits on,
keyed by its path (`("tasks", 1, "cases", 4, "id")`). Duplicate mapping keys, which YAML
silently resolves to the last one, are recorded too so the loader can flag them.

Hostile files are refused, not expanded: nesting deeper than `MAX_DEPTH`, aliases that
would expand to more than `MAX_NODES` nodes (a "billion laughs" bomb) and integers too long
to be numbers are YAML errors with a line. libyaml (PyYAML's C parser) is used when present
and the garbage collector paused while parsing: a 10 MB suite then parses in seconds
instead of the pure-Python parser's minute.

The loader is PyYAML's safe loader with YAML 1.2 scalars for booleans and dates: only
`true`/`false` are booleans (so an answer of `no` or `off` stays a string) and `2021-03-04`
stays a string rather than becoming a `datetime.date` the results store cannot serialise.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: A location inside a document: mapping keys and sequence indexes from the root.
YamlPath = tuple[str | int, ...]

_BOOL_TAG = "tag:yaml.org,2002:bool"
_DATE_TAG = "tag:yaml.org,2002:timestamp"


#: deepest nesting of mappings/lists accepted (a suite needs about 8)
MAX_DEPTH = 64
#: most values aliases may add to the document once expanded (beyond those written out)
MAX_ALIASED = 100_000
#: longest integer accepted, in digits (a float holds up to about 1.8e308)
MAX_INT_DIGITS = 300

_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE):  # type: ignore[misc, valid-type]
    """Safe loader without YAML 1.1's yes/no/on/off booleans and implicit dates."""

    def construct_yaml_int(self, node: Node) -> int:
        """PyYAML's int, refusing over-long numbers and bad `!!int` values with a line."""
        text = str(node.value).replace("_", "")
        if sum(ch.isdigit() for ch in text[:MAX_INT_DIGITS + 10]) > MAX_INT_DIGITS:
            raise ConstructorError(None, None, f"an integer longer than {MAX_INT_DIGITS} "
                                   "digits is not a usable number — quote it to keep it as text",
                                   node.start_mark)
        try:
            return int(super().construct_yaml_int(node))
        except (ValueError, IndexError, OverflowError):
            raise ConstructorError(None, None, f"{str(node.value)[:40]!r} is not an integer",
                                   node.start_mark) from None

    def construct_yaml_float(self, node: Node) -> float:
        """PyYAML's float, with a line for a value it cannot read."""
        try:
            return float(super().construct_yaml_float(node))
        except (ValueError, IndexError, OverflowError):
            raise ConstructorError(None, None, f"{str(node.value)[:40]!r} is not a number",
                                   node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _DATE_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


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


@contextmanager
def _no_gc() -> Iterator[None]:
    # Parsing makes millions of objects and no cycles; collections made it superlinear.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_yaml(text: str) -> YamlDoc:
    """Parse one YAML document, recording lines; raises YamlSyntaxError with a position."""
    _check_depth(text)
    try:
        with _no_gc():
            node, data = _load(text)
    except yaml.reader.ReaderError as error:  # control characters: a position, not a mark
        line = text[: error.position].count("\n") + 1
        character = error.character if isinstance(error.character, int) else ord(
            str(error.character)[:1] or "?")
        message = f"{error.reason} (character #x{character:04x}) — remove it"
        raise YamlSyntaxError(message, line, 1) from None
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error, text) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(" ".join(str(error).split()), 1, 1) from None
    doc = YamlDoc(data)
    if node is not None:
        _walk(node, (), doc, set())
    return doc


def _load(text: str) -> tuple[Node | None, Any]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None and "*" in text and _ALIAS.search(text):
            _check_expansion(node)
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before any recursive code sees it.

    A quick over-estimate first (bracket balance, indentation); only a file that might be
    too deep is walked event by event (libyaml's event parser keeps an explicit stack).
    """
    brackets = _BRACKETS.findall(text)
    flow = max(accumulate(_DELTA[ch] for ch in brackets), default=0)
    if flow <= MAX_DEPTH and not _INDENT.search("\n" + text[:MAX_DEPTH + 1]) and \
            not _INDENT.search(text):
        return
    loader = _Loader(text)
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, yaml.StreamEndEvent):
                break
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlSyntaxError(
                        f"nested deeper than {MAX_DEPTH} levels — a suite needs a few; "
                        "check for unclosed brackets", event.start_mark.line + 1,
                        event.start_mark.column + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # a syntax error: the real parse reports it with its position
    finally:
        loader.dispose()


_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
#: an alias (`*name`) where YAML allows one; without any, nothing can expand
_ALIAS = re.compile(r"(?:^|[\s\[{,:-])\*[^\s*]")
_BRACKETS = re.compile(r"[\[\]{}]")
#: a line indented this far might be nested deeper than MAX_DEPTH
_INDENT = re.compile(r"\n[ -]{%d}" % (MAX_DEPTH + 1))


def _check_expansion(root: Node) -> None:
    """Refuse aliases that add more than MAX_ALIASED values (counted without expanding)."""
    size: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            size[id(node)] = 1 + sum(size.get(id(child), 1) for child in _children(node))
            continue
        if id(node) in entered:  # shared (already counted) or a cycle back to an ancestor
            continue
        entered.add(id(node))
        stack.append((node, True))
        stack += [(child, False) for child in _children(node) if id(child) not in entered]
    if size[id(root)] - len(size) > MAX_ALIASED:
        raise YamlSyntaxError(f"aliases expand to over {MAX_ALIASED:,} more values (an alias "
                              "bomb?) — write the values out or use fewer `*` aliases", 1, 1)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, SequenceNode) else []


_TAB = "a tab indents this line — YAML indents with spaces only"
#: (words in PyYAML's message, the fix to name, report at the context mark (where it began))
_FIXES = (
    ("tab character", _TAB, False),
    ("found character that cannot start any token", "a tab or a stray character here — "
     "indent with spaces, quote text that starts with @ or `", False),
    ("scanning a quoted scalar", "a quote opened here is never closed — close it, or write "
     "'' (single) / \\\" (double) for a quote inside", True),
    ("mapping values are not allowed", "a `: ` inside a value, or a key indented too far — "
     "quote the value or line the key up with its neighbours", False),
    ("expected '-' indicator", "this line is indented differently from the list items "
     "above — line it up with them", False),
    ("expected <block end>", "this line's indentation does not match the lines above — line "
     "it up with its neighbours", False),
    ("could not find expected ':'", "a key without `:`, or a value that runs on to the next "
     "line — add the `:` or quote the value", True),
    ("while scanning a simple key", "a key without `:`, or a value that runs on to the next "
     "line — add the `:` or quote the value", True),
    ("expected ',' or ']'", "a `[` list is not closed — add `]` (or quote text with commas)",
     True),
    ("expected ',' or '}'", "a `{` mapping is not closed — add `}` (or quote text with commas)",
     True),
)


def _syntax_error(error: yaml.MarkedYAMLError, text: str) -> YamlSyntaxError:
    parts = [p for p in (error.context, error.problem) if p]
    message = ": ".join(parts) or "invalid YAML"
    fix, at_context = next(((fix, ctx) for words, fix, ctx in _FIXES
                            if words in str(error)), ("", False))
    mark = (error.context_mark if at_context else None) or error.problem_mark or \
        error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if mark is not None and not at_context and _tab_indented(text, mark.line):
        fix = _TAB
    said = f"{fix} ({message}, column {column})" if fix else f"{message} (column {column})"
    return YamlSyntaxError(said, line, column)


def _tab_indented(text: str, index: int) -> bool:
    start = 0
    for _ in range(index):
        start = text.find("\n", start) + 1
        if start == 0:
            return False
    line = text[start:text.find("\n", start) if "\n" in text[start:] else len(text)]
    return "\t" in line[: len(line) - len(line.lstrip(" \t"))]


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
