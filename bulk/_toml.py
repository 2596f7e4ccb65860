"""Reading the TOML files bulk takes (job files, accounts files): one error for each way a
file cannot be used, naming the file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from bulk._errors import ConfigError

#: a key whose name says it would hold a secret: refused in every file bulk reads
SECRET_WORDS = re.compile(r"token|key|secret|password|passwd", re.IGNORECASE)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML document at ``path``; :class:`ConfigError` naming it (``what``: ``job file``,
    ``accounts file``) when it is missing, unreadable or not TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
