"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

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
