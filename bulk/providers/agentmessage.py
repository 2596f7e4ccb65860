"""AgentMessage phone numbers: attach and detach 10DLC campaigns.

The wire (written down in ``bulk/providers/agentmessage.md``, with every choice bulk made where
AgentMessage's documentation is silent; base ``https://api.agentmsg.io``):

* ``GET    /v1/phone-numbers?limit=100&cursor=...[&campaign_id=...]``  list (``meta.next_cursor``)
* ``GET    /v1/phone-numbers/{id}``                                    one number
* ``POST   /v1/phone-numbers/{id}/campaign``  ``{"campaign_id": ...}``  attach (replaces any other)
* ``DELETE /v1/phone-numbers/{id}/campaign``                            detach (idempotent)
* ``GET    /v1/campaigns?limit=100&cursor=...``                         list (``X-Next-Cursor``)

Every answer is an envelope ``{"success", "error": {"code", "message", "request_id",
"details"}, "meta", "data"}``. The request builders, :func:`classify` and :func:`settlement`
are pure and tested against recorded bodies (they live in :mod:`bulk.providers._am_wire`,
:class:`Directory` in :mod:`bulk.providers._am_directory`, the list's cost arithmetic in
:mod:`bulk.providers._am_list`; all are importable from here); :class:`AgentMessageProvider`
is the thin async adapter that hands requests to the engine's ``send``.

Numbers are addressed by resource id. :class:`Directory` is the pure, synchronous picture of
the organisation (number -> id, campaign and carrier status; campaigns that refuse every
attach); :meth:`AgentMessageProvider.resolve` fills it from the organisation's number list:
its first page, then one ``search`` per number when that is cheaper than the remaining pages
(``meta.total`` says), else every page once (100 per page, following ``meta.next_cursor``
until it is null, whatever a page's length). Numbers the organisation does not own are refused
before any change, and only once every page has been read.

Choices where the wire is not documented:

* **Rate.** No limit is documented for the phone-number endpoints. ``default_rate`` is 9.5
  requests/s: a conservative 10/s (the per-organisation window the project's sandbox
  enforces, 100 per 10 s) less 5 % so that latency jitter, which bunches arrivals, does not
  tip a sliding window over. ``--rate`` overrides it.
* **Status values.** Only ``pending`` is documented for ``carrier_line_option_status``. The
  settled values below are the ones the project's sandbox uses (``bulk/sandbox``); any other
  value is reported raw as unrecognised, never as success. Settlement of a number *relative
  to campaign C* (``provider_status`` always records the raw value):

  ======================  ==============================  ================
  number's campaign_id    carrier_line_option_status      settlement
  ======================  ==============================  ================
  C                       ``pending``                     PENDING
  C                       ``active``                      ACTIVE
  C                       ``failed``                      FAILED
  C                       anything else, or null          UNRECOGNISED
  null                    ``pending``                     PENDING (a detach propagating)
  null                    anything else (``detached``)    ABSENT
  another campaign        any                             ABSENT (not C's pending)
  missing, "", not a str  any                             UNRECOGNISED (never absence)
  ======================  ==============================  ================

  Values are compared case-insensitively.
* **Errors.** Classification keys on ``error.code``, never on ``message``. ``UNAUTHORIZED``
  (401) and ``FORBIDDEN`` (403, a missing scope such as ``numbers:write``) stop the run
  (``Kind.AUTH``): every later row would meet the same refusal. ``RATE_LIMITED`` (429) pauses
  every sender for the ``Retry-After`` seconds. 5xx, an unreadable body (truncated, HTML) and
  an envelope without ``success`` are no usable answer (``TRANSIENT``): a read is tried
  again; an attach or detach is read before it is ever sent again (it may have landed).
  Every other error refuses the row, with the code, the message and the request id
  (``error.request_id``, else ``X-Request-Id``) in the reason. After
  ``CAMPAIGN_NOT_ACTIVE`` or ``BRAND_NOT_VERIFIED`` the adapter refuses later rows of that
  campaign itself, with the same reason, instead of sending them.
* **Detach.** A row's detach is sent only when the number is attached to the row's campaign
  (or to none: detach is idempotent). A number attached to *another* campaign is confirmed
  with a read and then refused, never detached. A detached number leaves the campaign's
  filtered list at once while its detach is still ``pending``: the engine never takes absence
  from a list as proof, and confirms it with a single read (which shows ``pending``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from itertools import chain
from typing import Any

import anyio

from bulk._aio import gather_map
from bulk.providers._am_directory import Directory, NumberRecord
from bulk.providers._am_list import list_total, search_instead
from bulk.providers._am_wire import (
    AMBIGUOUS,
    AUTH_CODES,
    CAMPAIGN_CODES,
    DEFAULT_BASE_URL,
    DEFAULT_RATE,
    NOT_OWNED,
    OTHER_RESOURCE,
    PAGE_SIZE,
    PENDING,
    STATUS_SETTLEMENT,
    attach_request,
    campaign_check,
    classify,
    detach_outcome,
    detach_request,
    error_code,
    get_number_request,
    is_campaign_id,
    item_key,
    item_number,
    link_outcome,
    list_campaigns_request,
    list_numbers_request,
    page_items,
    request_id_of,
    resource_of,
    retry_after,
    settlement,
    to_e164,
)
from bulk.providers._base import (
    UNREADABLE_CAMPAIGN,
    CampaignCheck,
    Glance,
    Kind,
    LinkOutcome,
    NumberState,
    ProviderUnavailable,
    Request,
    Send,
    Settlement,
    UnlinkOutcome,
    Verdict,
    WindowClosed,
    check_then_list,
    merge_seen,
)

# --- the adapter (thin I/O) -----------------------------------------------------------------


class AgentMessageProvider:
    """AgentMessage behind the engine's provider protocol: requests out, :class:`Directory`
    and outcomes back. Every decision about a row is the engine's (``bulk._states``)."""

    name = "agentmessage"
    max_batch = 1  # attach is per number
    page_size = PAGE_SIZE
    move_in_one_step = True  # attaching another campaign replaces the old one
    default_rate = DEFAULT_RATE
    #: ``resolve`` reads each number's resource (a search or the whole list), so each
    #: number's campaign is known
    knows_current_campaign = True

    def __init__(self, send: Send) -> None:
        self._send = send
        self.directory = Directory()
        self._list_lock = anyio.Lock()
        self._campaigns: dict[str, Mapping[str, Any]] | None = None
        self._campaign_lock = anyio.Lock()

    # -- reads -------------------------------------------------------------------------------

    async def _read(self, request: Request) -> Verdict:
        verdict = await self._send(request, classify)
        if verdict.kind is not Kind.OK:
            raise ProviderUnavailable(
                f"{request.method} {request.path}: {verdict.reason or f'HTTP {verdict.status}'}"
            )
        return verdict

    async def _pages(
        self, first: Request, cursor: str | None = None, before: Sequence[Mapping[str, Any]] = ()
    ) -> list[Mapping[str, Any]]:
        """Every item of a cursor-paged list, following each answer's ``next_cursor``
        (from ``cursor`` when given: the pages before it, ``before``, were read already). A
        cursor seen twice, or a page whose items were all read already (a list ignoring its
        cursor, under fresh ones), is no usable answer: such a list would be paged forever."""
        found: list[Mapping[str, Any]] = []
        request: Request = first
        seen: set[str] = set()
        read: set[str] = {item_key(i) for i in before}
        if cursor is not None:
            seen.add(cursor)
            request = replace(request, params={**(request.params or {}), "cursor": cursor})
        while True:
            verdict = await self._read(request)
            items = page_items(verdict)
            keys = {item_key(i) for i in items}
            if keys and keys <= read:
                raise ProviderUnavailable(f"the list {first.path} repeated a page it had sent")
            read |= keys
            found.extend(items)
            cursor = verdict.next_cursor
            if cursor is None:
                return found
            if cursor in seen:
                raise ProviderUnavailable(f"the list {first.path} repeated cursor {cursor!r}")
            seen.add(cursor)
            request = replace(request, params={**(request.params or {}), "cursor": cursor})

    async def _find(self, numbers: Sequence[str]) -> None:
        """Learn the numbers' resources, the cheaper way: the organisation's first page
        (its ``meta.total`` tells the organisation's size), then one ``search`` per number
        not on it when that costs fewer requests than the remaining pages, else every page.
        Only a resource for the very number counts as found; a number no search finds
        sends bulk through every page (a search's silence is no proof the number is not
        the organisation's), after which the organisation is known whole."""
        async with self._list_lock:
            missing = [n for n in dict.fromkeys(numbers) if n not in self.directory.numbers]
            if self.directory.listed or not missing:
                return
            first = await self._read(list_numbers_request())
            items = page_items(first)
            if first.next_cursor is not None:
                shown = {item_number(i) for i in items}
                rest = [n for n in missing if n not in shown]
                if search_instead(len(rest), list_total(first), PAGE_SIZE):
                    found = await gather_map(
                        {n: functools.partial(self._search, n) for n in rest}
                    )
                    if all(found.values()):
                        self.directory.learn_all([*items, *chain(*found.values())])
                        return
                items += await self._pages(list_numbers_request(), first.next_cursor, items)
            self.directory.learn_all(items)
            self.directory.listed = True

    async def _search(self, number: str) -> list[Mapping[str, Any]]:
        """The organisation's resources for exactly ``number`` (a filtered list, paged)."""
        items = await self._pages(list_numbers_request(search=number.lstrip("+")))
        return [i for i in items if item_number(i) == number]

    async def _campaign_list(self) -> Mapping[str, Mapping[str, Any]]:
        async with self._campaign_lock:
            if self._campaigns is None:
                items = await self._pages(list_campaigns_request())
                self._campaigns = {str(i["id"]): i for i in items if isinstance(i.get("id"), str)}
            return self._campaigns

    async def check_campaign(self, campaign_id: str) -> CampaignCheck:
        if not is_campaign_id(campaign_id):
            return campaign_check(campaign_id, {})
        return campaign_check(campaign_id, await self._campaign_list())

    async def survey_campaign(
        self, campaign_id: str
    ) -> tuple[CampaignCheck, dict[str, NumberState] | None]:
        # a number list names no campaign: the check (one cached campaign list) comes first
        return await check_then_list(self, campaign_id)

    async def campaign_numbers(
        self,
        campaign_id: str,
        size_hint: int | None = None,
        first: Glance | None = None,
        *,
        want: Collection[str] | None = None,
    ) -> dict[str, NumberState]:
        # cursor paging to the last page: pages come one after another, hint and want unused
        if first is not None and first.whole:
            return dict(first.members)
        cursor = None if first is None else first.cursor
        resources = await self._pages(list_numbers_request(campaign_id=campaign_id), cursor)
        found = dict(first.members) if first is not None else {}
        merge_seen(found, self.directory.members(campaign_id, resources))
        return found

    async def campaign_glance(self, campaign_id: str) -> Glance:
        """The first page of the campaign's numbers (AgentMessage sends no counts; the list's
        ``meta.total``, when sent, tells the campaign's size)."""
        verdict = await self._read(list_numbers_request(campaign_id=campaign_id))
        members = self.directory.members(campaign_id, page_items(verdict))
        whole, cursor = verdict.next_cursor is None, verdict.next_cursor
        return Glance(members, None, whole=whole, cursor=cursor, total=list_total(verdict))

    async def resolve(self, numbers: Sequence[str]) -> dict[str, str]:
        if not numbers:
            return {}
        await self._find(numbers)
        return self.directory.unowned(numbers)

    def current_campaign(self, number: str) -> str | None:
        """Where ``resolve`` (the organisation's paged list) last saw the number."""
        return self.directory.campaign_of(number)

    async def _record(self, number: str) -> NumberRecord | None:
        if number not in self.directory.numbers and not self.directory.listed:
            await self._find([number])
        return self.directory.numbers.get(number)

    async def number_state(self, campaign_id: str, number: str, line: int) -> NumberState:
        record = await self._record(number)
        if record is None:
            return NumberState(Settlement.ABSENT)  # not the organisation's: in no campaign
        verdict = await self._send(get_number_request(record.id, line=line), classify)
        if verdict.kind is Kind.OK and (resource := resource_of(verdict)) is not None:
            if not self.directory.about(resource, number):
                raise ProviderUnavailable(f"the read of {number} was {OTHER_RESOURCE}")
            self.directory.learn(resource)
            return settlement(resource, campaign_id)
        # a 404 (the number "left the organisation") while its list showed it says nothing
        # of its campaign: no usable answer, never proof that it is in none
        raise ProviderUnavailable(verdict.reason or f"HTTP {verdict.status}")

    # -- changes -----------------------------------------------------------------------------

    async def link(
        self,
        campaign_id: str,
        numbers: Sequence[str],
        lines: Sequence[int],
        *,
        window_closed: WindowClosed | None = None,
    ) -> LinkOutcome:
        total = LinkOutcome()
        for i, number in enumerate(numbers):
            line = lines[i] if i < len(lines) else 0
            outcome = await self._attach(campaign_id, number, line, window_closed)
            total.accepted += outcome.accepted
            total.under_way += outcome.under_way
            total.refused.update(outcome.refused)
            total.lost.update(outcome.lost)
            total.unsent.update(outcome.unsent)
        return total

    async def _attach(
        self, campaign_id: str, number: str, line: int, window_closed: WindowClosed | None
    ) -> LinkOutcome:
        record = await self._record(number)
        if record is None or number in self.directory.ambiguous:
            return LinkOutcome(refused={number: AMBIGUOUS if record else NOT_OWNED})
        if campaign_id in self.directory.blocked:
            return LinkOutcome(refused={number: self.directory.blocked[campaign_id]})
        request = attach_request(record.id, campaign_id, line=line)
        verdict = await self._send(request, classify, window_closed=window_closed)
        if verdict.kind is Kind.OK and (resource := resource_of(verdict)) is not None:
            if not self.directory.about(resource, number):
                return LinkOutcome(lost={number: f"the attach was {OTHER_RESOURCE}"})
            self.directory.learn(resource)
        self.directory.note_refusal(campaign_id, verdict)
        return link_outcome(number, campaign_id, verdict)

    async def unlink(
        self, campaign_id: str, number: str, line: int, *, window_closed: WindowClosed | None = None
    ) -> UnlinkOutcome:
        record = await self._record(number)
        if record is None or number in self.directory.ambiguous:
            return UnlinkOutcome(refused=AMBIGUOUS if record else NOT_OWNED)
        if record.campaign_id != campaign_id:
            # not in the campaign when last seen (the directory may be stale): look before
            # sending, so that a number attached to another campaign is never detached
            try:
                state = await self.number_state(campaign_id, number, line)
            except ProviderUnavailable as exc:
                return UnlinkOutcome(unsent=exc.reason)
            current = self.directory.campaign_of(number)
            if current == UNREADABLE_CAMPAIGN:
                return UnlinkOutcome(
                    refused="AgentMessage did not say which campaign the number is in "
                    "(its campaign_id is unreadable): left attached (not detached)"
                )
            if current not in (None, campaign_id):
                return UnlinkOutcome(
                    refused=f"attached to campaign {current}, not {campaign_id}: "
                    "left attached (not detached)"
                )
            if state.settlement is Settlement.ABSENT:
                return UnlinkOutcome(absent=True)
        request = detach_request(record.id, line=line)
        verdict = await self._send(request, classify, window_closed=window_closed)
        if verdict.kind is Kind.OK and (resource := resource_of(verdict)) is not None:
            if not self.directory.about(resource, number):
                return UnlinkOutcome(lost=f"the detach was {OTHER_RESOURCE}")
            self.directory.learn(resource)
        return detach_outcome(campaign_id, verdict)


__all__ = [
    "AMBIGUOUS",
    "AUTH_CODES",
    "CAMPAIGN_CODES",
    "DEFAULT_BASE_URL",
    "DEFAULT_RATE",
    "NOT_OWNED",
    "OTHER_RESOURCE",
    "PAGE_SIZE",
    "PENDING",
    "STATUS_SETTLEMENT",
    "AgentMessageProvider",
    "Directory",
    "NumberRecord",
    "attach_request",
    "campaign_check",
    "classify",
    "detach_outcome",
    "detach_request",
    "error_code",
    "get_number_request",
    "is_campaign_id",
    "link_outcome",
    "list_campaigns_request",
    "list_numbers_request",
    "page_items",
    "request_id_of",
    "resource_of",
    "retry_after",
    "settlement",
    "to_e164",
]
