"""Plivo 10DLC number linking.

The wire (written down in ``bulk/providers/plivo.md``, with every choice bulk made where
Plivo's documentation is silent):

* ``POST   /v1/Account/{auth_id}/10dlc/Campaign/{campaign_id}/Number/``  link a batch
* ``GET    /v1/Account/{auth_id}/10dlc/Campaign/{campaign_id}/Number/?limit=20&offset=N``
* ``GET    /v1/Account/{auth_id}/10dlc/Campaign/{campaign_id}/Number/{number}/``
* ``DELETE /v1/Account/{auth_id}/10dlc/Campaign/{campaign_id}/Number/{number}/``
* ``GET    /v1/Account/{auth_id}/10dlc/Campaign/{campaign_id}/``

The request builders and the ``classify_*`` functions are pure: they never touch a socket and
are tested against recorded bodies. :class:`PlivoProvider` is the thin async adapter that
hands requests to the engine's ``send``.

Choices where the wire is not documented (also in plivo.md and the manual):

* numbers go out as digits without ``+`` (every example and fixture does so);
* a link batch carries at most ``DEFAULT_BATCH_SIZE`` = 100 numbers by default (no maximum
  is published). A refusal whose text is about the batch's size (a maximum, too many numbers)
  and names no number halves the batch for the rest of the run and resends (``too_large``);
  a link of one number refused so is refused (nothing smaller to send: resending it would
  never end); ``--batch-size`` stays a hard cap;
* the status codes of the error texts are not documented, so classification keys on the
  text: ``already requested for linking``/``already linked to this campaign`` (a link) and
  ``already requested for unlinking`` (an unlink) mean the change is under way
  (``UNDER_WAY``: poll it; said of a batch without naming which number, each is read as
  after a lost answer); ``not linked to this campaign`` means absent (``ABSENT``) for an
  unlink or a read; anything naming a number refuses that number alone so the rest of its
  batch can be resent;
* an unreadable body (truncated, HTML) is no usable answer whatever its status: a read is
  tried again, a change is read before it is ever sent again (it may have landed). So is a
  list page whose ``phone_numbers`` is not a list, a read of one number answered 200
  without that number (never proof that it is absent), and a list page or read whose
  ``campaign_id`` names another campaign than the one asked about;
* planning reads a campaign's first list page before the campaign itself: a page whose body
  names the campaign shows it exists, and the campaign is not read (:meth:`survey_campaign`);
* ``phone_numbers_summary`` is a hint: its total lets a read skip the empty page past the end
  only once every number the read looks for is found (counts that lag the list must not hide
  the newest links), and a full page holding no number not already read is no usable
  answer (a list that does not advance would be paged forever), see :meth:`campaign_numbers`.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import quote

from bulk._aio import gather_map
from bulk.providers._base import (
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
    WindowClosed,
    merge_seen,
    unanswered,
)
from bulk.providers._text import describe_unreadable, json_or_none, retry_after_seconds

DEFAULT_BASE_URL = "https://api.plivo.com"
DEFAULT_BATCH_SIZE = 100
PAGE_SIZE = 20
#: 58 requests/s: 96.7 % of the documented 300 requests per 5 s per account (60/s), leaving
#: room for latency jitter
DEFAULT_RATE = 58.0

_AUTH_ID = re.compile(r"^(MA|SA)[A-Z0-9]{18}$")
#: a refusal about the batch's size, not about a number in it
_SIZE_TEXT = re.compile(
    r"maximum of \d+|too many numbers|batch (size|too large)|at most \d+ numbers", re.IGNORECASE
)
_SIZE_LIMIT = re.compile(r"(?:maximum of|at most) (\d+)", re.IGNORECASE)
_NUMBER_IN_TEXT = re.compile(r"(?<!\d)\+?(1\d{10})(?!\d)")

STATUS_SETTLEMENT = {
    "PROCESSING": Settlement.PENDING,
    "COMPLETED": Settlement.ACTIVE,
    "FAILED": Settlement.FAILED,
}


def is_valid_auth_id(auth_id: str) -> bool:
    """Plivo auth ids are 20 characters starting MA (main account) or SA (subaccount)."""
    return bool(_AUTH_ID.fullmatch(auth_id))


def to_wire(number: str) -> str:
    """``+14155550100`` -> ``14155550100``."""
    return number[1:] if number.startswith("+") else number


def from_wire(number: str) -> str:
    """``14155550100`` -> ``+14155550100``."""
    digits = number.strip()
    return digits if digits.startswith("+") else "+" + digits


# --- requests -------------------------------------------------------------------------------


def segment(value: str) -> str:
    """``value`` percent-encoded as exactly one path segment: input never steers the URL
    (``CUOGHIN/../CMIGOLD`` stays one segment, ``CAB#frag`` keeps its ``#frag``)."""
    return quote(value, safe="")


def _campaign_path(auth_id: str, campaign_id: str) -> str:
    return f"/v1/Account/{segment(auth_id)}/10dlc/Campaign/{segment(campaign_id)}/"


def _numbers_path(auth_id: str, campaign_id: str) -> str:
    return _campaign_path(auth_id, campaign_id) + "Number/"


def _number_path(auth_id: str, campaign_id: str, number: str) -> str:
    return _numbers_path(auth_id, campaign_id) + segment(to_wire(number)) + "/"


def campaign_request(auth_id: str, campaign_id: str) -> Request:
    return Request("GET", _campaign_path(auth_id, campaign_id), "campaign")


def link_request(
    auth_id: str,
    campaign_id: str,
    numbers: Sequence[str],
    *,
    lines: Sequence[int] = (),
    url: str | None = None,
    method: str = "POST",
) -> Request:
    body: dict[str, Any] = {"numbers": [to_wire(n) for n in numbers]}
    if url:
        body["url"] = url
        body["method"] = method
    return Request(
        "POST", _numbers_path(auth_id, campaign_id), "link", json=body, lines=tuple(lines)
    )


def list_request(auth_id: str, campaign_id: str, offset: int, limit: int = PAGE_SIZE) -> Request:
    return Request(
        "GET",
        _numbers_path(auth_id, campaign_id),
        "list",
        params={"limit": str(limit), "offset": str(offset)},
    )


def get_request(auth_id: str, campaign_id: str, number: str, *, line: int = 0) -> Request:
    path = _number_path(auth_id, campaign_id, number)
    return Request("GET", path, "get", lines=(line,) if line else ())


def unlink_request(auth_id: str, campaign_id: str, number: str, *, line: int = 0) -> Request:
    path = _number_path(auth_id, campaign_id, number)
    return Request("DELETE", path, "unlink", lines=(line,) if line else ())


# --- classification (pure) ------------------------------------------------------------------


def _error_text(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):  # tolerate {"error": {"message": ...}}
                inner = value.get("message") or value.get("error")
                if isinstance(inner, str):
                    return inner
    return None


def _api_id(body: Any, response: Response) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("api_id"), str):
        return str(body["api_id"])
    return response.headers.get("x-request-id")


