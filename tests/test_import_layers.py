"""The house's import rules, read from the source (docs/architecture.md, Layout).

A tick crosses the stages upstream -> feed -> fan-out, and an import never runs
back up: the feed and the upstream know nothing of the fan-out or the API (the
wiring that joins them lives above the stages, in realtime/backends.py and
fmpsite/). And no two modules import each other at load time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("realtime", "fmpsite", "dashboard")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imported(path: Path, name: str, *, load_time_only: bool) -> set[str]:
    """Modules ``path`` imports (never those under ``if TYPE_CHECKING``): all of
    them, or only those run when it loads (not inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if load_time_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # names for type checkers, never imported
            if isinstance(child, ast.Import):
                out.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from package import module`` names the module, not the
                # package: a package's __init__ re-exporting its modules is
                # how packages are built, not a circle.
                names = [f"{base}.{alias.name}" for alias in child.names]
                modules = [
                    n
                    for n in names
                    if (ROOT / Path(*n.split("."))).is_dir()
                    or (ROOT / (Path(*n.split(".")).as_posix() + ".py")).exists()
                ]
                out.update(modules if len(modules) == len(names) else [base, *modules])
            visit(child)

    visit(tree)
    return out


def test_the_feed_and_the_upstream_import_nothing_of_the_fanout_or_the_api():
    offending = []
    for name, path in sources().items():
        if name.startswith(("realtime.feed", "realtime.upstream")):
            for target in imported(path, name, load_time_only=False):
                if target.startswith(("realtime.fanout", "realtime.api", "fmpsite")):
                    offending.append(f"{name} imports {target}")
    assert offending == []


def test_importing_the_feed_loads_no_fanout_module():
    """What runs, not only what is written: backends' lazy imports included."""
    code = (
        "import django, sys; django.setup()\n"
        "import pkgutil, importlib, realtime.feed, realtime.upstream\n"
        "for pkg in (realtime.feed, realtime.upstream):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "from realtime.backends import backends\n"
        "backends().cache, backends().history, backends().status\n"
        "print(sorted(m for m in sys.modules if m.startswith('realtime.fanout')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "fmpsite.settings.test", "PATH": ""},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# The wiring: it builds both stages' objects and is asked by both, so its own
# imports are made inside the functions that build (never at load time).
WIRING = "realtime.backends"


def test_no_import_circle():
    """No module imports (through others) a module that imports it: neither at
    load time nor inside functions, except the wiring's deliberate lazy imports."""
    modules = sources()
    graph = {
        name: {
            target
            for target in imported(path, name, load_time_only=name == WIRING)
            if target in modules and target != name
        }
        for name, path in modules.items()
    }
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def strongconnect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                strongconnect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    assert cycles == []
