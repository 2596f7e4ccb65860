"""Credentials cut out of what a provider answers, in every form a body can carry them.

A provider may echo the credentials bulk sent (the ``Authorization`` header's value, the
token in it, Basic's ``id:token``) in an error text, a request id or a header. Echoed, they are
seldom the raw bytes: JSON escapes ``/`` as ``\\/``, ``"`` as ``\\"``, ``\\`` as ``\\\\`` and
any character as ``\\uXXXX`` (a whole JSON text may sit inside a JSON string, its backslashes
doubled), a form or a URL percent-encodes (``%2F`` or ``%2f``, sometimes twice: ``%252F``; a
space as ``+``), HTML writes ``&#47;``, ``&#x2F;`` or ``&quot;``. Each character of a secret
is matched in any of these forms, mixed freely, so whatever the body decodes to, no credential
is left in it to reach a report, the journal, a log or an exception.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Mapping

from bulk.providers._base import Response

#: shorter than this, a "secret" would match ordinary text: never one a provider issues
MIN_SECRET = 8
REDACTED = "[redacted]"
#: a body with none of these holds a secret only raw: each escaped form starts with one
_PERCENT = re.compile(rb"%[0-9A-Fa-f]{2}")
_ENTITIES = (b"&#", b"&quot;", b"&amp;", b"&lt;", b"&gt;", b"&apos;")
_NAMED = {'"': b"quot", "&": b"amp", "<": b"lt", ">": b"gt", "'": b"apos"}



def secrets_in(headers: Mapping[str, str]) -> tuple[str, ...]:
    """What of the Authorization header a provider might echo back: the header's value, its
    credentials after the scheme and, for Basic, the decoded ``id:token`` and the token."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    _, _, credentials = value.partition(" ")
    found = [value, credentials]
    if value.lower().startswith("basic "):
        with contextlib.suppress(ValueError):
            pair = base64.b64decode(credentials, validate=True).decode("utf-8")
            found += [pair, pair.partition(":")[2]]
    # longest first: a token inside the header's value goes with the value
    return tuple(sorted({s for s in found if len(s) >= MIN_SECRET}, key=len, reverse=True))


def _hex(value: int, width: int) -> bytes:
    """``value`` in hex, at least ``width`` digits, either case, leading zeros optional
    beyond ``width`` (HTML allows any number)."""
    digits = f"{value:0{width}x}"
    return b"".join(
        f"[{d}{d.upper()}]".encode() if d.isalpha() else d.encode() for d in digits
    )


def _char(c: str) -> bytes:
    """A regular expression (bytes) for one character in any form a body can carry it."""
    code = ord(c)
    raw = c.encode("utf-8")
    # raw, or after backslashes (JSON's \\/, \\", \\\\ and a JSON text in a JSON string)
    forms = [re.escape(raw), rb"\\+" + re.escape(raw)]
    if code < 0x10000:
        forms.append(rb"\\+u" + _hex(code, 4))
    else:  # a UTF-16 surrogate pair, as JSON writes a character beyond the BMP
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(rb"\\+u" + _hex(high, 4) + rb"\\+u" + _hex(low, 4))
    forms.append(b"".join(b"%(?:25)*" + _hex(byte, 2) for byte in raw))
    if c == " ":
        forms.append(rb"\+")
    forms.append(b"&#0*" + str(code).encode() + b";")
    forms.append(b"&#[xX]0*" + _hex(code, 1) + b";")
    if c in _NAMED:
        forms.append(b"&" + _NAMED[c] + b";")
    return b"(?:" + b"|".join(forms) + b")"


def _escaped(data: bytes) -> bool:
    """Whether ``data`` holds anything that starts an escaped form (quick: C-speed finds)."""
    return (
        b"\\" in data
        or (b"%" in data and _PERCENT.search(data) is not None)
        or (b"&" in data and any(entity in data for entity in _ENTITIES))
    )


class Redactor:
    """Cuts ``secrets`` (see :func:`secrets_in`) out of a response's body and header values,
    in every form (see the module's docstring)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self._raw = tuple(s.encode("utf-8") for s in secrets)
        # one expression a secret (longest first): each then starts with a set of fixed
        # bytes, and the expression engine skips ahead to where one of them stands
        self._forms = tuple(re.compile(b"".join(_char(c) for c in s)) for s in secrets)

    def bytes(self, data: bytes) -> bytes:
        """``data`` with every secret, in any form, replaced by ``[redacted]``.

        A body with no escape in it (most) is only searched for the secrets as they are."""
        if not _escaped(data):
            for raw in self._raw:
                if raw in data:
                    data = data.replace(raw, REDACTED.encode())
            return data
        for form in self._forms:
            data = form.sub(REDACTED.encode(), data)
        return data

    def text(self, value: str) -> str:
        """A header value, as :meth:`bytes` does it."""
        data = value.encode("utf-8", "surrogateescape")
        cut = self.bytes(data)
        return value if cut == data else cut.decode("utf-8", "surrogateescape")

    def __call__(self, response: Response) -> Response:
        """The response with every secret cut out of its body and header values."""
        body = self.bytes(response.body)
        headers = {k: self.text(v) for k, v in response.headers.items()}
        if body == response.body and headers == response.headers:
            return response
        return Response(response.status, headers, body)