def numbers_named(text: str) -> tuple[str, ...]:
    """The E.164 numbers an error text names (``The number 14155550100 is ...``)."""
    return tuple(dict.fromkeys("+" + m for m in _NUMBER_IN_TEXT.findall(text)))


def classify(request: Request, response: Response) -> Verdict:
    """Classify any Plivo response. Pure: status, headers and body in, a verdict out."""
    status = response.status
    body = json_or_none(response)
    if status == 429:
        retry_after = _retry_after(response)
        text = _error_text(body) or "rate limited (HTTP 429)"
        return Verdict(Kind.RATE_LIMITED, status, reason=text, retry_after=retry_after)
    if status >= 500:
        server_text = _error_text(body) if body is not None else None
        return Verdict(Kind.TRANSIENT, status, reason=server_text or describe_unreadable(response))
    if not isinstance(body, dict):
        # a truncated or non-JSON body: we cannot know what happened
        return Verdict(Kind.TRANSIENT, status, reason=describe_unreadable(response))
    api_id = _api_id(body, response)
    if 200 <= status < 300:
        return Verdict(Kind.OK, status, data=body, request_id=api_id)
    text = _error_text(body) or f"HTTP {status}"
    if status in (401, 403):
        return Verdict(Kind.AUTH, status, reason=text, request_id=api_id)
    lowered = text.lower()
    named = numbers_named(text)
    if request.endpoint == "link" and (
        "already requested for linking" in lowered or "already linked to this campaign" in lowered
    ):
        return Verdict(Kind.UNDER_WAY, status, reason=text, numbers=named, request_id=api_id)
    if request.endpoint == "unlink" and "already requested for unlinking" in lowered:
        return Verdict(Kind.UNDER_WAY, status, reason=text, numbers=named, request_id=api_id)
    if "not linked to this campaign" in lowered and request.endpoint in ("unlink", "get"):
        return Verdict(Kind.ABSENT, status, reason=text, numbers=named, request_id=api_id)
    return Verdict(Kind.REFUSED, status, reason=text, numbers=named, request_id=api_id)


