"""The core's modules import one another without a cycle, at any level (type-checking imports aside)."""

import ast
from pathlib import Path

import fairbinn.core

CORE = Path(fairbinn.core.__file__).parent


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The core modules ``path`` imports anywhere (module or function level), except under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level == 1:
                names = [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
                found.update(name for name in names if name in modules)

    Visitor().visit(ast.parse(path.read_text()))
    return found - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_in_the_core():
    modules = {p.stem for p in CORE.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(CORE / f"{name}.py", modules) for name in modules}
    assert "strategies" in graph["config"]  # the configuration validates strategy names
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
