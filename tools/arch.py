"""Architecture checks anyone can run: ``python tools/arch.py`` (also run by tests/unit/test_architecture.py).

Prints the import cycles among src/scalinglab modules (every import, including those inside functions: a lazy
import that closes a loop is still a loop in the design), the longest functions, and the ``.attrs`` count."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "scalinglab"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, current: str, is_package: bool, level: int, known: dict) -> str | None:
    """The module of the package an import reaches (the nearest known module above what it names)."""
    name = _absolute(name, current, is_package, level)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _absolute(name: str, current: str, is_package: bool, level: int) -> str:
    if not level:
        return name
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_graph(unresolved: list | None = None) -> dict[str, set[str]]:
    """{module: the modules of the package it imports}; ``unresolved`` collects imports of the package that
    name no module (a relative import left pointing at the wrong level after a move)."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [(alias.name, 0) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                targets = [(f"{module}.{alias.name}" if module else alias.name, node.level)
                           for alias in node.names]
            else:
                continue
            for target, level in targets:
                if not level and not target.startswith(PACKAGE):
                    continue
                found = _resolve(target, name, is_package, level, known)
                wanted = _absolute(target, name, is_package, level)
                if unresolved is not None and wanted not in known and wanted.rpartition(".")[0] not in known:
                    unresolved.append(f"{name}: {'.' * level}{target} -> {wanted}")
                # a package's own __init__ re-exporting its modules is not a dependency of the modules on it
                if found and found != name and not name.startswith(found + ".") \
                        and not found.startswith(name + "."):
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def functions() -> list[tuple[int, str]]:
    """(length in lines, 'module:function') for every function, longest first."""
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))
    return sorted(found, reverse=True)


def attrs_uses() -> int:
    return sum(path.read_text().count(".attrs") for path in modules().values())


def main() -> None:
    broken: list[str] = []
    found = cycles(import_graph(broken))
    print(f"imports naming no module: {len(broken)}")
    for line in broken:
        print("  " + line)
    print(f"import cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))
    print("longest functions:")
    for length, name in functions()[:8]:
        print(f"  {length:4d}  {name}")
    print(f".attrs uses: {attrs_uses()}")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # piped into head
        pass
