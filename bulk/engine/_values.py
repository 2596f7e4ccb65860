"""The engine's values: its settings, its plan, and the work its senders take."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bulk._defaults import PRODUCTION, RESEND_DELAY
from bulk.providers._base import CampaignCheck, NumberState


@dataclass(frozen=True, slots=True)
class EngineConfig:
    #: first poll this long after a submission; rounds start here
    poll_interval: float = PRODUCTION.poll_interval
    poll_max_interval: float = 300.0  #: rounds back off up to this
    #: a row unsettled this long after submission is unknown
    settle_timeout: float = PRODUCTION.settle_timeout
    workers: int = 16  #: concurrent senders (the meter's cap applies below them)
    #: wait before reading (or resending) after a request got no usable answer: a change
    #: whose answer was lost may still be landing
    resend_delay: float = RESEND_DELAY
    #: epoch seconds after which no new change is sent (rows not sent end ``deferred``);
    #: a two-step move already released still gets its link
    send_until: float | None = None


#: why a change request was sent again (:attr:`Engine.resent`)
RESENT_WITHOUT_REFUSED = "a batch refused for a number in it, sent again without that number"
RESENT_TOO_LARGE = "a batch the provider found too large, sent again in smaller batches"
RESENT_LOST = "a request whose answer was lost or that did not go out, read, then sent again"


@dataclass(slots=True)
class Plan:
    """What the run will do, computed by reading only."""

    campaigns: dict[str, CampaignCheck] = field(default_factory=dict)
    members: dict[str, dict[str, NumberState]] = field(default_factory=dict)
    already: int = 0
    unusable: int = 0
    adopted: int = 0
    to_link: dict[str, list[int]] = field(default_factory=dict)
    to_unlink: list[int] = field(default_factory=list)
    to_release: list[int] = field(default_factory=list)
    #: rows a previous run left in flight that planning could not read yet: read first
    to_check: list[int] = field(default_factory=list)
    read_requests: int = 0
    #: rows whose change is under way when sending starts: found in flight at the provider
    #: (``adopted``), or submitted by an earlier run of the job and still being polled
    in_progress: int = 0
    #: what an earlier run of the job left in its journal (None: a new journal)
    resumed: str | None = None
    #: per planned row, what planning saw of its number: its state in each campaign it names
    #: (a reviewed plan's drift check compares these), and when; kept when the engine has
    #: a ``review``
    observed: dict[int, dict[str, NumberState]] = field(default_factory=dict)
    observed_at: float = 0.0

    def link_requests(self, batch: int) -> int:
        return sum(math.ceil(len(lines) / batch) for lines in self.to_link.values())


@dataclass(frozen=True, slots=True)
class _LinkWork:
    campaign: str
    lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _UnlinkWork:
    campaign: str
    line: int
    release: bool  #: move step one


@dataclass(frozen=True, slots=True)
class _CheckWork:
    """Rows whose change may have landed: read them, then decide."""

    lines: tuple[int, ...]


_Work = _LinkWork | _UnlinkWork | _CheckWork
