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
are pure and tested against recorded bodies; :class:`AgentMessageProvider` is the thin async
adapter that hands requests to the engine's ``send``.

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
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any
from urllib.parse import quote

import anyio

from bulk._aio import gather_map
from bulk.providers._am_list import list_total, search_instead
from bulk.providers._base import (
    UNREADABLE_CAMPAIGN,
    CampaignCheck,
    Glance,
    Kind,
    LinkOutcome,
    NumberState,
    ProviderUnavailable,
    Request,
    Response,
    Send,
    Settlement,
    UnlinkOutcome,
    Verdict,
    check_then_list,
    seen_twice,
    unanswered,
)
from bulk.providers._text import describe_unreadable, json_or_none, retry_after_seconds

DEFAULT_BASE_URL = "https://api.agentmsg.io"
PAGE_SIZE = 100
#: requests per second: no limit is documented; 10/s less 5 % headroom (see the docstring)
DEFAULT_RATE = 9.5

NOT_OWNED = "not owned by this AgentMessage organisation"
AMBIGUOUS = "AgentMessage lists this number under two ids, or its id for two numbers: not sent"
OTHER_RESOURCE = "answered with another number's resource"

PENDING = "pending"
#: carrier_line_option_status of a number attached to the campaign in question
STATUS_SETTLEMENT: Mapping[str, Settlement] = {
    "pending": Settlement.PENDING,
    "active": Settlement.ACTIVE,
    "failed": Settlement.FAILED,
}

#: codes after which no other number can be attached to the same campaign
CAMPAIGN_CODES = frozenset({"CAMPAIGN_NOT_ACTIVE", "BRAND_NOT_VERIFIED"})
AUTH_CODES = frozenset({"UNAUTHORIZED", "FORBIDDEN"})

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def is_campaign_id(value: str) -> bool:
    """AgentMessage campaign ids are uuids."""
    return bool(_UUID.match(value))


def to_e164(number: str) -> str:
    """The wire's number as bulk spells it (``+14155550100``); tolerates a missing ``+``."""
    text = number.strip()
    return text if text.startswith("+") else "+" + text


# --- requests -------------------------------------------------------------------------------


def _page_params(limit: int, cursor: str | None) -> dict[str, str]:
    params = {"limit": str(limit)}
    if cursor:
        params["cursor"] = cursor
    return params


def list_numbers_request(
    cursor: str | None = None,
    *,
    campaign_id: str | None = None,
    search: str | None = None,
    limit: int = PAGE_SIZE,
) -> Request:
    params = _page_params(limit, cursor)
    if campaign_id is not None:
        params["campaign_id"] = campaign_id
    if search is not None:
        params["search"] = search
    return Request("GET", "/v1/phone-numbers", "list", params=params)


def _number_path(number_id: str) -> str:
    """The number's resource path; its id (the provider's) percent-encoded as one segment."""
    return "/v1/phone-numbers/" + quote(number_id, safe="")


def get_number_request(number_id: str, *, line: int = 0) -> Request:
    return Request("GET", _number_path(number_id), "get", lines=(line,) if line else ())


def attach_request(number_id: str, campaign_id: str, *, line: int = 0) -> Request:
    return Request(
        "POST",
        _number_path(number_id) + "/campaign",
        "attach",
        json={"campaign_id": campaign_id},
        lines=(line,) if line else (),
    )


def detach_request(number_id: str, *, line: int = 0) -> Request:
    return Request(
        "DELETE",
        _number_path(number_id) + "/campaign",
        "detach",
        lines=(line,) if line else (),
    )


def list_campaigns_request(cursor: str | None = None, *, limit: int = PAGE_SIZE) -> Request:
    return Request("GET", "/v1/campaigns", "campaigns", params=_page_params(limit, cursor))


# --- classification (pure) ------------------------------------------------------------------


def _error(body: Any) -> Mapping[str, Any]:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def request_id_of(body: Any, response: Response) -> str | None:
    """The failure's request id: the envelope's ``error.request_id``, else ``X-Request-Id``."""
    value = _error(body).get("request_id")
    if isinstance(value, str) and value:
        return value
    return response.headers.get("x-request-id") or None


def error_code(verdict: Verdict) -> str | None:
    """The envelope's stable ``error.code`` of a classified response, if it had one."""
    code = _error(verdict.data).get("code")
    return code if isinstance(code, str) and code else None


