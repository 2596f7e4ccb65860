"""Plivo responses classified by the pure function, against recorded bodies."""

from __future__ import annotations

import json

import pytest

from bulk.providers import Kind, Response, Settlement, plivo
from bulk.providers._text import retry_after_seconds

AUTH = "MASANDBOXAUTHID00001"


def _resp(status: int, body: object | bytes, headers: dict[str, str] | None = None) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, headers or {}, raw)


LINK = plivo.link_request(AUTH, "CUOGHIN", ["+14155550100", "+14155550144"])
UNLINK = plivo.unlink_request(AUTH, "CUOGHIN", "+14155550100")
GET = plivo.get_request(AUTH, "CUOGHIN", "+14155550100")


def test_link_request_sends_digits_without_plus_to_the_documented_path() -> None:
    assert LINK.method == "POST"
    assert LINK.path == f"/v1/Account/{AUTH}/10dlc/Campaign/CUOGHIN/Number/"
    assert LINK.json == {"numbers": ["14155550100", "14155550144"]}


def test_unlink_and_get_paths_end_with_a_slash_like_the_sdks() -> None:
    assert UNLINK.path.endswith("/Number/14155550100/")
    assert GET.path.endswith("/Number/14155550100/")


def test_accepted_link_is_ok() -> None:
    body = {
        "api_id": "a1",
        "message": "Request to link 14156667778 to campaign CUOGHIN was received"
        " and is being processed",
    }
    verdict = plivo.classify(LINK, _resp(202, body))
    assert verdict.kind is Kind.OK and verdict.request_id == "a1"


def test_already_requested_for_linking_is_success_not_failure() -> None:
    body = {"api_id": "a2", "error": "The number 14155550100 is already requested for linking"}
    verdict = plivo.classify(LINK, _resp(400, body))
    assert verdict.kind is Kind.UNDER_WAY
    assert verdict.numbers == ("+14155550100",)


def test_not_linked_on_unlink_is_absent() -> None:
    body = {"api_id": "a3", "error": "The number 14155550100 is not linked to this campaign"}
    assert plivo.classify(UNLINK, _resp(404, body)).kind is Kind.ABSENT


def test_already_requested_for_unlinking_means_the_unlink_is_under_way() -> None:
    body = {"api_id": "a3", "error": "The number 14155550100 is already requested for unlinking"}
    assert plivo.classify(UNLINK, _resp(400, body)).kind is Kind.UNDER_WAY
    # the same text answering a link is no claim that the link is under way
    assert plivo.classify(LINK, _resp(400, body)).kind is Kind.REFUSED


def test_a_redirect_is_never_followed_and_counts_as_no_usable_answer() -> None:
    from bulk.engine._http import _redirect

    moved = _redirect(
        plivo.Response(307, {"location": "http://evil.example:8080/v1/x?token=abc"}, b"")
    )
    assert moved is not None and moved.kind is Kind.TRANSIENT and moved.may_have_landed
    assert "http://evil.example" in (moved.reason or "") and "token" not in (moved.reason or "")
    assert _redirect(plivo.Response(200, {}, b"{}")) is None


def test_invalid_number_refuses_only_that_number_and_resends_the_rest() -> None:
    body = {"api_id": "a4", "error": "The number 14155550144 is not a valid number"}
    verdict = plivo.classify(LINK, _resp(400, body))
    assert verdict.kind is Kind.REFUSED
    outcome = plivo.link_outcome(["+14155550100", "+14155550144"], verdict)
    assert outcome.refused == {
        "+14155550144": "The number 14155550144 is not a valid number (api_id a4)"
    }
    assert outcome.resend == ["+14155550100"]


def test_refusal_naming_no_number_fails_the_whole_batch_with_the_providers_text() -> None:
    verdict = plivo.classify(LINK, _resp(404, {"api_id": "a5", "error": "campaign not found"}))
    outcome = plivo.link_outcome(["+14155550100", "+14155550101"], verdict)
    assert set(outcome.refused) == {"+14155550100", "+14155550101"}
    assert "campaign not found" in outcome.refused["+14155550100"]


def test_429_without_retry_after_is_rate_limited_with_no_delay_hint() -> None:
    verdict = plivo.classify(LINK, _resp(429, {"api_id": "a6", "error": "too many requests"}))
    assert verdict.kind is Kind.RATE_LIMITED and verdict.retry_after is None


def test_429_with_retry_after_carries_it() -> None:
    verdict = plivo.classify(LINK, _resp(429, b"", {"retry-after": "3"}))
    assert verdict.kind is Kind.RATE_LIMITED and verdict.retry_after == 3.0


def test_5xx_json_and_html_bodies_are_retried() -> None:
    assert (
        plivo.classify(GET, _resp(500, {"api_id": "x", "error": "internal error"})).kind
        is Kind.TRANSIENT
    )
    html = b"<html><head><title>502 Bad Gateway</title></head></html>"
    verdict = plivo.classify(GET, _resp(502, html))
    assert verdict.kind is Kind.TRANSIENT and "502 Bad Gateway" in (verdict.reason or "")


def test_truncated_or_non_json_2xx_body_is_retried() -> None:
    assert plivo.classify(LINK, _resp(202, b'{"api_id": "a7", "mess')).kind is Kind.TRANSIENT
    assert plivo.classify(GET, _resp(200, b"<html>maintenance</html>")).kind is Kind.TRANSIENT
    # JSON nested past the parser's depth raised RecursionError out of classify: a crash
    assert plivo.classify(LINK, _resp(400, b"[" * 100_000)).kind is Kind.TRANSIENT


def test_401_stops_the_run() -> None:
    assert (
        plivo.classify(GET, _resp(401, {"api_id": "x", "error": "Authentication failed"})).kind
        is Kind.AUTH
    )


def test_list_page_statuses_map_to_settlements() -> None:
    body = {
        "api_id": "x",
        "campaign_id": "CUOGHIN",
        "phone_numbers": [
            {"number": "14155550100", "status": "COMPLETED"},
            {"number": "14155550101", "status": "PROCESSING"},
            {"number": "14155550102", "status": "FAILED"},
            {"number": "14155550103", "status": "SOMETHING_NEW"},
        ],
    }
    page = plivo.parse_numbers_page(body)
    assert page["+14155550100"].settlement is Settlement.ACTIVE
    assert page["+14155550101"].settlement is Settlement.PENDING
    assert page["+14155550102"].settlement is Settlement.FAILED
    assert page["+14155550103"].settlement is Settlement.UNRECOGNISED
    assert page["+14155550103"].provider_status == "SOMETHING_NEW"


def test_auth_id_shape_is_checked() -> None:
    assert plivo.is_valid_auth_id(AUTH)
    assert plivo.is_valid_auth_id("SA" + "A" * 18)
    assert not plivo.is_valid_auth_id("XX" + "A" * 18)
    assert not plivo.is_valid_auth_id("MA123")


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("3", 3.0), ("0", 0.0), ("2.5", 2.5), (7, 7.0), ("99999999", 99999999.0), ("-1", None),
     ("inf", None), ("nan", None), ("1e999", None), ("Wed, 21 Oct 2026 07:28:00 GMT", None),
     ("soon", None), (True, None), (None, None), ([3], None)],
)
def test_retry_after_is_finite_non_negative_seconds_or_nothing(
    raw: object, seconds: float | None
) -> None:
    assert retry_after_seconds(raw) == seconds
