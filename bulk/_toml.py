"""Reading the TOML files bulk takes (job files, accounts files): one error for each way a
file cannot be used, naming the file."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from bulk._errors import ConfigError

MAX_TOML_BYTES = 16 * 1024**2  #: a job or accounts file larger than this is refused

#: a key whose name says it would hold a secret: refused in every file bulk reads
SECRET_WORDS = re.compile(r"token|key|secret|password|passwd", re.IGNORECASE)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML document at ``path``; :class:`ConfigError` naming it (``what``: ``job file``,
    ``accounts file``) when it is missing, unreadable or not TOML."""
    try:
        text = _read_bounded(path, what).decode("utf-8-sig")  # Notepad saves a BOM
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _read_bounded(path: Path, what: str) -> bytes:
    """The file's bytes, refusing a device (``/dev/zero`` would never end) and a file larger
    than :data:`MAX_TOML_BYTES` (a pipe is read up to that bound)."""
    with path.open("rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            raise ConfigError(f"{path}: is a device, not a {what}; give the {what} as a file")
        too_big = ConfigError(f"{path}: the {what} is larger than {MAX_TOML_BYTES} bytes")
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_TOML_BYTES:
            raise too_big
        data = handle.read(MAX_TOML_BYTES + 1)
    if len(data) > MAX_TOML_BYTES:
        raise too_big
    return data
