"""Job files for ``bulk run JOB.toml``: a reviewed TOML file instead of a long command line.

Keys are the command's long option names without ``--`` (``base-url``, ``send-until``, ...),
plus ``command`` and ``input``; ``accounts`` is a path to an accounts file, or the accounts
themselves as ``[accounts.NAME]`` tables in the job file. Relative paths resolve against
the job file's folder.
Credentials never belong in a job file: a credential option, or any key that names a token,
key, secret or password, stops the run (exit 2), as does an unknown key or a wrong type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from bulk._errors import ConfigError
from bulk._suggest import did_you_mean
from bulk._toml import SECRET_WORDS, read_toml
from bulk.cli._options import BaseUrlType
from bulk.providers import credential_options

_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def read_job(path: Path) -> dict[str, Any]:
    return read_toml(path, "job file")


def _refuse_credentials(path: Path, keys: list[str]) -> None:
    by_key = {o.flag.removeprefix("--"): o for o in credential_options()}
    for key in keys:
        option = by_key.get(key)
        if option is not None or SECRET_WORDS.search(key):
            where = f" (set {option.env})" if option is not None else ""
            kind = "a secret" if option is None or option.secret else "a credential"
            raise ConfigError(
                f"{path}: key {key!r} is {kind}: job files hold no credentials; "
                f"they come from the environment only{where}"
            )


def _options_of(command: click.Command) -> dict[str, click.Option]:
    return {
        name.removeprefix("--"): param
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts
        if name.startswith("--")
    }


def _kind(value: Any) -> str:
    """What a TOML value is, for a message: a number or a boolean as written; a string, an
    array or a table only by its kind, since a misplaced secret may be in it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    kinds = ((str, "a string"), (list, "an array"), (dict, "a table"))
    return next((name for t, name in kinds if isinstance(value, t)), "a date or time")


def _expect(path: Path, key: str, value: Any, *types: type) -> None:
    ok = any(
        isinstance(value, t) and not (t is not bool and isinstance(value, bool)) for t in types
    )
    if not ok:
        want = " or ".join(_TYPE_NAMES[t] for t in types)
        raise ConfigError(f"{path}: key {key!r} must be {want}, not {_kind(value)}")


def _path_value(path: Path, key: str, value: Any, must_exist: bool) -> str:
    _expect(path, key, value, str)
    resolved = (path.parent / Path(value).expanduser()).resolve()
    if must_exist and not resolved.is_file():
        problem = "is a folder, not a file" if resolved.is_dir() else "does not exist"
        raise ConfigError(f"{path}: key {key!r}: {resolved} {problem}")
    return str(resolved)


def _arguments(path: Path, key: str, value: Any, option: click.Option) -> list[str]:
    flag = f"--{key}"
    if option.is_flag:
        _expect(path, key, value, bool)
        return [flag] if value else []
    if option.multiple:
        values = value if isinstance(value, list) else [value]
        for item in values:
            _expect(path, key, item, str)
        return [part for item in values for part in (flag, item)]
    kind = option.type
    if isinstance(kind, click.Path):
        return [flag, _path_value(path, key, value, bool(kind.exists))]
    if key == "send-until" and isinstance(value, (dt.datetime, dt.time)):
        return [flag, _when(path, value)]
    if isinstance(value, str) and key == "rate" and value.strip().lower() == "auto":
        value = "auto"  # as --rate takes it, in any case
    elif key == "rate" and (isinstance(value, bool) or not isinstance(value, int | float)):
        shown = repr(value) if isinstance(value, str) and len(value) <= 20 else _kind(value)
        raise ConfigError(
            f"{path}: key 'rate' must be a number (requests per second) or \"auto\", "
            f"not {shown}"
        )
    if isinstance(kind, click.types.IntParamType):
        _expect(path, key, value, int)
    elif isinstance(kind, click.types.FloatParamType) and (key, value) != ("rate", "auto"):
        _expect(path, key, value, int, float)  # (``rate`` also takes the word "auto")
    else:
        _expect(path, key, value, str)
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType | BaseUrlType):
        _check(path, key, value, option)
    return [flag, str(value)]


def _check(path: Path, key: str, value: Any, option: click.Option) -> None:
    """The value as the option takes it (a number's range, nan and inf, a base URL), or
    :class:`ConfigError` naming the file and the key. Numbers are echoed; a URL's message
    never echoes its query."""
    try:
        option.type.convert(value, option, None)
    except click.BadParameter as exc:
        raise ConfigError(f"{path}: key {key!r} (--{key}): {exc.message}") from None


def _when(path: Path, value: dt.datetime | dt.time) -> str:
    """A TOML date-time or local time for ``send-until``, as the option takes it: a moment
    with its offset (ISO 8601), or ``HH:MM`` local time. A date-time without an offset is
    refused: which zone it means would be a guess."""
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if value.tzinfo is None:
        raise ConfigError(
            f"{path}: key 'send-until' is a date-time without an offset; add one "
            "(2030-01-01T06:00:00Z, ...+02:00) or give a local time (06:00)"
        )
    return value.isoformat()


def _overridden(overrides: Sequence[str]) -> set[str]:
    """The keys the options after the job file give (``--region CA``, ``--region=CA``): the
    file's own value of each is dropped, so a repeatable option is replaced, not added to."""
    return {
        arg.removeprefix("--").partition("=")[0] for arg in overrides if arg.startswith("--")
    }


def job_arguments(
    path: Path, commands: Mapping[str, click.Command], overrides: Sequence[str] = ()
) -> tuple[click.Command, list[str]]:
    """The command a job file names and the arguments that run it, or :class:`ConfigError`
    naming the first key that is wrong. A key that ``overrides`` (the options after the file)
    also give is checked but left out: the command line's value replaces the file's."""
    job = read_job(path)
    _refuse_credentials(path, list(job))
    name = job.pop("command", None)
    if name is None:
        raise ConfigError(f"{path}: key 'command' is missing (one of {', '.join(commands)})")
    if not isinstance(name, str) or name not in commands:
        raise ConfigError(f"{path}: key 'command' must be one of {', '.join(commands)}")
    command = commands[name]
    if "input" not in job:
        raise ConfigError(f"{path}: key 'input' is missing (the CSV to run)")
    arguments = [_path_value(path, "input", job.pop("input"), True)]
    options = _options_of(command)
    replaced = _overridden(overrides)
    for key, value in job.items():
        if key == "accounts" and isinstance(value, dict):  # inline [accounts.NAME] tables
            given = ["--accounts", str(path.resolve())]
        elif (option := options.get(key)) is None:
            raise ConfigError(
                f"{path}: unknown key {key!r} for 'bulk {name}'"
                + did_you_mean(key, [*options, "command", "input"])
            )
        else:
            given = _arguments(path, key, value, option)
        arguments += [] if key in replaced else given
    return command, arguments
