"""House rules that hold for the whole package, checked on its source (with ``ast``): short
functions and modules, no modules importing each other, and no text, in the package or its
tests, that is named for history rather than for what it does."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bulk"
MAX_FUNCTION_LINES = 80

# functions allowed over the limit, as "path relative to bulk/::qualified name" -> why
LONG_FUNCTION_ALLOWED = {
    "cli/_run_options.py::options": "the click option declarations of bulk "
    "link/unlink/move/status: one declaration per option, a list not logic",
}


def _function_lengths(source: str) -> dict[str, int]:
    """Qualified name (``Class.method``, ``outer.inner``) -> lines from ``def`` to its end."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    assert child.end_lineno is not None
                    lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def _package_function_lengths() -> dict[str, int]:
    lengths: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for name, length in _function_lengths(path.read_text(encoding="utf-8")).items():
            lengths[f"{where}::{name}"] = length
    return lengths


def test_no_function_in_the_package_is_longer_than_80_lines() -> None:
    too_long = {
        name: length
        for name, length in _package_function_lengths().items()
        if length > MAX_FUNCTION_LINES and name not in LONG_FUNCTION_ALLOWED
    }
    assert not too_long, "functions over 80 lines (split them): " + ", ".join(
        f"bulk/{name} ({length} lines)" for name, length in sorted(too_long.items())
    )


def test_every_long_function_exemption_is_still_needed() -> None:
    lengths = _package_function_lengths()
    stale = [name for name in LONG_FUNCTION_ALLOWED if lengths.get(name, 0) <= MAX_FUNCTION_LINES]
    assert not stale, f"drop these from LONG_FUNCTION_ALLOWED: {stale}"


def test_length_counts_from_def_to_last_line_for_methods_nested_and_async() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    source = (
        "class Box:\n"
        "    def short(self) -> None:\n"
        "        pass\n"
        "\n"
        f"async def long() -> None:\n{body}\n"
        "\n"
        "def outer() -> None:\n"
        "    def inner() -> None:\n"
        "        pass\n"
    )
    lengths = _function_lengths(source)
    assert lengths == {"Box.short": 2, "long": 81, "outer": 3, "outer.inner": 2}


# --- modules: size and the import graph -------------------------------------------------------

MAX_MODULE_LINES = 700

# modules allowed over the limit until they are split, as "path relative to bulk/" -> why; a
# module not listed here fails the check as soon as it grows past the limit
LONG_MODULE_ALLOWED: dict[str, str] = {}


def _module_lengths() -> dict[str, int]:
    return {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_module_in_the_package_is_longer_than_700_lines() -> None:
    too_long = {
        name: length
        for name, length in _module_lengths().items()
        if length > MAX_MODULE_LINES and name not in LONG_MODULE_ALLOWED
    }
    assert not too_long, "modules over 700 lines (split them): " + ", ".join(
        f"bulk/{name} ({length} lines)" for name, length in sorted(too_long.items())
    )


def test_every_long_module_exemption_is_still_needed() -> None:
    lengths = _module_lengths()
    stale = [name for name in LONG_MODULE_ALLOWED if lengths.get(name, 0) <= MAX_MODULE_LINES]
    assert not stale, f"drop these from LONG_MODULE_ALLOWED: {stale}"


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.with_suffix("").relative_to(root.parent).parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement reaches: ``from a import b`` reaches ``a.b`` (a
    module, or a name in ``a``: :func:`import_graph` keeps whichever is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{alias.name}" for alias in node.names]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, anywhere in its source (inside
    functions too: a deferred import still ties the two modules together)."""
    paths = {_module_name(root, path): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        reached: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(module, path.name == "__init__.py", node):
                while name not in paths and "." in name:
                    name = name.rsplit(".", 1)[0]  # a name in a module: the module
                if name in paths and name != module:
                    reached.add(name)
        graph[module] = reached
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import one another, directly or round a longer circle (the
    strongly connected components of more than one module, Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = [stack.pop()]
            while group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def test_no_two_modules_of_the_package_import_each_other() -> None:
    cycles = import_cycles(import_graph(PACKAGE))
    assert not cycles, "modules that import each other (move what they share to a third): " + (
        "; ".join(" <-> ".join(group) for group in cycles)
    )


def test_an_import_cycle_is_found_direct_round_three_modules_and_inside_a_function(
    tmp_path: Path,
) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "from pkg.a import A\n",
        "a.py": "A = 1\n",
        "b.py": "def late() -> None:\n    from pkg import c\n",
        "c.py": "from . import b\n",
        "sub/__init__.py": "",
        "sub/x.py": "from .y import Y\n",
        "sub/y.py": "from ..sub import z\nY = 1\n",
        "sub/z.py": "import pkg.sub.x\nimport os\n",
    }
    for name, text in sources.items():
        (root / name).write_text(text, encoding="utf-8")
    graph = import_graph(root)
    assert graph["pkg"] == {"pkg.a"} and graph["pkg.a"] == set()
    assert import_cycles(graph) == [["pkg.b", "pkg.c"], ["pkg.sub.x", "pkg.sub.y", "pkg.sub.z"]]


# --- names from history -----------------------------------------------------------------------

TESTS = Path(__file__).resolve().parent
#: words that date a text instead of saying what it pins (built so this file does not match)
HISTORY = re.compile(r"\b(?:issues?|findings?)\s+\d+|\bthis\s+ses" r"sion\b", re.IGNORECASE)
#: a test module's name: no history, and named by its subject, not by how its cases were made
DATED_NAME = re.compile(HISTORY.pattern + r"|\bhos" r"tile\b", re.IGNORECASE)


def test_no_test_module_is_named_for_history() -> None:
    names = [path.name for path in TESTS.glob("*.py")]
    dated = [name for name in names if DATED_NAME.search(name.replace("_", " "))]
    assert not dated, f"test modules named for history (name them by subject): {dated}"


def test_no_source_test_or_note_of_the_package_speaks_of_history() -> None:
    texts = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.md"), *TESTS.glob("*.py")]
    dated = [
        f"{path.relative_to(PACKAGE.parent).as_posix()}:{number}: {line.strip()}"
        for path in sorted(texts)
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HISTORY.search(line)
    ]
    assert not dated, "history in docstrings, comments or names (say what it pins):\n" + (
        "\n".join(dated)
    )


def test_the_history_pattern_catches_issue_and_finding_numbers_and_spares_plain_words() -> None:
    for dated in ("Find" "ing 10 of iss" "ue 9", "iss" "ues 12 and 13", "made this ses" "sion"):
        assert HISTORY.search(dated), dated
    for plain in ("an issue with the file", "findings are reported", "a session of its own"):
        assert not HISTORY.search(plain), plain
    assert DATED_NAME.search("test_hos" "tile_moves.py".replace("_", " "))
    assert not DATED_NAME.search("test_plivo_moves.py".replace("_", " "))
