"""Words for a likely slip: a file given where one campaign is asked for, a misspelt key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from bulk._errors import ConfigError

#: endings of a file, never of a campaign id or alias
_FILE_ENDINGS = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".json", ".toml")


def refuse_campaign_file(value: str | None, option: str, plural: str | None) -> None:
    """A :class:`ConfigError` when ``value``, given to ``option`` (one campaign, id or alias,
    for every row), is a file's path: a campaigns file meant for ``plural`` (``--campaigns``)."""
    if value is None:
        return
    text = value.strip()
    looks = text.lower().endswith(_FILE_ENDINGS) or "/" in text or "\\" in text
    try:
        looks = looks or Path(text).is_file()
    except OSError:
        pass
    if not looks:
        return
    hint = f"; to name campaigns by alias from a file, use {plural} {text}" if plural else ""
    raise ConfigError(
        f"{option} {text}: that is a file, and {option} takes one campaign (id or alias) for "
        f"every row{hint}"
    )


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, else ``""``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


__all__ = ["did_you_mean", "refuse_campaign_file"]