def _retry_after(response: Response) -> float | None:
    return retry_after_seconds(response.headers.get("retry-after"))


def with_request_id(verdict: Verdict) -> str:
    """The provider's text for a report, with its api_id for support tickets."""
    text = verdict.reason or f"HTTP {verdict.status}"
    return f"{text} (api_id {verdict.request_id})" if verdict.request_id else text


def parse_numbers_page(body: Any) -> dict[str, NumberState]:
    """``phone_numbers`` of a list or get body, as number -> state."""
    result: dict[str, NumberState] = {}
    entries = body.get("phone_numbers") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return result
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("number"), str):
            continue
        status = str(entry.get("status") or "").upper()
        settlement = STATUS_SETTLEMENT.get(status, Settlement.UNRECOGNISED)
        merge_seen(result, {from_wire(entry["number"]): NumberState(settlement, status or None)})
    return result


def names_another_campaign(body: Any, campaign_id: str) -> bool:
    """True when a list or read body's ``campaign_id`` names a campaign other than the one
    asked about: its ``phone_numbers`` say nothing about this campaign (a cache or proxy
    answering for another URL), so the body is no usable answer."""
    named = body.get("campaign_id") if isinstance(body, dict) else None
    return isinstance(named, str) and named.strip().upper() != campaign_id.strip().upper()


def summary_counts(body: Any) -> dict[Settlement, int] | None:
    """The campaign's numbers by settlement from ``phone_numbers_summary`` (status -> count),
    when present and every count is a whole number; statuses bulk does not know count as
    unrecognised."""
    summary = body.get("phone_numbers_summary") if isinstance(body, dict) else None
    if not isinstance(summary, dict) or not summary:
        return None
    counts: dict[Settlement, int] = {}
    for status, count in summary.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return None
        settlement = STATUS_SETTLEMENT.get(str(status).upper(), Settlement.UNRECOGNISED)
        counts[settlement] = counts.get(settlement, 0) + count
    return counts


def size_limit(text: str) -> int | None:
    """The maximum a size refusal names (``A maximum of 100 numbers ...``), if any."""
    found = _SIZE_LIMIT.search(text)
    return int(found.group(1)) if found else None


def is_size_refusal(text: str) -> bool:
    """True when a refusal's text is about how many numbers the request carried."""
    return bool(_SIZE_TEXT.search(text))


def link_outcome(numbers: Sequence[str], verdict: Verdict) -> LinkOutcome:
    """What a link verdict means for each number of its batch."""
    outcome = LinkOutcome()
    if verdict.kind is Kind.OK:
        outcome.accepted = list(numbers)
        return outcome
    if (gone := unanswered(verdict)) is not None:
        reason, lost = gone
        if lost:
            outcome.lost = dict.fromkeys(numbers, reason)
        else:
            outcome.unsent = dict.fromkeys(numbers, reason)
        return outcome
    named = [n for n in verdict.numbers if n in numbers]
    # a lone number refused for the batch's size has no smaller batch to go in: it is refused
    sized = len(numbers) > 1 and is_size_refusal(verdict.reason or "")
    if not named and verdict.kind is Kind.REFUSED and sized:
        outcome.too_large = with_request_id(verdict)
        outcome.size_limit = size_limit(verdict.reason or "")
        outcome.resend = list(numbers)
        return outcome
    if not named:
        if verdict.kind is Kind.UNDER_WAY and len(numbers) == 1:
            outcome.under_way = list(numbers)
        elif verdict.kind is Kind.UNDER_WAY:
            # some number of the batch is under way, the text does not say which: read each
            # (under way is polled, the rest sent again), never fail a link that is landing
            reason = f"{with_request_id(verdict)}, naming none of the batch"
            outcome.lost = dict.fromkeys(numbers, reason)
        else:
            text = with_request_id(verdict)
            outcome.refused = {n: text for n in numbers}
        return outcome
    if verdict.kind is Kind.UNDER_WAY:
        outcome.under_way = named
    else:
        text = with_request_id(verdict)
        outcome.refused = {n: text for n in named}
    outcome.resend = [n for n in numbers if n not in named]
    return outcome


