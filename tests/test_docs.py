"""The documentation a user's clone ships: no reference outside the repository, none dangling."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the provider modules' docstrings are rewritten with the pure decisions (issue 10, point 1);
#: until then they are the only files allowed to name the old page
_NOT_YET = {Path("bulk/providers/plivo.py"), Path("bulk/providers/agentmessage.py")}


def _documents() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "bulk").rglob("*.md"))]
    files += [
        p for p in sorted((ROOT / "bulk").rglob("*.py")) if p.relative_to(ROOT) not in _NOT_YET
    ]
    return files


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