def _with_id(text: str, request_id: str | None) -> str:
    return f"{text} (request_id {request_id})" if request_id else text


def _error_text(body: Any, status: int) -> str:
    error = _error(body)
    code = error.get("code")
    message = error.get("message")
    code_text = code if isinstance(code, str) and code else f"HTTP {status}"
    if isinstance(message, str) and message:
        return f"{code_text}: {message}"
    return code_text


def retry_after(response: Response, body: Any = None) -> float | None:
    """``Retry-After`` in seconds (whole seconds on the wire; tolerant of fractions)."""
    raw: Any = response.headers.get("retry-after")
    if raw is None:
        details = _error(body).get("details")
        raw = details.get("retry_after") if isinstance(details, dict) else None
    return retry_after_seconds(raw)


def classify(request: Request, response: Response) -> Verdict:
    """Classify any AgentMessage response. Pure: status, headers and body in, a verdict out.

    ``data`` holds the parsed envelope whenever the body was JSON (also for refusals, so
    :func:`error_code` can read the code).
    """
    status = response.status
    body = json_or_none(response)
    envelope = body if isinstance(body, dict) else None
    rid = request_id_of(envelope, response)
    code = _error(envelope).get("code")
    if status == 429 or code == "RATE_LIMITED":
        return Verdict(
            Kind.RATE_LIMITED,
            status,
            data=envelope,
            reason=_with_id(_error_text(envelope, status), rid),
            retry_after=retry_after(response, envelope),
            request_id=rid,
        )
    if status >= 500:
        text = _error_text(envelope, status) if envelope is not None else None
        return Verdict(
            Kind.TRANSIENT,
            status,
            data=envelope,
            reason=_with_id(text or describe_unreadable(response), rid),
            request_id=rid,
        )
    if envelope is None:
        # truncated, HTML, empty: we cannot know what happened; ask again
        return Verdict(Kind.TRANSIENT, status, reason=_with_id(describe_unreadable(response), rid))
    if not isinstance(envelope.get("success"), bool):
        return Verdict(
            Kind.TRANSIENT,
            status,
            reason=_with_id(f"HTTP {status} with a body that is not an AgentMessage envelope", rid),
            request_id=rid,
        )
    if envelope["success"] != (200 <= status < 300):
        # the status and the envelope disagree on whether it worked: a change may have
        # landed (read the number before anything else), a read is tried again
        said = "success" if envelope["success"] else "no success"
        return Verdict(
            Kind.TRANSIENT,
            status,
            reason=_with_id(f"HTTP {status} with an envelope saying {said}", rid),
            request_id=rid,
        )
    if envelope["success"]:
        if (malformed := _malformed_list(request, envelope)) is not None:
            return Verdict(
                Kind.TRANSIENT, status, reason=_with_id(malformed, rid), request_id=rid
            )
        return Verdict(
            Kind.OK,
            status,
            data=envelope,
            request_id=rid,
            next_cursor=_next_cursor(request, response, envelope),
        )
    reason = _with_id(_error_text(envelope, status), rid)
    if code in AUTH_CODES or status in (401, 403):
        return Verdict(Kind.AUTH, status, data=envelope, reason=reason, request_id=rid)
    return Verdict(Kind.REFUSED, status, data=envelope, reason=reason, request_id=rid)


# --- reading bodies (pure) ------------------------------------------------------------------


def settlement(resource: Mapping[str, Any], campaign_id: str) -> NumberState:
    """Where a phone-number resource stands with respect to ``campaign_id`` (see the table)."""
    raw = resource.get("carrier_line_option_status")
    status = raw if isinstance(raw, str) and raw else None
    value = status.strip().lower() if status else None
    attached = resource.get("campaign_id")
    if "campaign_id" not in resource or not (attached is None or isinstance(attached, str)):
        # unsaid, or a number, a list: where the number is cannot be read; never absence
        return NumberState(Settlement.UNRECOGNISED, status)
    if not (attached is None or attached.strip()):
        # "" (or blanks): no campaign id, yet not the null that says "in none"
        return NumberState(Settlement.UNRECOGNISED, status)
    if attached == campaign_id:
        known = STATUS_SETTLEMENT.get(value) if value is not None else None
        return NumberState(known or Settlement.UNRECOGNISED, status)
    if attached is None and value == PENDING:
        return NumberState(Settlement.PENDING, status)
    return NumberState(Settlement.ABSENT, status)


