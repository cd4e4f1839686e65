"""The package's import graph has no cycles (GUIDE: no import circles).

Edges are every `import` / `from ... import` of a `moebench` module found anywhere in a
module's source (top level, `if TYPE_CHECKING:` blocks and function bodies alike): a cycle
through a lazy import still ties the modules together, so none is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import moebench

PACKAGE = Path(moebench.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.AST, here: str, is_package: bool, modules: set[str]) -> set[str]:
    """The moebench modules one import statement names (`from pkg import mod` → pkg.mod)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:  # relative import: resolve against this module's package
        package = here.split(".") if is_package else here.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([base] if base else [])])
    found = {f"{base}.{a.name}" for a in node.names} & modules
    return found or ({base} & modules)


def import_graph() -> dict[str, set[str]]:
    """Module → the moebench modules it imports (a package's own __init__ excluded)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges |= _targets(node, name, path.name == "__init__.py", modules)
        # importing a.b.c runs a/__init__ and a/b/__init__: not a dependency worth a cycle
        graph[name] = {t for t in edges if t != name and not name.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_the_stand_ins_imports() -> None:
    graph = import_graph()
    assert "moebench.testing.standin_http" in graph["moebench.testing.ollama_standin"]
    assert "moebench.report.figures" in graph["moebench.report.summary"]
    assert "moebench.report.figures" in graph["moebench.report.metrics"]


def test_moebench_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])
