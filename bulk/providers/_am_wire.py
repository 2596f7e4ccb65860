"""The AgentMessage wire, pure: request builders, :func:`classify`, what answers' bodies say
(:func:`settlement`, list pages and their cursors) and what one verdict means for a row.

Nothing here sends a request; :mod:`bulk.providers.agentmessage` (whose docstring records the
wire and every choice made where it is undocumented) is the adapter that does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from bulk.providers._base import (
    CampaignCheck,
    Kind,
    LinkOutcome,
    NumberState,
    Request,
    Response,
    Settlement,
    UnlinkOutcome,
    Verdict,
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


def item_key(item: Mapping[str, Any]) -> str:
    """What tells one list item from another: its ``id``, else the whole item."""
    number_id = item.get("id")
    if isinstance(number_id, str) and number_id:
        return number_id
    return json.dumps(item, sort_keys=True, default=str)


def item_number(item: Mapping[str, Any]) -> str | None:
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