def page_items(verdict: Verdict) -> list[Mapping[str, Any]]:
    """The resources of a list answer (``data`` is a list)."""
    data = verdict.data.get("data") if isinstance(verdict.data, dict) else None
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict)]


def resource_of(verdict: Verdict) -> Mapping[str, Any] | None:
    """The one resource of a get/attach/detach answer."""
    data = verdict.data.get("data") if isinstance(verdict.data, dict) else None
    return data if isinstance(data, dict) else None


def _malformed_list(request: Request, envelope: Mapping[str, Any]) -> str | None:
    """Why a list answer cannot be read as a page, or None. ``data`` must be a list, and a
    number list's ``meta.next_cursor`` null (the last page: published) or a non-empty string:
    a number, ``""``, an object or no ``meta`` at all says nothing about where the list goes
    on, and reading it as the end would refuse owned numbers as not owned."""
    if request.endpoint not in ("list", "campaigns"):
        return None
    if not isinstance(envelope.get("data"), list):
        return "a list answer whose data is not a list"
    if request.endpoint == "campaigns":
        return None
    meta = envelope.get("meta")
    if not isinstance(meta, dict) or "next_cursor" not in meta:
        return "a list answer without meta.next_cursor"
    cursor = meta["next_cursor"]
    if cursor is None or (isinstance(cursor, str) and cursor):
        return None
    return f"a list answer whose meta.next_cursor is {type(cursor).__name__} {cursor!r:.40}"


def _item_key(item: Mapping[str, Any]) -> str:
    """What tells one list item from another: its ``id``, else the whole item."""
    number_id = item.get("id")
    if isinstance(number_id, str) and number_id:
        return number_id
    return json.dumps(item, sort_keys=True, default=str)


def _item_number(item: Mapping[str, Any]) -> str | None:
    """A list item's number in E.164, when it names one."""
    number = item.get("number")
    return to_e164(number) if isinstance(number, str) and number else None


def _next_cursor(request: Request, response: Response, envelope: Mapping[str, Any]) -> str | None:
    """The cursor of the next page, where each list keeps it: a number list in
    ``meta.next_cursor``, the campaign list in the ``X-Next-Cursor`` header. None on the last
    page and for answers that are not lists."""
    if request.endpoint == "campaigns":
        return response.headers.get("x-next-cursor") or None
    if request.endpoint != "list":
        return None
    meta = envelope.get("meta")
    cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


@dataclass(slots=True)
class NumberRecord:
    """What bulk last saw of one phone-number resource."""

    id: str
    campaign_id: str | None
    status: str | None

    @classmethod
    def of(cls, resource: Mapping[str, Any]) -> NumberRecord | None:
        number_id = resource.get("id")
        if not isinstance(number_id, str) or not number_id:
            return None
        campaign = resource.get("campaign_id", UNREADABLE_CAMPAIGN)
        if campaign is not None and not (isinstance(campaign, str) and campaign.strip()):
            campaign = UNREADABLE_CAMPAIGN  # missing, empty, a number, a list: never "none"
        status = resource.get("carrier_line_option_status")
        return cls(number_id, campaign, status if isinstance(status, str) and status else None)


def link_outcome(number: str, campaign_id: str, verdict: Verdict) -> LinkOutcome:
    """What one attach verdict means for its number."""
    outcome = LinkOutcome()
    if verdict.kind is Kind.OK:
        resource = resource_of(verdict) or {}
        state = settlement(resource, campaign_id)
        if state.settlement is Settlement.ACTIVE:
            outcome.under_way = [number]  # re-attaching the same campaign changes nothing
        else:
            outcome.accepted = [number]
    elif (gone := unanswered(verdict)) is not None:
        reason, lost = gone
        if lost:
            outcome.lost = {number: reason}
        else:
            outcome.unsent = {number: reason}
    else:
        outcome.refused = {number: verdict.reason or f"HTTP {verdict.status}"}
    return outcome


