"""The thin I/O adapter: executes :class:`Request` values over aiohttp.

It gates each request with the :class:`Meter`, turns transport failures into ``TRANSIENT``
verdicts, classifies responses with the provider's pure function, tells the meter how each
try was answered (a 429 pauses every sender and cuts an adaptive rate; an answer lets it rise)
and retries transient failures with stamina (exponential backoff with jitter, capped
attempts; ``stamina.set_testing`` removes the waits in tests). Credentials travel only in the
``Authorization`` header given at construction; no message it builds contains them, and
every answer has them cut out, in any escaped form, before anything reads it
(:mod:`bulk.engine._redact`).

bulk owns every retry. aiohttp resends an idempotent request (GET, DELETE, PUT, ...) once
on a fresh connection when a kept-alive one drops (``ClientSession._request``: a
``ServerDisconnectedError`` or ``ClientOSError`` while ``_retry_connection`` holds and the
method is in ``IDEMPOTENT_METHODS``). Such a resend would pass no meter and no count, and an
unlink the provider took would go out a second time blind. aiohttp offers no public switch for
it; :func:`no_client_resends` clears the session's ``_retry_connection`` flag, which is how
aiohttp's own test client turns it off, and fails loudly should an aiohttp release drop the
flag. So one ``session.request`` is one request on the wire (redirects are not followed
either), and :class:`Stats` counts each one as it leaves.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import ip_address
from urllib.parse import unquote, urlsplit

import aiohttp
import stamina
from yarl import URL

from bulk import _defaults
from bulk._errors import AuthenticationError, ConfigError, Throttled
from bulk.engine._limits import Meter
from bulk.engine._redact import Redactor, secrets_in
from bulk.providers._base import Kind, Request, Response, Verdict, WindowClosed

#: one line per HTTP try: method, path, status or failure, milliseconds. Never headers,
#: query values or bodies, so no credential can reach a log.
log = logging.getLogger("bulk.http")

@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = _defaults.ATTEMPTS  #: tries for 5xx, timeouts, resets and unreadable bodies
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_jitter: float = 0.5
    max_rate_limited: int = 50  #: 429s one request may meet before bulk gives up on it
    #: the longest ``Retry-After`` bulk waits for; a 429 asking for longer ends the request
    #: unsent at once (a provider's mistake, or a quota for hours, must not hold a run)
    max_retry_after: float = 300.0
    #: seconds of nothing but 429s (no answer between, on one meter: one account) after which
    #: bulk sends nothing more there: the next request raises :class:`Throttled`, which stops
    #: that account's lane (its unfinished rows resume later). The gate is shared, so
    #: each try pays a pause of its own; without this a provider answering every request
    #: ``Retry-After: 299`` held 40 reads for 50 tries each: 166 hours
    max_refused: float = _defaults.MAX_REFUSED
    timeout: float = _defaults.TIMEOUT  #: seconds for one request, connect to last byte


@dataclass(slots=True)
class Stats:
    """What went over the wire."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    retries: int = 0
    transport_errors: int = 0
    attempts_by_line: Counter[int] = field(default_factory=Counter)
    first_at: float | None = None
    last_at: float | None = None

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    #: seconds with at least one request waiting or in flight (set from the meter)
    busy_seconds: float = 0.0

    def busy_rate(self) -> float:
        """Requests per second while work remained (idle waits for settling excluded)."""
        return self.total / self.busy_seconds if self.busy_seconds > 0 else 0.0

    @classmethod
    def merged(cls, parts: Iterable[Stats]) -> Stats:
        """The sum of several senders' stats (one per account), for totals."""
        total = cls()
        for part in parts:
            total.requests.update(part.requests)
            total.statuses.update(part.statuses)
            total.rate_limited += part.rate_limited
            total.retries += part.retries
            total.transport_errors += part.transport_errors
            total.attempts_by_line.update(part.attempts_by_line)
            total.busy_seconds = max(total.busy_seconds, part.busy_seconds)
            if part.first_at is not None:
                total.first_at = min(total.first_at or part.first_at, part.first_at)
            if part.last_at is not None:
                total.last_at = max(total.last_at or part.last_at, part.last_at)
        return total

    def effective_rate(self) -> float:
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return self.total / (self.last_at - self.first_at)


