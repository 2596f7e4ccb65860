"""Every default of a run, in one place: :class:`bulk.JobSpec`'s fields, the command line's
options (their click defaults and help text), job files (which take the options' defaults),
:func:`bulk.run_job` and the engine's configuration read them from here.

What a provider knows (its base URL, default rate and batch, whether its rate is found or
fixed) is not here: it is the provider's own (:mod:`bulk.providers`). This module imports
nothing of bulk's, so every layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``--max-rate``: the ceiling of ``--rate auto``, requests per second
MAX_RATE = 100.0
#: ``--concurrency``: requests in flight at once, per account
CONCURRENCY = 8
#: ``--timeout``: seconds one HTTP request may take, connect to last byte
TIMEOUT = 30.0
#: ``--attempts``: tries per request for 5xx, timeouts, resets and unreadable bodies
ATTEMPTS = 5
#: ``--backoff-base``: the first pause after a 429 with no Retry-After (doubles per 429)
BACKOFF_BASE = 1.0
#: seconds of nothing but 429s from an account's provider after which that account stops
MAX_REFUSED = 900.0
#: ``--resend-delay``: wait before reading a number whose change's answer was lost
RESEND_DELAY = 5.0
#: how many times a row's change is sent again after a send that surely did not land, or
#: after a read showed that a lost answer's change had not landed, before the row ends as
#: ``unknown``; also how many rounds planning's reads get (``--attempts`` is per request)
RESEND_ROUNDS = 3
#: ``--region``: the allowed number regions
REGIONS: tuple[str, ...] = ("US",)
#: ``--number-type``: which US number types are accepted
NUMBER_TYPE = "either"
#: ``--max-unlink``: a sync that would unlink more numbers stops before sending anything
MAX_UNLINK = 100
#: polling rounds back off up to this many times the poll interval while nothing settles
POLL_BACKOFF = 8


@dataclass(frozen=True, slots=True)
class Timing:
    """How a run waits for changes to settle: the first status check this long after a
    submission (``--poll-interval``), and a number still unsettled this long after its
    request ends ``unknown`` (``--settle-timeout``)."""

    poll_interval: float
    settle_timeout: float

    @property
    def poll_max_interval(self) -> float:
        """The longest a polling round backs off to."""
        return max(self.poll_interval * POLL_BACKOFF, self.poll_interval)


#: against a real provider: changes settle in seconds to minutes, sometimes an hour
PRODUCTION = Timing(poll_interval=30.0, settle_timeout=3600.0)


@dataclass(frozen=True, slots=True)
class SandboxProfile:
    """``--sandbox``: the in-process sandbox settles a change in ``settle`` seconds (uniform
    between the two), so a run against it checks every second and gives up after 15 s."""

    timing: Timing
    settle: tuple[float, float]


#: the sandbox's fast settings, one named profile
SANDBOX = SandboxProfile(Timing(poll_interval=1.0, settle_timeout=15.0), settle=(0.3, 1.5))


def timing(sandbox: bool, poll_interval: float | None, settle_timeout: float | None) -> Timing:
    """The run's timing: what was given, else the profile's (the sandbox's, or production's)."""
    profile = SANDBOX.timing if sandbox else PRODUCTION
    return Timing(
        poll_interval or profile.poll_interval, settle_timeout or profile.settle_timeout
    )


def adaptive(rate: float | Literal["auto"] | None, provider_mode: Literal["fixed", "auto"]) -> bool:
    """Whether the rate is found while the run goes (``--rate auto``, or no ``--rate`` for a
    provider whose default mode is auto) rather than fixed: the one place this is decided."""
    return rate == "auto" or (rate is None and provider_mode == "auto")


def rate_help(title: str, rate: float, mode: Literal["fixed", "auto"]) -> str:
    """A provider's default rate as ``--rate``'s help says it."""
    return f"{title} {rate:g}/s" if mode == "fixed" else f"{title} auto from {rate:g}/s"


def timing_help(field: Literal["poll_interval", "settle_timeout"]) -> str:
    """``[default: 30; 1 with --sandbox]``: an option's default, in its help."""
    plain = getattr(PRODUCTION, field)
    fast = getattr(SANDBOX.timing, field)
    return f"[default: {plain:g}; {fast:g} with --sandbox]"


__all__ = [
    "ATTEMPTS",
    "BACKOFF_BASE",
    "CONCURRENCY",
    "MAX_RATE",
    "MAX_REFUSED",
    "MAX_UNLINK",
    "NUMBER_TYPE",
    "POLL_BACKOFF",
    "PRODUCTION",
    "REGIONS",
    "RESEND_DELAY",
    "RESEND_ROUNDS",
    "SANDBOX",
    "TIMEOUT",
    "SandboxProfile",
    "Timing",
    "adaptive",
    "rate_help",
    "timing",
    "timing_help",
]