def detach_outcome(campaign_id: str, verdict: Verdict) -> UnlinkOutcome:
    """What one detach verdict means for its number (relative to ``campaign_id``)."""
    if verdict.kind is Kind.OK:
        state = settlement(resource_of(verdict) or {}, campaign_id)
        if state.settlement is Settlement.ABSENT:
            return UnlinkOutcome(absent=True)  # no campaign (not pending): nothing to detach
        return UnlinkOutcome(accepted=True)  # pending, or still shows the campaign: poll it
    if (gone := unanswered(verdict)) is not None:
        reason, lost = gone
        return UnlinkOutcome(lost=reason) if lost else UnlinkOutcome(unsent=reason)
    return UnlinkOutcome(refused=verdict.reason or f"HTTP {verdict.status}")


# --- the organisation, as bulk last saw it (pure) ---------------------------------------------


@dataclass(slots=True)
class Directory:
    """The organisation as bulk last saw it: synchronous and pure, no request in sight.

    ``numbers`` maps E.164 -> :class:`NumberRecord` (id, campaign, carrier status);
    ``blocked`` maps a campaign to the reason every attach to it is refused (after
    ``CAMPAIGN_NOT_ACTIVE`` or ``BRAND_NOT_VERIFIED``, later rows are refused without a request).
    """

    numbers: dict[str, NumberRecord] = field(default_factory=dict)
    listed: bool = False
    blocked: dict[str, str] = field(default_factory=dict)
    #: resource id -> the number it was first listed as
    owners: dict[str, str] = field(default_factory=dict)
    #: numbers the provider listed under two ids (or whose id it listed for two numbers):
    #: which resource is the number cannot be told, so none is changed
    ambiguous: set[str] = field(default_factory=set)

    def learn(self, resource: Mapping[str, Any]) -> NumberRecord | None:
        """Remember one phone-number resource; None when it is not one, or when it names a
        known number under another id or a known id for another number (a number is never
        re-filed under another resource: its next change would go there)."""
        number = resource.get("number")
        record = NumberRecord.of(resource)
        if record is None or not isinstance(number, str) or not number:
            return None
        e164 = to_e164(number)
        known = self.numbers.get(e164)
        owner = self.owners.setdefault(record.id, e164)
        if (known is not None and known.id != record.id) or owner != e164:
            self.ambiguous.update({e164, owner})
            return None
        self.numbers[e164] = record
        return record

    def about(self, resource: Mapping[str, Any], number: str) -> bool:
        """Whether a resource answered for ``number`` is that number's (its id and number)."""
        record = self.numbers.get(number)
        named = resource.get("number")
        return (
            record is not None
            and resource.get("id") == record.id
            and isinstance(named, str)
            and to_e164(named) == number
        )

    def learn_all(self, resources: Iterable[Mapping[str, Any]]) -> None:
        """Remember one read of the organisation's list. A number it shows twice (under its
        one id) in two campaigns, or in one and in none, is in a campaign that cannot be told
        (:data:`UNREADABLE_CAMPAIGN`): whichever entry came last, it is never "in none"."""
        campaigns: dict[str, set[str | None]] = {}
        for resource in resources:
            record = self.learn(resource)
            if record is not None:
                number = to_e164(str(resource["number"]))
                campaigns.setdefault(number, set()).add(record.campaign_id)
        for number, seen in campaigns.items():
            if len(seen) > 1:
                self.numbers[number].campaign_id = UNREADABLE_CAMPAIGN

    def unowned(self, numbers: Iterable[str]) -> dict[str, str]:
        """Numbers the organisation does not own (or lists ambiguously), with the reason."""
        refused = {n: NOT_OWNED for n in numbers if n not in self.numbers}
        for n in numbers:
            if n in self.ambiguous:
                refused[n] = AMBIGUOUS
        return refused

    def campaign_of(self, number: str) -> str | None:
        record = self.numbers.get(number)
        return record.campaign_id if record else None

    def note_refusal(self, campaign_id: str, verdict: Verdict) -> None:
        """After an attach refusal that every attach to the campaign would meet, block it."""
        if verdict.kind is Kind.REFUSED and error_code(verdict) in CAMPAIGN_CODES:
            self.blocked[campaign_id] = verdict.reason or str(error_code(verdict))

    def members(
        self, campaign_id: str, resources: Iterable[Mapping[str, Any]]
    ) -> dict[str, NumberState]:
        """A campaign's filtered list as number -> state (remembering each resource). A
        number the list shows twice with two states settles nothing (:func:`seen_twice`),
        whichever entry came last."""
        found: dict[str, NumberState] = {}
        for resource in resources:
            if self.learn(resource) is not None:
                number = to_e164(str(resource["number"]))
                merge_seen(found, {number: settlement(resource, campaign_id)})
        return found


