"""Options shared by several commands."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from bulk._errors import ConfigError
from bulk.engine import check_base_url
from bulk.inputs import MAX_INPUT_BYTES, MAX_LINE_BYTES


def max_input_option() -> Callable[[Any], Any]:
    """``--max-input-bytes``: the size bound on the input and campaigns files."""
    return click.option(
        "--max-input-bytes",
        type=click.IntRange(min=1),
        default=MAX_INPUT_BYTES,
        show_default=True,
        metavar="N",
        help="Refuse an input or campaigns file larger than this (2 GiB by default). Devices "
        f"such as /dev/zero and lines over {MAX_LINE_BYTES} bytes are always refused.",
    )


def refuse_non_finite(
    kind: click.ParamType[Any],
    value: float,
    param: click.Parameter | None,
    ctx: click.Context | None,
) -> None:
    """``nan`` and ``inf`` parse as floats, and would hang or crash a run (a rate of ``nan``
    paces nothing, one of ``inf`` divides by zero): refused as a usage error (exit 2)."""
    if not math.isfinite(value):
        kind.fail(f"{value!r} is not a finite number", param, ctx)


class FiniteFloatRange(click.FloatRange):
    """A :class:`click.FloatRange` that refuses ``nan``, ``inf`` and ``-inf``."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        refuse_non_finite(self, number, param, ctx)
        return super().convert(number, param, ctx)


class BaseUrlType(click.ParamType[str]):
    """``--base-url``: a URL bulk will talk to (:func:`bulk.engine.check_base_url`), checked
    when the option is read, so a wrong one is a usage error naming the option (exit 2)
    before anything is read or sent. The value is kept as given."""

    name = "url"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        if not isinstance(value, str):
            self.fail("must be a string", param, ctx)
        try:
            check_base_url(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return value
