"""What every provider adapter speaks: requests, responses, verdicts, number states.

Nothing here touches a socket. A provider module turns intentions into :class:`Request` values
and classifies :class:`Response` values into :class:`Verdict` values with pure functions; the
engine's HTTP adapter executes requests and applies limits and retries.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, described without performing it."""

    method: str
    path: str
    endpoint: str
    params: Mapping[str, str] | None = None
    json: Any = None
    #: rows (input lines) this request is on behalf of, for per-row attempt counts
    lines: tuple[int, ...] = ()

    @property
    def changes_state(self) -> bool:
        """True for a change (link, unlink, attach, detach): never resent blind."""
        return self.method not in ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers (lower-cased names) and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` when it is not (nested deeper than the
        parser goes, too: a body is never allowed to raise anything else)."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("JSON nested too deep to read") from None


class Kind(enum.Enum):
    """How the engine must treat a response.

    A provider's ``classify`` says what *one try* got: ``OK``, ``UNDER_WAY``, ``ABSENT``,
    ``REFUSED``, ``TRANSIENT``, ``RATE_LIMITED`` or ``AUTH``. ``NO_ANSWER`` is never a
    classification: it is what the sender hands back when it stops trying (reads whose tries
    ran out; a change whose answer was lost, see :attr:`Verdict.may_have_landed`).
    """

    OK = "ok"  #: it worked; ``data`` holds the parsed body
    #: the change asked for is already requested or done ("already requested for linking")
    UNDER_WAY = "under_way"
    #: the number is not in the campaign ("not linked to this campaign")
    ABSENT = "absent"
    REFUSED = "refused"  #: permanent refusal; ``reason`` says why, ``numbers`` whom
    TRANSIENT = "transient"  #: this try got no usable answer (5xx, unreadable body, transport)
    RATE_LIMITED = "rate_limited"  #: 429: pause every sender, then try again
    AUTH = "auth"  #: credentials or scope refused: stop the run
    NO_ANSWER = "no_answer"  #: the sender gave up: no usable answer (see ``may_have_landed``)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classified response."""

    kind: Kind
    status: int = 0
    data: Any = None
    reason: str | None = None
    numbers: tuple[str, ...] = ()
    retry_after: float | None = None
    request_id: str | None = None
    #: the request may have reached the provider and taken effect (a 5xx, a reset, a timeout,
    #: an unreadable body, a redirect); False only when it surely did not (refused to connect)
    may_have_landed: bool = True
    #: what the next request of a paged read needs (a cursor), when the answer names one
    next_cursor: str | None = None


def unanswered(verdict: Verdict) -> tuple[str, bool] | None:
    """For a verdict with no usable answer: its reason, and whether the request may have
    landed (a 429 never did). None for any other verdict. The one place the adapters learn
    whether a change was *lost* (read before resending) or surely *unsent*."""
    if verdict.kind not in (Kind.NO_ANSWER, Kind.TRANSIENT, Kind.RATE_LIMITED):
        return None
    landed = verdict.kind is not Kind.RATE_LIMITED and verdict.may_have_landed
    return verdict.reason or "no usable answer", landed


#: what ``Provider.current_campaign`` returns for a number whose campaign the provider's
#: answer did not make readable (a ``campaign_id`` missing, or not a string): never a campaign
#: id, never "in none"; rows that would change such a number are refused
UNREADABLE_CAMPAIGN = "(unreadable)"


class Settlement(enum.Enum):
    """Where one number stands with respect to one campaign."""

    ABSENT = "absent"  #: not in the campaign, nothing pending
    PENDING = "pending"  #: a link or unlink is still propagating
    ACTIVE = "active"  #: linked and settled
    FAILED = "failed"  #: the link settled as failed
    UNRECOGNISED = "unrecognised"  #: a status value bulk does not know


@dataclass(frozen=True, slots=True)
class NumberState:
    settlement: Settlement
    provider_status: str | None = None


def seen_twice(first: NumberState, second: NumberState) -> NumberState:
    """A number one read shows twice (twice on a page, or on two pages read side by side):
    the same status is that status; two statuses settle nothing, whichever came last. The
    number is taken as still pending (a later read decides; at the deadline the row is
    ``unknown``), with both statuses kept, so the order of entries or pages never turns a
    FAILED link into a success."""
    if first == second:
        return first
    raws = {
        part
        for state in (first, second)
        for part in (state.provider_status or state.settlement.value).split(" and ")
    }
    return NumberState(Settlement.PENDING, " and ".join(sorted(raws)))


def merge_seen(found: dict[str, NumberState], more: Mapping[str, NumberState]) -> None:
    """Add ``more`` to ``found``; a number in both with two states settles nothing
    (:func:`seen_twice`), whichever entry or page came last."""
    for number, state in more.items():
        known = found.get(number)
        found[number] = state if known is None else seen_twice(known, state)


@dataclass(frozen=True, slots=True)
class Glance:
    """One request's look at a campaign: the first page of its list, and the campaign's counts
    by settlement when the provider sends them. The engine glances before deciding whether
    reading every page is worth its requests; a glance decides nothing by absence."""

    #: the first page's numbers (a number missing here may be on a later page)
    members: dict[str, NumberState]
    #: every number of the campaign by settlement (the whole campaign, not only this page);
    #: None when the provider sends no counts
    counts: dict[Settlement, int] | None = None
    #: the first page was the whole list
    whole: bool = False
    #: where the rest of the list continues, for a provider that pages by cursor
    cursor: str | None = None
    #: the campaign the page's body names, when the provider's list names it (Plivo's does):
    #: a page naming the campaign asked for shows it exists and this account may read it
    names: str | None = None
    #: how many numbers the whole list holds, when the page's answer says (AgentMessage's
    #: ``meta.total``); a hint of the cost of reading every page, like ``counts``
    total: int | None = None


@dataclass(frozen=True, slots=True)
class CampaignCheck:
    """Whether rows may be sent to a campaign; ``reason`` when not."""

    campaign_id: str
    usable: bool
    reason: str | None = None
    status: str | None = None


@dataclass(slots=True)
class LinkOutcome:
    """What one link (or attach) request did for the numbers it carried."""

    accepted: list[str] = field(default_factory=list)
    #: numbers the provider says are already requested/linked: under way or done, poll them
    under_way: list[str] = field(default_factory=list)
    #: numbers refused for themselves, with the provider's text
    refused: dict[str, str] = field(default_factory=dict)
    #: numbers to send again in a new request (the batch was refused for another number)
    resend: list[str] = field(default_factory=list)
    #: numbers whose request's answer was lost: it may have landed; read before anything
    lost: dict[str, str] = field(default_factory=dict)
    #: numbers whose request surely did not land (never connected, rate limited throughout)
    unsent: dict[str, str] = field(default_factory=dict)
    #: the provider refused the request for carrying too many numbers (its text): every
    #: number is in ``resend``; send them again in smaller batches
    too_large: str | None = None
    #: the largest batch the refusal's text names, when it names one
    size_limit: int | None = None


@dataclass(slots=True)
class UnlinkOutcome:
    """What one unlink (or detach) request did. Exactly one field is set."""

    accepted: bool = False
    #: the provider says an unlink is already requested for the number: under way
    under_way: bool = False
    #: the number is not in the campaign (nothing to unlink)
    absent: bool = False
    refused: str | None = None
    lost: str | None = None  #: the answer was lost: the unlink may have landed
    unsent: str | None = None  #: surely not sent, or not sent by choice (a read failed first)


#: the engine's send window (``--send-until``) as a predicate: true once it has closed. A
#: change handed one is not sent once it is true, asked again when the request's turn comes
#: (it may wait long at a low rate or a 429 pause): it comes back surely unsent
WindowClosed = Callable[[], bool]


class Send(Protocol):
    """The engine's HTTP adapter: send a request, retrying and rate limiting as needed. A
    change request given ``window_closed`` is not sent once it is true (``NO_ANSWER`` that
    surely did not land); reads ignore it."""

    def __call__(
        self,
        request: Request,
        classify: Callable[[Request, Response], Verdict],
        *,
        window_closed: WindowClosed | None = None,
    ) -> Awaitable[Verdict]: ...


class Provider(Protocol):
    """One provider, as the engine sees it. Numbers are always E.164 (``+14155550100``)."""

    name: str
    #: numbers per link request
    max_batch: int
    #: entries per page of a campaign's number list
    page_size: int
    #: True when a move is one request (attach to the new campaign); False when it is an
    #: unlink from the old campaign, settled, then a link to the new one
    move_in_one_step: bool
    #: the default request rate bulk uses (requests per second), with headroom
    default_rate: float
    #: True when, after ``resolve``, ``current_campaign`` tells where each number is now
    knows_current_campaign: bool

    def current_campaign(self, number: str) -> str | None:
        """The campaign the number is in now (None: none), when ``knows_current_campaign``."""
        ...

    async def check_campaign(self, campaign_id: str) -> CampaignCheck: ...

    async def survey_campaign(
        self, campaign_id: str
    ) -> tuple[CampaignCheck, dict[str, NumberState] | None]:
        """The campaign's check and, when it is usable, every number in it, in as few requests
        as the provider allows (:func:`check_then_list` where nothing is saved)."""
        ...

    async def campaign_numbers(
        self,
        campaign_id: str,
        size_hint: int | None = None,
        first: Glance | None = None,
        *,
        want: Collection[str] | None = None,
    ) -> dict[str, NumberState]:
        """Every number in the campaign, by paging its list. ``size_hint`` (how many numbers
        the engine expects there) lets an offset-paged provider ask for every page at once;
        ``first``, a glance just taken, stands for the first page (not read again); ``want``,
        the numbers the caller looks for: a provider may stop before the list's end only
        once all of them are found (counts are hints; without ``want`` it reads to the end).
        A number missing here is only a hint of absence: lists may shift while read."""
        ...

    async def campaign_glance(self, campaign_id: str) -> Glance:
        """The first page of the campaign's list and its counts by settlement, if sent: one
        request."""
        ...

    async def resolve(self, numbers: Sequence[str]) -> dict[str, str]:
        """Prepare to address these numbers; returns number -> reason for those that cannot be."""
        ...

    async def link(
        self,
        campaign_id: str,
        numbers: Sequence[str],
        lines: Sequence[int],
        *,
        window_closed: WindowClosed | None = None,
    ) -> LinkOutcome:
        """Link the numbers (``lines``: their rows). ``window_closed`` goes to each change
        request's :class:`Send`: a change whose turn comes once it is true is not sent (the
        numbers come back ``unsent``)."""
        ...

    async def unlink(
        self, campaign_id: str, number: str, line: int, *, window_closed: WindowClosed | None = None
    ) -> UnlinkOutcome:
        """Unlink the number; ``window_closed`` as for :meth:`link`."""
        ...

    async def number_state(self, campaign_id: str, number: str, line: int) -> NumberState:
        """The number's state in the campaign from a single, exact read (absence is proof)."""
        ...


async def check_then_list(
    provider: Provider, campaign_id: str
) -> tuple[CampaignCheck, dict[str, NumberState] | None]:
    """A campaign's survey the plain way: its check, then its list when usable."""
    check = await provider.check_campaign(campaign_id)
    return check, (await provider.campaign_numbers(campaign_id) if check.usable else None)


class ProviderUnavailable(Exception):
    """A read got no usable answer after every retry (internal: the engine decides what follows)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


__all__ = [
    "UNREADABLE_CAMPAIGN",
    "CampaignCheck",
    "Glance",
    "Kind",
    "LinkOutcome",
    "NumberState",
    "Provider",
    "ProviderUnavailable",
    "Request",
    "Response",
    "Send",
    "Settlement",
    "UnlinkOutcome",
    "Verdict",
    "WindowClosed",
    "check_then_list",
    "merge_seen",
    "seen_twice",
    "unanswered",
]