def unlink_outcome(verdict: Verdict) -> UnlinkOutcome:
    """What an unlink verdict means for its number."""
    if verdict.kind is Kind.OK:
        return UnlinkOutcome(accepted=True)
    if verdict.kind is Kind.UNDER_WAY:
        return UnlinkOutcome(under_way=True)
    if verdict.kind is Kind.ABSENT:
        return UnlinkOutcome(absent=True)
    if (gone := unanswered(verdict)) is not None:
        reason, lost = gone
        return UnlinkOutcome(lost=reason) if lost else UnlinkOutcome(unsent=reason)
    return UnlinkOutcome(refused=with_request_id(verdict))


# --- the adapter ----------------------------------------------------------------------------


class PlivoProvider:
    """Plivo behind the engine's provider protocol."""

    name = "plivo"
    page_size = PAGE_SIZE
    move_in_one_step = False
    default_rate = DEFAULT_RATE
    #: Plivo has no "which campaign is this number in" read; it refuses a link itself
    knows_current_campaign = False

    def __init__(
        self,
        send: Send,
        auth_id: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        callback_url: str | None = None,
    ) -> None:
        self._send = send
        self._auth_id = auth_id
        self.max_batch = batch_size
        self._callback_url = callback_url

    async def check_campaign(self, campaign_id: str) -> CampaignCheck:
        verdict = await self._send(campaign_request(self._auth_id, campaign_id), classify)
        if verdict.kind is Kind.OK:
            data = (
                verdict.data.get("campaign", verdict.data) if isinstance(verdict.data, dict) else {}
            )
            status = data.get("registration_status") if isinstance(data, dict) else None
            return CampaignCheck(campaign_id, True, status=str(status) if status else None)
        if verdict.kind in (Kind.NO_ANSWER, Kind.TRANSIENT, Kind.RATE_LIMITED):
            raise ProviderUnavailable(verdict.reason or "no usable answer")
        return CampaignCheck(
            campaign_id, False, reason=f"campaign {campaign_id}: {with_request_id(verdict)}"
        )

    async def survey_campaign(
        self, campaign_id: str
    ) -> tuple[CampaignCheck, dict[str, NumberState] | None]:
        """The list's first page comes first: a page naming the campaign (the list's body
        carries ``campaign_id``) shows the campaign exists and this account may read it, so
        no campaign read is spent on it. A first page that does not (an error, no answer, a
        body naming another campaign or none) leaves the decision to the campaign read, with
        its reason; a usable campaign's list then goes on from that page when it was read."""
        first: Glance | None = None
        with contextlib.suppress(ProviderUnavailable):
            first = await self.campaign_glance(campaign_id)
        if first is not None and first.names == campaign_id:
            return CampaignCheck(campaign_id, True), await self.campaign_numbers(
                campaign_id, first=first
            )
        check = await self.check_campaign(campaign_id)
        if not check.usable:
            return check, None
        return check, await self.campaign_numbers(campaign_id, first=first)

    async def campaign_numbers(
        self,
        campaign_id: str,
        size_hint: int | None = None,
        first: Glance | None = None,
        *,
        want: Collection[str] | None = None,
    ) -> dict[str, NumberState]:
        """Every number in the campaign.

        With a ``size_hint`` every page it implies is asked for at once; otherwise the first
        page comes alone and its ``phone_numbers_summary`` (when sent) gives the total, so the
        remaining pages are fetched side by side. Pages are read until a short one; the
        total ends the read sooner (no empty page past the end of a list whose size is a
        multiple of 20) only once every number in ``want`` has been found: the counts are a
        hint, and a total that lags the list (or lies) must not hide the numbers looked for.
        Without ``want`` the total never ends it. ``first`` (a glance just taken) is the
        first page: reading starts at the second. A full page that holds no number not
        already read is no usable answer (:class:`ProviderUnavailable`): such a list, an
        ``offset`` ignored, would never end.
        """
        found: dict[str, NumberState] = {}
        offset = 0
        total: int | None = None
        wanted = max(1, -(-(size_hint or 0) // PAGE_SIZE))

        def complete() -> bool:
            """The total is reached and it hides nothing looked for."""
            return (
                total is not None
                and want is not None
                and len(found) >= total
                and all(n in found for n in want)
            )

        if first is not None:
            if first.whole:
                return dict(first.members)
            found.update(first.members)
            offset = PAGE_SIZE
            total = None if first.counts is None else sum(first.counts.values())
            if complete():
                return found
            wanted = max(1, -(-((total or size_hint or 0) - offset) // PAGE_SIZE))
        while True:
            offsets = range(offset, offset + wanted * PAGE_SIZE, PAGE_SIZE)
            got = await gather_map(
                {o: functools.partial(self._page, campaign_id, o) for o in offsets}
            )
            for at, (page, entries, counts) in got.items():
                if entries >= PAGE_SIZE and page.keys() <= found.keys():
                    # a provider that ignores ``offset`` (or lies) would be paged forever
                    raise ProviderUnavailable(
                        f"the list of {campaign_id} does not advance: its full page at offset "
                        f"{at} holds no number not already read"
                    )
                merge_seen(found, page)
                total = sum(counts.values()) if counts is not None else total
            offset = offsets[-1] + PAGE_SIZE
            if got[offsets[-1]][1] < PAGE_SIZE or complete():
                return found
            # more to read: all the pages the total implies at once, else one at a time
            wanted = max(1, -(-(total - offset) // PAGE_SIZE)) if total is not None else 1

    async def campaign_glance(self, campaign_id: str) -> Glance:
        """The first page and the campaign's ``phone_numbers_summary``: one request."""
        verdict = await self._list_page(campaign_id, 0)
        data = verdict.data
        named = data.get("campaign_id")
        return Glance(
            parse_numbers_page(data),
            summary_counts(data),
            whole=len(data.get("phone_numbers") or []) < PAGE_SIZE,
            names=named if isinstance(named, str) else None,
        )

    async def _page(
        self, campaign_id: str, offset: int
    ) -> tuple[dict[str, NumberState], int, dict[Settlement, int] | None]:
        """One page: its numbers, how many entries it held, and the campaign's counts if sent."""
        data = (await self._list_page(campaign_id, offset)).data
        entries = data.get("phone_numbers") or []
        return parse_numbers_page(data), len(entries), summary_counts(data)

    async def _list_page(self, campaign_id: str, offset: int) -> Verdict:
        """One answered list page; a refusal, or a body whose ``phone_numbers`` is not a
        list (its length would be no count of entries), is no usable answer."""
        verdict = await self._send(list_request(self._auth_id, campaign_id, offset), classify)
        if verdict.kind is not Kind.OK:
            raise ProviderUnavailable(with_request_id(verdict))
        if names_another_campaign(verdict.data, campaign_id):
            raise ProviderUnavailable(
                f"a list page of campaign {campaign_id} answered for another campaign"
            )
        if not isinstance(verdict.data.get("phone_numbers") or [], list):
            raise ProviderUnavailable(
                f"a list page of campaign {campaign_id} whose phone_numbers is not a list"
            )
        return verdict

    async def resolve(self, numbers: Sequence[str]) -> dict[str, str]:
        return {}  # Plivo addresses numbers by the number itself

    def current_campaign(self, number: str) -> str | None:
        return None

    async def link(
        self,
        campaign_id: str,
        numbers: Sequence[str],
        lines: Sequence[int],
        *,
        window_closed: WindowClosed | None = None,
    ) -> LinkOutcome:
        request = link_request(
            self._auth_id, campaign_id, numbers, lines=lines, url=self._callback_url
        )
        verdict = await self._send(request, classify, window_closed=window_closed)
        return link_outcome(numbers, verdict)

    async def unlink(
        self, campaign_id: str, number: str, line: int, *, window_closed: WindowClosed | None = None
    ) -> UnlinkOutcome:
        request = unlink_request(self._auth_id, campaign_id, number, line=line)
        return unlink_outcome(await self._send(request, classify, window_closed=window_closed))

    async def number_state(self, campaign_id: str, number: str, line: int) -> NumberState:
        verdict = await self._send(
            get_request(self._auth_id, campaign_id, number, line=line), classify
        )
        if verdict.kind is Kind.OK:
            if names_another_campaign(verdict.data, campaign_id):
                raise ProviderUnavailable(
                    f"the read of {number} in campaign {campaign_id} answered for another "
                    "campaign"
                )
            state = parse_numbers_page(verdict.data).get(number)
            if state is None:  # a 200 for this number that shows no state of it proves nothing
                raise ProviderUnavailable(
                    f"the read of {number} in campaign {campaign_id} answered 200 without it"
                )
            return state
        if verdict.kind is Kind.ABSENT:  # "not linked to this campaign": proof of absence
            return NumberState(Settlement.ABSENT)
        raise ProviderUnavailable(with_request_id(verdict))
