"""The command reference, generated from the click commands (an MkDocs hook).

A page holds a block such as::

    ::: click-reference
        :module: bulk.cli
        :command: main
        :prog_name: bulk

and the hook replaces it with Markdown for that command and every subcommand under it: the
help text, the usage line, one table row per option (click's own help record, the same text
``--help`` prints: metavar, default, range, environment variable) and the epilog. Every option
of every command is documented because the page is made from the commands themselves.

mkdocs-click does the same job, but with click 8.3+ it writes ``Sentinel.UNSET`` as the
default of every option that has none, leaves out epilogs, and runs ``\\b`` blocks (examples,
job files) together into one paragraph; this hook keeps them as they read in ``--help``.
"""

from __future__ import annotations

import html
import importlib
import inspect
import re
from collections.abc import Iterator
from typing import Any

import click

BLOCK = re.compile(r"^::: click-reference\n((?:[ \t]+:\w+: .*\n?)+)", re.MULTILINE)
_OPTION_LINE = re.compile(r"^\s+:(\w+): (.*)$")


def anchor(path: str) -> str:
    """The heading id of a command: ``bulk link`` -> ``bulk-link``."""
    return path.replace(" ", "-")


def _text(value: str) -> str:
    """Plain help text as Markdown that shows it as written (no HTML, no emphasis, no links)."""
    escaped = html.escape(value, quote=False)
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", escaped)


def _cell(value: str) -> str:
    return _text(" ".join(value.split()))


def _prose(help_text: str) -> Iterator[str]:
    """Paragraphs as paragraphs; a ``\\b`` paragraph (kept as written) as a text block."""
    for paragraph in re.split(r"\n\s*\n", inspect.cleandoc(help_text)):
        lines = paragraph.splitlines()
        if lines and lines[0].strip() == "\b":
            yield "```text"
            yield from lines[1:]
            yield "```"
        else:
            yield _text(" ".join(line.strip() for line in lines))
        yield ""


def _usage(ctx: click.Context) -> Iterator[str]:
    formatter = ctx.make_formatter()
    formatter.write_usage(ctx.command_path, " ".join(ctx.command.collect_usage_pieces(ctx)))
    yield "```text"
    yield formatter.getvalue().rstrip()
    yield "```"
    yield ""


def _options(ctx: click.Context) -> Iterator[str]:
    records = [
        record
        for param in ctx.command.get_params(ctx)
        if isinstance(param, click.Option) and not param.hidden
        for record in [param.get_help_record(ctx)]
        if record is not None
    ]
    if not records:
        return
    yield "| option | what it does |"
    yield "|---|---|"
    for names, help_text in records:
        yield f"| `{names}` | {_cell(help_text)} |"
    yield ""


def command_docs(
    command: click.Command, path: str, parent: click.Context | None = None, level: int = 2
) -> Iterator[str]:
    """Markdown for ``command`` (called ``path`` on the command line) and its subcommands."""
    ctx = click.Context(command, info_name=path.split()[-1], parent=parent)
    yield f"{'#' * level} `{path}` {{ #{anchor(path)} }}"
    yield ""
    if command.help:
        yield from _prose(command.help)
    yield from _usage(ctx)
    yield from _options(ctx)
    if command.epilog:
        yield from _prose(command.epilog)
    if isinstance(command, click.Group):
        names = sorted(command.list_commands(ctx))
        subcommands = [(name, command.get_command(ctx, name)) for name in names]
        visible = [(n, c) for n, c in subcommands if c is not None and not c.hidden]
        yield "| command | what it does |"
        yield "|---|---|"
        for name, sub in visible:
            summary = sub.get_short_help_str(limit=200)
            yield f"| [`{path} {name}`](#{anchor(f'{path} {name}')}) | {_cell(summary)} |"
        yield ""
        for name, sub in visible:
            yield from command_docs(sub, f"{path} {name}", ctx, level + 1)


def load(module: str, attribute: str) -> click.Command:
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{module}.{attribute} is not a click command")
    return command


def render(markdown: str) -> str:
    """``markdown`` with every ``::: click-reference`` block replaced by its reference."""

    def replace(match: re.Match[str]) -> str:
        settings: dict[str, str] = {
            m.group(1): m.group(2)
            for line in match.group(1).splitlines()
            if (m := _OPTION_LINE.match(line))
        }
        command = load(settings["module"], settings["command"])
        path = settings.get("prog_name") or command.name or settings["command"]
        level = int(settings.get("level", "2"))
        return "\n".join(command_docs(command, path, level=level)) + "\n"

    return BLOCK.sub(replace, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook: expand the blocks of every page (pages without one are unchanged)."""
    return render(markdown)
