"""Planning's reads: each campaign's check and the numbers a run needs from it, by the cheaper
way (its paged list, or one read per number), and the exact single reads that prove absence.

Every engine wait goes through the one clock protocol, :class:`bulk._clock.Clock`
(re-exported here for the engine's modules).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bulk._aio import gather_map
from bulk._clock import Clock as Clock
from bulk._clock import SystemClock as SystemClock
from bulk._defaults import RESEND_ROUNDS as RESEND_ROUNDS
from bulk._errors import ProviderUnreachable
from bulk._journal import RowRecord
from bulk.engine._watch import read_by_number
from bulk.providers._base import (
    CampaignCheck,
    Glance,
    NumberState,
    Provider,
    ProviderUnavailable,
)

Survey = dict[str, tuple[CampaignCheck, dict[str, NumberState] | None]]


@dataclass(frozen=True, slots=True)
class CampaignSurvey:
    """One campaign as planning read it."""

    check: CampaignCheck
    #: its numbers (every one, from its list), or only the ones looked for (single reads);
    #: None when the campaign cannot be used
    members: dict[str, NumberState] | None
    #: the numbers read one by one: for these, absence is proof
    exact: frozenset[str] = field(default_factory=frozenset)
    #: how many numbers the campaign holds, when its first page or its list said
    size: int | None = None


def glance_size(glance: Glance) -> int | None:
    """How many numbers a campaign holds, as its first page tells: the whole list when the
    page was all of it, else its counts' sum, else the list's total (None without either)."""
    if glance.whole:
        return len(glance.members)
    if glance.counts is not None:
        return max(len(glance.members), sum(glance.counts.values()))
    if glance.total is not None:
        return max(len(glance.members), glance.total)
    return None


async def survey_by_cost(
    provider: Provider, campaign: str, want: Collection[str]
) -> CampaignSurvey:
    """The campaign's check and the numbers ``want``, whichever way costs fewer requests: its
    first page comes first (it tells the campaign's size, and a page naming the campaign
    shows it usable), then every other page, or one exact read per number not on it."""
    first: Glance | None = None
    try:
        first = await provider.campaign_glance(campaign)
    except ProviderUnavailable:
        first = None
    if first is not None and first.names == campaign:
        check = CampaignCheck(campaign, True)
    else:
        check = await provider.check_campaign(campaign)
        if not check.usable:
            return CampaignSurvey(check, None)
    if first is None:
        members = await provider.campaign_numbers(campaign)
        return CampaignSurvey(check, members, size=len(members))
    size = glance_size(first)
    rest = sorted(n for n in want if n not in first.members)
    if first.whole or not read_by_number(len(rest), size, provider.page_size):
        members = await provider.campaign_numbers(campaign, size, first=first)
        return CampaignSurvey(check, members, size=len(members))

    async def one(number: str) -> NumberState:
        return await provider.number_state(campaign, number, 0)

    states = await gather_map({n: functools.partial(one, n) for n in rest})
    return CampaignSurvey(check, {**first.members, **states}, frozenset(rest), size)


async def survey(
    provider: Provider,
    campaigns: Sequence[str],
    numbers: Sequence[str] = (),
    *,
    delay: float,
    clock: Clock,
) -> tuple[dict[str, str], Survey]:
    """Resolve the numbers and read each campaign (its check and, when usable, its list:
    :meth:`Provider.survey_campaign`), campaigns side by side, in rounds: a read that gets no
    usable answer is tried again after ``delay``, up to ``RESEND_ROUNDS`` times, then
    :class:`ProviderUnreachable`. ``bulk status`` looks through this. Returns the unresolved
    numbers (number -> reason) and each campaign's (check, members or None)."""

    async def whole(campaign: str) -> CampaignSurvey:
        check, members = await provider.survey_campaign(campaign)
        return CampaignSurvey(check, members)

    calls = {c: functools.partial(whole, c) for c in campaigns}
    unresolved, found = await _in_rounds(provider, numbers, calls, delay, clock)
    return unresolved, {c: (s.check, s.members) for c, s in found.items()}


async def survey_wanted(
    provider: Provider,
    want: Mapping[str, Collection[str]],
    numbers: Sequence[str],
    *,
    delay: float,
    clock: Clock,
) -> tuple[dict[str, str], dict[str, CampaignSurvey]]:
    """Planning's survey: each campaign of ``want`` read for the numbers it maps to, the
    cheaper way (:func:`survey_by_cost`), in rounds as :func:`survey`."""
    calls = {c: functools.partial(survey_by_cost, provider, c, want[c]) for c in want}
    return await _in_rounds(provider, numbers, calls, delay, clock)


async def _in_rounds(
    provider: Provider,
    numbers: Sequence[str],
    calls: Mapping[str, Callable[[], Awaitable[CampaignSurvey]]],
    delay: float,
    clock: Clock,
) -> tuple[dict[str, str], dict[str, CampaignSurvey]]:
    for round_ in range(RESEND_ROUNDS + 1):
        try:
            unresolved = await provider.resolve(numbers)
            return unresolved, await gather_map(calls)
        except ProviderUnavailable as exc:
            if round_ == RESEND_ROUNDS:
                raise ProviderUnreachable(f"{provider.name}: {exc.reason}") from None
            await clock.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def exact_reads(
    provider: Provider, rows: Iterable[RowRecord], campaign_of: Callable[[RowRecord], str]
) -> dict[int, NumberState]:
    """One single read per row (its number in ``campaign_of(row)``), side by side: the proof
    of absence a paged list cannot give. Rows whose read got no usable answer are left out
    (their decision waits)."""

    async def one(row: RowRecord) -> NumberState | None:
        try:
            return await provider.number_state(campaign_of(row), str(row.e164), row.line)
        except ProviderUnavailable:
            return None

    got = await gather_map({row.line: functools.partial(one, row) for row in rows})
    return {line: state for line, state in got.items() if state is not None}
