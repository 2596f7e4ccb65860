"""The documentation a user's clone ships: no reference outside the repository, none dangling."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _documents() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "bulk").rglob("*.md")),
        *(ROOT / "bulk").rglob("*.py"),
    ]


def test_nothing_cites_a_page_outside_the_repository() -> None:
    citing = [str(p.relative_to(ROOT)) for p in _documents() if "shared/providers" in p.read_text()]
    assert citing == []


def test_every_bulk_document_the_readme_and_wire_name_exists() -> None:
    named: set[str] = set()
    for doc in (ROOT / "README.md", ROOT / "bulk/sandbox/WIRE.md"):
        named |= set(re.findall(r"`(bulk/[\w/]+\.md)`", doc.read_text()))
    assert {"bulk/providers/plivo.md", "bulk/providers/agentmessage.md"} <= named
    assert [n for n in sorted(named) if not (ROOT / n).is_file()] == []


def test_the_wire_pages_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["bulk"]
    for page in ("providers/plivo.md", "providers/agentmessage.md", "sandbox/WIRE.md"):
        assert any(Path(page).match(pattern) for pattern in patterns), page
