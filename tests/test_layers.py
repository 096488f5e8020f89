"""The package's layers hold: no private cross-imports (modules or names), no import cycles (imports in functions too).

`import-linter` (contracts in pyproject.toml, run by CI) checks that no layer imports a layer above
it; these tests add what it does not: a private module (`_name`) is imported only from inside its
own package, and no two modules import each other through any chain.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmljax"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute names of the mmljax modules (or module attributes) imported anywhere in `path`."""
    name = _module_name(path)
    package = name if _is_package(path) else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "mmljax"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "mmljax":
                continue
            out += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
    return out


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(target: str) -> str | None:
    """The module an import refers to (`pkg.mod.attr` -> `pkg.mod`)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def test_no_module_imports_another_packages_private_module():
    bad = []
    for name, path in MODULES.items():
        own_package = name if _is_package(path) else name.rpartition(".")[0]
        for target, line in _imports(path):
            mod = _resolve(target)
            if mod is None:
                continue
            attr = target[len(mod) + 1 :] if target != mod else ""
            if attr.startswith("_") and not attr.startswith("__"):  # a private name of a module
                owner = mod if _is_package(MODULES[mod]) else mod.rpartition(".")[0]
                if own_package != owner:  # private names stay inside their module's own package
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
                continue
            parts = mod.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])  # the package the private module belongs to
                    if not (own_package == owner or own_package.startswith(owner + ".")):
                        bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
                    break
    assert not bad, "private modules imported from outside their package:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _ in _imports(path):
            mod = _resolve(target)
            # a package's __init__ re-exporting its own modules is not a dependency of those modules
            if mod and mod != name and not (_is_package(path) and mod.startswith(name + ".")):
                graph[name].add(mod)
    # a submodule importing its parent package's __init__ only to reach a sibling shows up as an edge to the
    # package; count it as an edge to what the package re-exports would be too coarse, so packages are skipped
    packages = {n for n, p in MODULES.items() if _is_package(p)}
    graph = {n: {m for m in deps if m not in packages} for n, deps in graph.items() if n not in packages}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