def merge_seen(found: dict[str, NumberState], more: Mapping[str, NumberState]) -> None:
    """Add ``more`` to ``found``; a number in both with two states settles nothing
    (:func:`bulk.providers._base.seen_twice`), whichever entry or page came last."""
    for number, state in more.items():
        known = found.get(number)
        found[number] = state if known is None else seen_twice(known, state)


def campaign_check(campaign_id: str, campaigns: Mapping[str, Mapping[str, Any]]) -> CampaignCheck:
    """Whether rows may be attached to ``campaign_id``, from the organisation's campaign list."""
    if not is_campaign_id(campaign_id):
        return CampaignCheck(
            campaign_id,
            False,
            reason=f"campaign {campaign_id} is not an AgentMessage campaign id (a uuid)",
        )
    campaign = campaigns.get(campaign_id)
    if campaign is None:
        return CampaignCheck(
            campaign_id,
            False,
            reason=f"campaign {campaign_id} not found in this AgentMessage organisation",
        )
    raw = campaign.get("status")
    status = str(raw) if raw is not None else None
    if status != "ACTIVE":
        return CampaignCheck(
            campaign_id,
            False,
            reason=f"campaign {campaign_id} is {status or 'without a status'}, not ACTIVE",
            status=status,
        )
    return CampaignCheck(campaign_id, True, status=status)


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
        read: set[str] = {_item_key(i) for i in before}
        if cursor is not None:
            seen.add(cursor)
            request = replace(request, params={**(request.params or {}), "cursor": cursor})
        while True:
            verdict = await self._read(request)
            items = page_items(verdict)
            keys = {_item_key(i) for i in items}
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
                shown = {_item_number(i) for i in items}
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
        return [i for i in items if _item_number(i) == number]

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
        self, campaign_id: str, numbers: Sequence[str], lines: Sequence[int]
    ) -> LinkOutcome:
        total = LinkOutcome()
        for i, number in enumerate(numbers):
            outcome = await self._attach(campaign_id, number, lines[i] if i < len(lines) else 0)
            total.accepted += outcome.accepted
            total.under_way += outcome.under_way
            total.refused.update(outcome.refused)
            total.lost.update(outcome.lost)
            total.unsent.update(outcome.unsent)
        return total

    async def _attach(self, campaign_id: str, number: str, line: int) -> LinkOutcome:
        record = await self._record(number)
        if record is None or number in self.directory.ambiguous:
            return LinkOutcome(refused={number: AMBIGUOUS if record else NOT_OWNED})
        if campaign_id in self.directory.blocked:
            return LinkOutcome(refused={number: self.directory.blocked[campaign_id]})
        verdict = await self._send(attach_request(record.id, campaign_id, line=line), classify)
        if verdict.kind is Kind.OK and (resource := resource_of(verdict)) is not None:
            if not self.directory.about(resource, number):
                return LinkOutcome(lost={number: f"the attach was {OTHER_RESOURCE}"})
            self.directory.learn(resource)
        self.directory.note_refusal(campaign_id, verdict)
        return link_outcome(number, campaign_id, verdict)

    async def unlink(self, campaign_id: str, number: str, line: int) -> UnlinkOutcome:
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
        verdict = await self._send(detach_request(record.id, line=line), classify)
        if verdict.kind is Kind.OK and (resource := resource_of(verdict)) is not None:
            if not self.directory.about(resource, number):
                return UnlinkOutcome(lost=f"the detach was {OTHER_RESOURCE}")
            self.directory.learn(resource)
        return detach_outcome(campaign_id, verdict)


__all__ = [
    "AMBIGUOUS",
    "DEFAULT_BASE_URL",
    "DEFAULT_RATE",
    "NOT_OWNED",
    "PAGE_SIZE",
    "STATUS_SETTLEMENT",
    "AgentMessageProvider",
    "Directory",
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
    "settlement",
]
