"""Admission and feedback: the gate every request passes, and what its answer teaches.

Every request, scheduled or not, passes ``Sender.admit()``: the host's cool-down and
adaptive rate (``HostGate``), then the poller's rate limit; and after any wait the
host's cool-down is checked again, so a cool-down announced while a request waited
for a slot still holds it back. Every answer goes through ``Sender.feedback()``: the
server's hint and budget go to the host's gate.

Requests outside the schedule (create, remote cancel, read-now) share one path,
``Sender.send_now()``: admit (bounded by ``request_timeout``), send, feed back.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import anyio

from ._clock import Clock, wall_time_of
from ._errors import PollError
from ._hosts import HostGate
from ._httpdate import parse_http_date
from ._limiter import Limiter
from ._policy import Pacing, header_hint, parse_budget
from ._ratelimit import RateLimit
from ._record import JobRecord
from ._redact import printable
from ._response import Response
from ._status import Status
from ._transport import Transport, TransportFailure

if TYPE_CHECKING:
    from ._handle import JobHandle

__all__ = [
    "DEFAULT_THROTTLE_PAUSE",
    "PACING_HEADERS",
    "SendFailed",
    "Sender",
    "call_check",
    "host_of",
]

logger = logging.getLogger("asyncpoll")

#: How long a 429 (or a 503 with an unusable hint) pauses its host, in seconds.
DEFAULT_THROTTLE_PAUSE: Final = 1.0
#: The headers a server paces clients with: hints (Retry-After) and budgets (RateLimit-*).
PACING_HEADERS: Final = (
    "retry-after",
    "retry-after-ms",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def host_of(url: str) -> str:
    """The lower-case host name of ``url``."""
    return (urlsplit(url).hostname or "").lower()


class SendFailed(Exception):
    """A request outside the schedule got no answer; the message says why (control
    characters escaped: it may quote a transport's error, which may quote the server)."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        self.message = message = printable(message)
        super().__init__(message)
        self.cause = cause


class NotSent(SendFailed):
    """A request outside the schedule was no longer wanted once admitted (its job had
    finished while it waited for the host or the rate limit): nothing was sent."""


class Sender:
    """Admission to hosts and to the poller's rate limit, and the hosts' feedback.

    Args:
        transport: the transport requests go through.
        clock: the poller's clock.
        limit: the poller-wide rate limit, or None.
        host_limits: per-host limits (``"*"``: every other host), or None.
        pacing: caps on server hints.
        hint_headers: extra response headers that carry a hint.
        request_timeout: the longest a request outside the schedule waits and runs.
        max_result_body: the largest result document read, in decoded bytes.
    """

    __slots__ = (
        "_gates",
        "_hint_headers",
        "_host_limits",
        "_pacing",
        "_pacing_headers",
        "_request_timeout",
        "_wall",
        "_warned",
        "clock",
        "limiter",
        "max_result_body",
        "requests",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        limit: RateLimit | None,
        host_limits: Mapping[str, RateLimit] | None,
        pacing: Pacing,
        hint_headers: tuple[str, ...],
        request_timeout: float | None,
        max_result_body: int,
    ) -> None:
        self.transport = transport
        self.max_result_body = max_result_body
        self.clock = clock
        self.limiter = None if limit is None else Limiter(limit, clock)
        self._host_limits = host_limits
        self._pacing = pacing
        self._hint_headers = hint_headers
        #: Every header that can carry a hint or a budget.
        self._pacing_headers = frozenset((*hint_headers, *PACING_HEADERS))
        self._request_timeout = request_timeout
        self._gates: dict[str, HostGate] = {}  # host -> admission and back-pressure
        self._warned: set[str] = set()  # hosts whose absurd hints were logged
        self._wall = wall_time_of(clock)
        self.requests = 0  # requests sent, every kind

    def rebind(self, clock: Clock) -> None:
        """Use ``clock`` (the running loop's) from now on; before any request."""
        self.clock = clock
        self._wall = wall_time_of(clock)
        if self.limiter is not None:
            self.limiter = Limiter(self.limiter.limit, clock)

    def gate_for(self, url: str) -> HostGate:
        """The gate of ``url``'s host, made on first use."""
        return self.gate_at(host_of(url))

    def gate_at(self, host: str) -> HostGate:
        """The gate of ``host``, made on first use."""
        gate = self._gates.get(host)
        if gate is None:
            limit = None
            if self._host_limits is not None:
                limit = self._host_limits.get(host, self._host_limits.get("*"))
            gate = self._gates[host] = HostGate(host, limit, self.clock)
        return gate

    async def admit(
        self,
        url: str | None,
        bound: float,
        gate: HostGate | None = None,
        rate_bound: float | None = None,
    ) -> bool:
        """Wait for the host's cool-down and rate, then the poller's rate limit.

        A cool-down the host announced while this request waited for a slot is waited
        out too, then new slots are taken: no request reaches a host inside a cool-down
        it announced, and the rates hold for the times requests go.

        Args:
            bound: the latest the host's cool-down may be waited out until.
            rate_bound: the latest for the rate slots (default: ``bound``).

        Returns:
            False if a bound (a clock reading) came first.
        """
        if url is not None and gate is None:
            gate = self.gate_for(url)
        poller_bound = bound if rate_bound is None else rate_bound
        while True:
            if gate is not None and not await gate.wait(bound, rate_bound):
                return False
            if self.limiter is None:
                return True
            until = -math.inf if gate is None else gate.paused_until
            if not await self.limiter.acquire(poller_bound):
                return False
            if gate is None or gate.paused_until == until:
                return True
            # A cool-down announced while we waited for the poller's slot: the request
            # cannot go now. Give both slots back, wait it out and take new ones, so
            # that the rates hold for the times requests go.
            self.limiter.give_back()
            gate.give_back()

    def feedback(self, url: str, response: Response, gate: HostGate | None = None) -> float | None:
        """Tell the host's gate what it answered; returns the server's hint, capped."""
        headers = response.headers
        code = response.status_code
        if code < 400 and gate is not None and self._pacing_headers.isdisjoint(headers):
            gate.on_healthy(self.clock.now())  # the common case: no hint, no budget
            return None
        date = headers.get("date")
        hint = header_hint(headers, self._hint_headers, wall_now=self._wall(), date=date)
        cap = self._pacing.max_retry_after
        if hint is not None and hint > cap:
            host = host_of(url)
            if host not in self._warned:
                self._warned.add(host)
                logger.warning(
                    "%s asked to wait %.0f s; capping server hints at max_retry_after=%g s",
                    printable(host),
                    hint,
                    cap,
                )
            hint = cap
        if gate is None:
            gate = self.gate_for(url)
        now = self.clock.now()
        if code == 429 or (code == 503 and hint is not None):
            gate.on_throttled(now, DEFAULT_THROTTLE_PAUSE if hint is None else hint)
        elif code < 400:
            gate.on_healthy(now)
        # An epoch reset is read against the server's own clock, its Date header.
        budget = parse_budget(headers, functools.partial(parse_http_date, date))
        if budget is not None:
            remaining, reset = budget
            gate.on_budget(now, remaining, min(reset, cap))
        return hint

    def url_for(self, record: JobRecord) -> str | None:
        """Where the job's next request goes, when it is not a status poll."""
        if record.action == "fetch":
            return record.fetch_url
        assert record.create is not None
        return self.transport.absolute(record.create.url)

    async def request_for(self, record: JobRecord, url: str) -> Response:
        """Send the request the job's ``action`` calls for; credentials only to its origin."""
        transport = self.transport
        if record.action == "resubmit":
            create = record.create
            assert create is not None
            return await transport.request(
                create.method,
                create.url,
                json=create.json,
                data=create.data,
                content=create.content,
                headers=create.headers_for(len(record.submissions)),
            )
        origin = record.origin
        if url is origin:  # the common case, a status URL polled where it was given
            return await transport.request("GET", url)
        credentials = record.credentials_for(url)
        if record.action == "fetch":
            return await transport.request(
                "GET", url, credentials=credentials, max_body=self.max_result_body
            )
        return await transport.request("GET", url, credentials=credentials)

    async def send_now(
        self,
        what: str,
        method: str,
        url: str,
        *,
        credentials: bool = True,
        json: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        deadline_name: str = "its deadline",
        queue: bool = False,
        wanted: Callable[[], bool] | None = None,
    ) -> tuple[Response, float | None]:
        """One request outside the schedule: admit, send, feed back.

        Args:
            deadline: a clock reading bounding the wait for the host's cool-down and the
                request (default: ``request_timeout`` from now for each); the request is
                bounded by ``request_timeout`` too.
            deadline_name: what the deadline is, for messages ("create_timeout=60 s").
            queue: wait for the rate limits' slots however long it takes (a create in
                ``submit_many()`` waits its turn), not only until the deadline.
            wanted: asked once the request is admitted, right before it goes: False
                sends nothing and raises ``NotSent`` (a job that finished meanwhile).

        Returns:
            The response and the server's hint (capped), or None.

        Raises:
            SendFailed: the host stayed closed, or the request got no answer; the
                message names ``what`` ("the create request", ...).
        """
        limit = self._request_timeout
        shown_limit = f"request_timeout={limit:g} s" if limit is not None else ""
        if deadline is not None:
            bound = deadline
        else:
            bound = math.inf if limit is None else self.clock.now() + limit
        if not await self.admit(url, bound, rate_bound=math.inf if queue else None):
            within = deadline_name if deadline is not None else shown_limit
            raise SendFailed(f"the host is cooling down; {what} could not be sent within {within}")
        if wanted is not None and not wanted():
            raise NotSent(f"{what} was not sent: the job finished while it waited")
        self.requests += 1
        wait, within = limit, shown_limit
        if deadline is not None:
            left = deadline - self.clock.now()
            if limit is None or left < limit:
                wait, within = max(0.0, left), deadline_name
        try:
            with anyio.fail_after(wait):
                response = await self.transport.request(
                    method,
                    url,
                    json=json,
                    data=data,
                    content=content,
                    headers=headers,
                    credentials=credentials,
                )
        except TransportFailure as exc:
            raise SendFailed(f"{what} failed: {exc}", exc) from exc
        except TimeoutError as exc:
            raise SendFailed(f"no response to {what} within {within}", exc) from exc
        return response, self.feedback(url, response)


async def call_check(handle: JobHandle) -> Status:
    """Read a job's status with its ``check=`` callable.

    Raises:
        PollError: ``check=`` is not async or returned something other than a Status.
    """
    assert handle._check is not None
    outcome = handle._check(handle)
    if not inspect.isawaitable(outcome):
        raise PollError(
            f"check= must be an async callable returning a Status; it returned "
            f"{type(outcome).__name__} without awaiting"
        )
    status = await outcome
    if not isinstance(status, Status):
        raise PollError(f"check= returned {type(status).__name__}, not an asyncpoll.Status")
    return status
