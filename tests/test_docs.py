"""The documentation a user's clone ships: a short README, a manual that cannot drift from the
commands, no reference outside the repository, none dangling, no history words."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import click

from bulk.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WIRE_PAGES = ("bulk/providers/plivo.md", "bulk/providers/agentmessage.md", "bulk/sandbox/WIRE.md")
HISTORY_WORDS = re.compile(
    r"issue \d+|this ses" r"sion|finding \d+ of|before this change", re.IGNORECASE
)
README_TEST_COMMAND = (
    "python3 -m venv .venv && . .venv/bin/activate && python3 -m pip install -e '.[test]' "
    "&& python3 -m pytest"
)
README_QUICK_START = (
    "python3 -m venv .venv && . .venv/bin/activate && python3 -m pip install -e . && "
    "bulk link samples/onboarding.csv --campaigns samples/campaigns.csv --sandbox"
)


def _reference_generator() -> ModuleType:
    """The MkDocs hook that writes the command reference (docs/_hooks/ is not a package)."""
    path = ROOT / "docs" / "_hooks" / "click_reference.py"
    spec = importlib.util.spec_from_file_location("click_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _manual_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _prose() -> list[Path]:
    """Everything a reader of the README or the manual reads (the wire pages are included)."""
    return [ROOT / "README.md", *_manual_pages(), *(ROOT / p for p in WIRE_PAGES)]


def _documents() -> list[Path]:
    return [
        *_prose(),
        *sorted((ROOT / "bulk").rglob("*.md")),
        *(ROOT / "bulk").rglob("*.py"),
        *(ROOT / "tools").rglob("*.py"),
    ]


def _commands(
    command: click.Command, path: str, parent: click.Context | None = None
) -> Iterator[tuple[str, click.Command, click.Context]]:
    """Every visible command of the click tree, with its command-line path and context."""
    ctx = click.Context(command, info_name=path.split()[-1], parent=parent)
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, f"{path} {name}", ctx)


def _sections(markdown: str) -> dict[str, str]:
    """The generated reference cut at its command headings (``{ #bulk-link }``), by anchor."""
    parts = re.split(r"^#+ .*\{ #([\w-]+) \}$", markdown, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _unescaped(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace("&lt;", "<").replace("&gt;", ">")


def test_the_readme_is_a_front_page_of_at_most_300_lines() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300


def test_no_history_words_in_the_readme_or_the_manual() -> None:
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for page in _prose()
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if HISTORY_WORDS.search(line)
    ]
    assert found == []


def test_the_readme_holds_the_quick_start_and_the_test_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_QUICK_START in readme.splitlines()
    assert README_TEST_COMMAND in readme.splitlines()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert README_TEST_COMMAND in ci
    builds = [i for i, line in enumerate(ci) if re.search(r"\bmkdocs build --strict\b", line)]
    installs = [i for i, line in enumerate(ci) if "-e '.[docs]'" in line]
    assert builds and installs and ci.index(README_TEST_COMMAND) < installs[0] < builds[0]


def test_every_link_of_the_readme_leads_to_a_file_of_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the manual"
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_every_page_of_the_manual_is_in_its_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    in_nav = set(re.findall(r"^\s+- (?:[^:\n]+: )?([\w./-]+\.md)\s*$", config, re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in _manual_pages()}
    assert pages == in_nav


def test_the_manual_includes_each_wire_page_from_the_package() -> None:
    included = {
        path
        for page in _manual_pages()
        for path in re.findall(r'^--8<-- "([^"]+)"$', page.read_text(encoding="utf-8"), re.M)
    }
    assert included == set(WIRE_PAGES)


def test_nothing_cites_a_page_outside_the_repository() -> None:
    citing = [str(p.relative_to(ROOT)) for p in _documents() if "shared/providers" in p.read_text()]
    assert citing == []


def test_every_bulk_document_the_docs_name_exists() -> None:
    named: set[str] = set()
    for doc in _prose():
        named |= set(re.findall(r"`(bulk/[\w/]+\.md)`", doc.read_text(encoding="utf-8")))
    assert set(WIRE_PAGES) - {"bulk/sandbox/WIRE.md"} <= named
    assert [n for n in sorted(named) if not (ROOT / n).is_file()] == []


def test_the_wire_pages_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["bulk"]
    for page in WIRE_PAGES:
        assert any(Path(page.removeprefix("bulk/")).match(p) for p in patterns), page


def test_the_site_build_generates_the_reference_with_the_hook() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^hooks:\n\s+- docs/_hooks/click_reference\.py$", config, re.MULTILINE)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = " ".join(pyproject["project"]["optional-dependencies"]["docs"])
    assert "mkdocs" in extra and "mkdocs-material" in extra


def test_every_option_of_every_command_is_in_the_generated_reference() -> None:
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert re.search(
        r"^::: click-reference\n\s+:module: bulk\.cli\n\s+:command: main\n", page, re.MULTILINE
    ), "the reference page generates the whole `bulk` group"
    generator = _reference_generator()
    rendered = generator.render(page)
    assert "::: click-reference" not in rendered
    sections = _sections(rendered)
    missing: list[str] = []
    commands = list(_commands(main, "bulk"))
    assert {"bulk link", "bulk run", "bulk sandbox", "bulk validate"} <= {p for p, _, _ in commands}
    for path, command, ctx in commands:
        section = sections.get(generator.anchor(path))
        if section is None:
            missing.append(path)
            continue
        text = " ".join(_unescaped(section).split())
        for param in command.get_params(ctx):
            if not isinstance(param, click.Option) or param.hidden:
                continue
            record = param.get_help_record(ctx)
            assert record is not None
            names, help_text = record
            for opt in [*param.opts, *param.secondary_opts]:
                if opt not in names or names not in text:
                    missing.append(f"{path} {opt}")
            if " ".join(help_text.split()) not in text:
                missing.append(f"{path} {param.opts[0]}: its help text")
    assert missing == []


def test_the_generator_documents_a_new_option_and_keeps_hidden_ones_out() -> None:
    @click.group()
    def tool() -> None:
        """A tool."""

    @tool.command()
    @click.option("--speed", type=int, default=3, show_default=True, help="How fast <N>.")
    @click.option("--secret-knob", hidden=True, help="Not for users.")
    def go(speed: int, secret_knob: str | None) -> None:
        """Go somewhere.

        \b
        Examples:
          tool go --speed 4
        """

    generator = _reference_generator()
    markdown = generator.render(
        "# Ref\n\n::: click-reference\n    :module: bulk.cli\n    :command: main\n"
    )
    assert "`--provider [agentmessage|plivo]`" in markdown
    lines = list(generator.command_docs(tool, "tool"))
    text = "\n".join(lines)
    assert "`tool go` { #tool-go }" in text
    assert "| `--speed INTEGER` | How fast &lt;N&gt;. \\[default: 3\\] |" in text
    assert "secret-knob" not in text
    assert "```text\nExamples:\n  tool go --speed 4\n```" in text
