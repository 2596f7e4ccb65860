"""US long-code number parsing shared by both simulated providers (pure)."""

from __future__ import annotations

import re
import uuid

_US = re.compile(r"^\+?1([2-9]\d{2})([2-9]\d{6})$")
#: Toll-free area codes: not 10DLC, so the sandbox treats them as invalid.
TOLL_FREE_NPA = frozenset({"800", "833", "844", "855", "866", "877", "888"})
#: Non-geographic service area codes (personal, premium, government, inter-exchange...).
NON_GEOGRAPHIC_NPA = frozenset(
    {"456", "500", "544", "566", "577", "588", "600", "622", "633", "644", "655", "677", "688",
     "700", "710", "900"} | {str(n) for n in range(521, 534)}
)


def to_e164(raw: object) -> str | None:
    """``"+14155550100"`` for a valid-looking US long code given with or without ``+``.

    Valid-looking: country code 1, area code and exchange starting 2-9, the area code not
    toll-free (800, 833, 844, 855, 866, 877, 888), not non-geographic (500, 521-533, 544, 566,
    577, 588, 600, 622, 633, 644, 655, 677, 688, 700, 710, 900, 456), not an N11 service code
    and not a reserved N9X code. Anything else (including 10-digit numbers without the
    country code) gives ``None``.
    """
    if not isinstance(raw, str):
        return None
    match = _US.match(raw)
    if match is None:
        return None
    npa = match.group(1)
    if npa in TOLL_FREE_NPA or npa in NON_GEOGRAPHIC_NPA or npa[1:] == "11" or npa[1] == "9":
        return None
    return f"+1{npa}{match.group(2)}"


def digits(e164: str) -> str:
    """Plivo's spelling of a number: digits without ``+``."""
    return e164.lstrip("+")


def agentmessage_number_id(e164: str, org_id: str | None = None) -> str:
    """The AgentMessage resource id of a number: ``uuid5(NAMESPACE_URL, "+1...")``.

    A number owned by several organizations is a resource in each: the first owner (in seed
    order) has that id, each further one ``uuid5(NAMESPACE_URL, "<org_id>/+1...")``, the id
    this gives with ``org_id``."""
    name = e164 if org_id is None else f"{org_id}/{e164}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def number_range(start: str, count: int) -> list[str]:
    """``count`` consecutive E.164 numbers from ``start`` (which must be valid-looking)."""
    first = to_e164(start)
    if first is None:
        raise ValueError(f"not a valid-looking US number: {start!r}")
    base = int(first[1:])
    out = []
    for i in range(count):
        e164 = to_e164(f"+{base + i}")
        if e164 is None:
            raise ValueError(f"range from {start} x {count} leaves the valid US numbers")
        out.append(e164)
    return out
