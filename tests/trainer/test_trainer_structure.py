"""The trainer package's shape: no import cycles (function-level imports count) and no module past
~500 lines, so each module can be read, tested and changed on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import mentor_trainer

PACKAGE = Path(mentor_trainer.__file__).parent
MAX_LINES = 520  # "about 500": a module this size is split along its section banners


def _modules() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__main__"}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Sibling modules `path` imports anywhere (module level, inside functions, under `if`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module or ""
                names = [base] if base else [alias.name for alias in node.names]
            elif node.level == 0 and node.module and node.module.split(".")[0] == "mentor_trainer":
                parts = node.module.split(".")
                names = [parts[1]] if len(parts) > 1 else [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("mentor_trainer.")]
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in known)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules) - {"__init__"}
    return {name: _imports(path, known) - {name} for name, path in modules.items() if name != "__init__"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "benchmark" in graph["sft"]  # imported inside a function only
    assert "runtime" in graph["sft"]  # imported at module level


def test_trainer_has_no_import_cycles() -> None:
    assert find_cycle(import_graph()) is None


def test_no_trainer_module_is_past_about_500_lines() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in _modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}
