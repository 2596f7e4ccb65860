"""House rules that hold for the whole package, checked on its source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bulk"
MAX_FUNCTION_LINES = 80

# functions allowed over the limit, as "path relative to bulk/::qualified name" -> why
LONG_FUNCTION_ALLOWED = {
    "cli/run.py::_options": "the click option declarations of bulk link/unlink/move/status: "
    "one declaration per option, a list not logic",
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