class _Transient(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """A base URL bulk will talk to: https anywhere, plain http only to loopback."""
    try:
        parts = urlsplit(url)
        host = parts.hostname  # a bracketed host that is no IPv6 address fails only here
    except ValueError as exc:
        # never echoed: the URL may carry a query where a pasted key sits
        raise ConfigError(f"the base URL is not a URL that can be read ({exc})") from None
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        # never echoed: a query is where a key pasted into a URL would sit
        raise ConfigError(
            "a base URL takes no query or fragment (?... or #...); put credentials in the "
            "environment or options"
        )
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"base URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError("put credentials in the environment or options, not in the base URL")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ConfigError(f"base URL {url!r}: the port is not a number from 0 to 65535") from None
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError(
            f"refusing plain http to {host}: credentials would cross the network "
            "unencrypted (http is allowed only to loopback, e.g. the sandbox)"
        )
    return url.rstrip("/")


#: one path segment as RFC 3986 allows it: unreserved, sub-delims, ":", "@", %XX escapes
_SEGMENT = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*")


def unsafe_path(path: str) -> str | None:
    """Why ``path`` is not a clean absolute path to send, or None when it is.

    A defence behind the request builders (which percent-encode every value they interpolate):
    no relative path, no ``.``/``..`` segment (also as ``%2e``), no empty segment, no ``?``,
    ``#``, space or control character.
    """
    if not path.startswith("/") or path.startswith("//"):
        return "not an absolute path"
    segments = path[1:].split("/")
    for index, segment in enumerate(segments):
        if not _SEGMENT.fullmatch(segment):
            return "a character not allowed in a path segment"
        if unquote(segment) in (".", ".."):
            return "a '.' or '..' segment"
        if not segment and index != len(segments) - 1:
            return "an empty segment"
    return None


def no_client_resends(session: aiohttp.ClientSession) -> None:
    """Turn off aiohttp's own resend of idempotent requests on a dropped connection: every
    request that leaves is one bulk sent, metered and counted (see the module's docstring)."""
    if "_retry_connection" not in aiohttp.ClientSession.ATTRS:  # pragma: no cover
        raise RuntimeError(
            f"aiohttp {aiohttp.__version__} has no ClientSession._retry_connection: bulk "
            "cannot turn off its resends of idempotent requests"
        )
    session._retry_connection = False


class HttpSender:
    """Sends requests for one provider. Use as ``await sender(request, classify)``.

    The session's own resends are turned off (:func:`no_client_resends`)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        meter: Meter,
        *,
        headers: Mapping[str, str],
        provider: str,
        policy: RetryPolicy | None = None,
        stats: Stats | None = None,
    ) -> None:
        no_client_resends(session)
        self._session = session
        self._base = check_base_url(base_url)
        self._encoded_base = str(URL(self._base))  # request paths are appended as encoded
        self._meter = meter
        self._headers = dict(headers)
        self._redact = Redactor(secrets_in(self._headers))
        self._provider = provider
        self.policy = policy or RetryPolicy()
        self.stats = stats or Stats()
        self._timeout = aiohttp.ClientTimeout(total=self.policy.timeout)

    async def __call__(
        self,
        request: Request,
        classify: Callable[[Request, Response], Verdict],
        *,
        window_closed: WindowClosed | None = None,
    ) -> Verdict:
        """One request to its end: a classified verdict, or ``NO_ANSWER``.

        Reads are tried up to ``policy.attempts`` times. A change (link, unlink, attach,
        detach) is tried again only after a try that surely did not reach the provider (the
        connection was refused; a 429): after a try that may have landed it comes back at
        once as ``NO_ANSWER`` with ``may_have_landed``, and the engine reads the number's
        state before anything else. Resending it blind could change the number twice.

        ``window_closed`` (the engine's ``--send-until``): a change is not sent once it is
        true, asked each time the meter grants the request its slot (it can wait there for a
        long time: a low rate, a 429 pause); it comes back ``NO_ANSWER`` that surely did not
        land. Reads ignore it.
        """
        unsafe = unsafe_path(request.path)
        if unsafe is not None:  # never sent: the path would not address what was meant
            log.warning(
                "%s refused before sending: unsafe request path (%s)", request.method, unsafe
            )
            return Verdict(
                Kind.REFUSED, 0, reason=f"refused to send: unsafe request path ({unsafe})"
            )
        # the first try goes out without a retry context: most requests need no other, and
        # building one costs about a tenth of the client's CPU at a thousand requests a second
        first = await self._until_not_rate_limited(request, classify, window_closed)
        if first.kind is not Kind.TRANSIENT:
            return first
        landed = False
        try:
            async for attempt in stamina.retry_context(
                on=_Transient,
                attempts=self.policy.attempts,
                timeout=None,
                wait_initial=self.policy.wait_initial,
                wait_max=self.policy.wait_max,
                wait_jitter=self.policy.wait_jitter,
            ):
                with attempt:
                    if attempt.num == 1:
                        verdict = first  # that try, as stamina's first: it waits, then retries
                    else:
                        self.stats.retries += 1
                        verdict = await self._until_not_rate_limited(
                            request, classify, window_closed
                        )
                    if verdict.kind is Kind.TRANSIENT:
                        landed = landed or verdict.may_have_landed
                        if request.changes_state and verdict.may_have_landed:
                            return replace(verdict, kind=Kind.NO_ANSWER)
                        raise _Transient(verdict)
                    return verdict
        except _Transient as exc:
            last = exc.verdict
            reason = f"no usable answer after {self.policy.attempts} attempts (last: {last.reason})"
            return Verdict(Kind.NO_ANSWER, last.status, reason=reason, may_have_landed=landed)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _until_not_rate_limited(
        self,
        request: Request,
        classify: Callable[[Request, Response], Verdict],
        window_closed: WindowClosed | None,
    ) -> Verdict:
        meter = self._meter
        for _ in range(self.policy.max_rate_limited):
            if meter.refused_for() > self.policy.max_refused:
                raise self._refused_too_long()  # not even waiting at the gate
            verdict, sent_at = await self._once(request, classify, window_closed)
            if verdict.kind is not Kind.RATE_LIMITED:
                if verdict.kind not in (Kind.TRANSIENT, Kind.NO_ANSWER):  # NO_ANSWER: not sent
                    meter.answered(sent_at)
                if verdict.kind is Kind.AUTH:
                    raise AuthenticationError(
                        f"{self._provider} refused the credentials: HTTP {verdict.status} "
                        f"{verdict.reason or ''}".rstrip()
                    )
                return verdict
            self.stats.rate_limited += 1
            wait = verdict.retry_after
            if wait is not None and wait > self.policy.max_retry_after:
                meter.rate_limited(None, sent_at)  # a 429 all the same: the usual short pause
                return Verdict(
                    Kind.NO_ANSWER,
                    429,
                    reason=(
                        f"rate limited, and {self._provider} asks to wait {wait:g} s before "
                        f"trying again (bulk waits at most {self.policy.max_retry_after:g} s)"
                    ),
                    may_have_landed=False,
                )
            meter.rate_limited(wait, sent_at)
        return Verdict(
            Kind.NO_ANSWER,
            429,
            reason=f"still rate limited after {self.policy.max_rate_limited} tries",
            may_have_landed=False,
        )

    def _refused_too_long(self) -> Throttled:
        return Throttled(
            f"{self._provider} answered only 429s for over {self.policy.max_refused:g} s "
            "(rate limited: nothing more sent there; run again later to resume)"
        )

    async def _once(
        self,
        request: Request,
        classify: Callable[[Request, Response], Verdict],
        window_closed: WindowClosed | None,
    ) -> tuple[Verdict, float]:
        """One try: its verdict, and when it left (on the meter's clock)."""
        try:
            return await self._metered(request, classify, window_closed)
        finally:  # the slot has closed: its busy time is counted
            self.stats.busy_seconds = self._meter.busy_seconds

    async def _metered(
        self,
        request: Request,
        classify: Callable[[Request, Response], Verdict],
        window_closed: WindowClosed | None,
    ) -> tuple[Verdict, float]:
        async with self._meter.slot() as sent_at:
            if request.changes_state and window_closed is not None and window_closed():
                reason = "not sent: the send window closed"
                return Verdict(Kind.NO_ANSWER, reason=reason, may_have_landed=False), sent_at
            if self._meter.refused_for() > self.policy.max_refused:
                raise self._refused_too_long()
            now = time.monotonic()
            if self.stats.first_at is None:
                self.stats.first_at = now
            self.stats.requests[request.endpoint] += 1
            for line in request.lines:
                self.stats.attempts_by_line[line] += 1
            try:
                async with self._session.request(
                    request.method,
                    # encoded=True: yarl must neither decode %2F nor fold '..' segments
                    URL(self._encoded_base + request.path, encoded=True),
                    params=request.params,
                    json=request.json,
                    headers=self._headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as raw:
                    body = await raw.read()
                    response = self._redact(
                        Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, body)
                    )
            except TimeoutError:
                reason = f"no answer within {self.policy.timeout:g} s"
                return self._transport_failure(request, now, reason), sent_at
            except aiohttp.ClientPayloadError:
                reason = "the response body was cut off"
                return self._transport_failure(request, now, reason), sent_at
            except aiohttp.ClientConnectorError as exc:
                reason = f"cannot connect ({exc.os_error.strerror or 'refused'})"
                return self._transport_failure(request, now, reason, landed=False), sent_at
            except (aiohttp.ClientError, ConnectionError, OSError) as exc:
                reason = f"connection lost ({type(exc).__name__})"
                return self._transport_failure(request, now, reason), sent_at
            finally:
                self.stats.last_at = time.monotonic()
        self.stats.statuses[response.status] += 1
        verdict = _redirect(response) or classify(request, response)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %s %s %.0f ms",
                request.method,
                request.path,
                response.status,
                verdict.kind.value,
                (time.monotonic() - now) * 1000,
            )
        return verdict, sent_at

    def _transport_failure(
        self, request: Request, started: float, reason: str, *, landed: bool = True
    ) -> Verdict:
        self.stats.transport_errors += 1
        log.info(
            "%s %s failed: %s %.0f ms",
            request.method,
            request.path,
            reason,
            (time.monotonic() - started) * 1000,
        )
        return Verdict(Kind.TRANSIENT, 0, reason=reason, may_have_landed=landed)


def _redirect(response: Response) -> Verdict | None:
    """A 3xx is never followed: following would resend the request (numbers, credentials)
    wherever the server points, over plain http too, and turn a POST into a GET. It counts as
    no usable answer; for a change it may have landed, so the engine reads before resending."""
    if not 300 <= response.status < 400:
        return None
    target = urlsplit(response.headers.get("location", ""))
    where = f" to {target.scheme}://{target.hostname}" if target.hostname else ""
    return Verdict(
        Kind.TRANSIENT,
        response.status,
        reason=f"HTTP {response.status}: a redirect{where}, which bulk does not follow",
    )
