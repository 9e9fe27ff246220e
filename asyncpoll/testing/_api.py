"""``FakeJobAPI``: a job API as an ASGI app, for tests of code that polls jobs.

The app is Starlette routes (one set per shape, ``_shapes``) behind one plain ASGI layer
here that does what every route shares: it reads the clock once per request, checks the
bearer token and the rate limit, simulates faults (dropped connections, 5xx, slow
answers) and writes the request log.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import anyio
import anyio.lowlevel
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from asyncpoll import RateLimit, TokenBucket

from ._jobs import Duration, FakeJob, JobStore, RecordedRequest, check_duration
from ._shapes import JOB_ID, NOW, SHAPES, Context, Shape

__all__ = ["FakeJobAPI"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

#: The base URL of ``FakeJobAPI.client()``.
BASE_URL = "http://fake-job-api.test"

#: The 5xx statuses a simulated server error answers, drawn in turn.
ERROR_STATUSES = (500, 502, 503)


class ConnectionDropped(httpx.RemoteProtocolError):
    """The fake API dropped the connection without answering (a simulated fault).

    Raised inside the app so that ``httpx.ASGITransport`` hands it to the client as it
    is: an ``httpx.RemoteProtocolError``, the error httpx raises when a server closes a
    connection without a response.
    """


def _rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}= must be a number from 0 to 1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}= must be from 0 to 1, got {value!r}")
    return float(value)


def _default_result(job: FakeJob) -> Any:
    return {"job_id": job.id, "input": job.input}


def _default_error(job: FakeJob) -> str:
    return f"simulated failure of job {job.id}"


class FakeJobAPI:
    """A fake job API: an ASGI app that creates, reports on and cancels simulated jobs.

    Pass it to ``httpx.ASGITransport`` (``api.client()`` does) to test in process, or run
    it on loopback with ``serve(api)``. Each job is pending for ``pending`` seconds, then
    running for ``duration`` seconds with its progress growing, then succeeded (or failed,
    with probability ``failure_rate``); ``DELETE`` (or the shape's cancel request) ends it
    cancelled. A job's state is computed from ``clock()`` when a request comes, and from
    nothing else: pass ``clock=anyio.current_time`` to run in an event loop's virtual time.

    Every request is recorded in ``requests``; ``jobs`` shows every job's times.

    Args:
        shape: the API's shape: ``"status"``, ``"envelope"``, ``"location"``, ``"pages"``
            and ``"bearer"`` (the README's five), or the job systems ``"celery"`` (Flower),
            ``"ray"`` (Ray Jobs), ``"github"`` (Actions runs), ``"prefect"`` (flow runs),
            ``"airflow"`` (DAG runs), ``"azure"`` (status monitors), ``"google"``
            (long-running operations), ``"openai"`` (batches), ``"replicate"``
            (predictions), ``"jenkins"`` (builds), ``"argo"`` (workflows) and ``"rq"`` (a
            user's own endpoint over RQ). AWS has none: its jobs are read through boto3
            (signed requests), not a URL. ``api.shape`` has its URLs.
        duration: each job's running time, in seconds: a number, a ``(low, high)`` range
            drawn uniformly, or a function of a ``random.Random`` returning seconds.
        pending: each job's time queued before it runs, in seconds, in the same forms.
        failure_rate: the share of jobs that end failed, 0 to 1.
        seed: seeds the ``random.Random`` every draw comes from (None: unpredictable).
            Jobs draw from one generator and faults from another, so the same seed gives
            the same jobs however many faulty answers there were.
        error_rate: the share of requests answered with a 5xx (500, 502 or 503, in turn,
            none with ``Retry-After``).
        drop_rate: the share of requests whose connection is dropped without an answer.
        slow_rate: the share of requests answered ``slow_seconds`` late.
        slow_seconds: how late a slow answer is, in seconds (slept with ``anyio.sleep``,
            so virtual time passes it at once).
        flaky_methods: the methods faults apply to (default: ``GET`` only, so creating and
            cancelling jobs always works).
        rate_limit: a limit on all requests together: a ``RateLimit`` or requests per
            second (burst 1). A request over it is answered ``429`` with ``Retry-After``
            (whole seconds until a request would be let through) and ``RateLimit-Limit``
            (the burst), ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until
            the bucket is full again, to the millisecond); with ``rate_limit_headers``
            every answer carries the three ``RateLimit-*`` headers.
        rate_limit_headers: send ``RateLimit-*`` on every answer, not only 429s.
        token: a bearer token every request must carry (``Authorization: Bearer
            <token>``); without it the answer is ``401``. None: no authentication.
        result: a job's result, from its ``FakeJob`` (default:
            ``{"job_id": id, "input": <the create request's JSON>}``).
        error: a failed job's error text, from its ``FakeJob``.
        clock: the time, in seconds (default ``time.monotonic``); ``anyio.current_time``
            for tests in an event loop's (virtual) time.

    Raises:
        ValueError: an unknown shape, or a rate outside 0 to 1, or negative seconds.
        TypeError: an argument of the wrong type.
    """

    def __init__(
        self,
        shape: str = "status",
        *,
        duration: Duration = (1.0, 3.0),
        pending: Duration = 0.0,
        failure_rate: float = 0.0,
        seed: int | str | None = None,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: float = 5.0,
        flaky_methods: Iterable[str] = ("GET",),
        rate_limit: RateLimit | float | None = None,
        rate_limit_headers: bool = True,
        token: str | None = None,
        result: Callable[[FakeJob], Any] | None = None,
        error: Callable[[FakeJob], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
        check_duration(duration, "duration")
        check_duration(pending, "pending")
        if isinstance(slow_seconds, bool) or not isinstance(slow_seconds, (int, float)):
            raise TypeError(f"slow_seconds= must be a number, got {slow_seconds!r}")
        if not (math.isfinite(slow_seconds) and slow_seconds >= 0):
            raise ValueError(f"slow_seconds= must be a finite number >= 0, got {slow_seconds!r}")
        if isinstance(flaky_methods, str):
            raise TypeError("flaky_methods= takes a list of methods, not one string")
        self.shape: Shape = SHAPES[shape]
        self.failure_rate = _rate("failure_rate", failure_rate)
        self.error_rate = _rate("error_rate", error_rate)
        self.drop_rate = _rate("drop_rate", drop_rate)
        self.slow_rate = _rate("slow_rate", slow_rate)
        if self.error_rate + self.drop_rate + self.slow_rate > 1.0:
            raise ValueError("error_rate + drop_rate + slow_rate must be at most 1")
        self.slow_seconds = float(slow_seconds)
        self.flaky_methods = frozenset(m.upper() for m in flaky_methods)
        self.rate_limit = RateLimit.coerce(rate_limit)
        self.rate_limit_headers = rate_limit_headers
        self.token = token
        self.clock = clock
        self._bucket = TokenBucket(self.rate_limit) if self.rate_limit is not None else None
        self._fault_rng = random.Random(None if seed is None else f"{seed}:faults")
        self._errors = 0
        self._store = JobStore(
            rng=random.Random(None if seed is None else f"{seed}:jobs"),
            id_rng=random.Random(None if seed is None else f"{seed}:ids"),
            duration=duration,
            pending=pending,
            failure_rate=self.failure_rate,
            make_id=self.shape.make_id,
        )
        context = Context(self._store, result or _default_result, error or _default_error)
        self.app = Starlette(routes=self.shape.routes(context))
        #: Every request received, in arrival order.
        self.requests: list[RecordedRequest] = []

    def __repr__(self) -> str:
        return (
            f"<FakeJobAPI shape={self.shape.name!r} jobs={len(self._store.jobs)} "
            f"requests={len(self.requests)}>"
        )

    # ------------------------------------------------------------ jobs

    @property
    def jobs(self) -> dict[str, FakeJob]:
        """Every job (a snapshot), by id, in the order they were made."""
        return dict(self._store.jobs)

    def job(self, job_id: str) -> FakeJob:
        """The job ``job_id`` (a snapshot); ``KeyError`` when there is none."""
        return self._store.jobs[job_id]

    def add_job(
        self,
        job_id: str | None = None,
        *,
        input: Any = None,
        duration: float | None = None,
        pending: float | None = None,
        fail: bool | None = None,
        at: float | None = None,
    ) -> FakeJob:
        """Make a job without a create request, as if someone else had made it.

        Args:
            job_id: its id (default: the shape's next id).
            input: what its create request would have carried.
            duration: its running time in seconds (default: drawn from ``duration=``).
            pending: its time queued in seconds (default: drawn from ``pending=``).
            fail: whether it fails (default: drawn from ``failure_rate=``).
            at: its creation time (default: ``clock()`` now).

        Returns:
            The new job.

        Raises:
            ValueError: a job with that id exists.
        """
        now = self.clock() if at is None else at
        return self._store.create(
            now, input, job_id=job_id, duration=duration, pending=pending, fail=fail
        )

    # ------------------------------------------------------------ the request log

    def count(
        self, method: str | None = None, path: str | None = None, *, job_id: str | None = None
    ) -> int:
        """How many requests match: a method, an exact path and/or a job id (None: any)."""
        return len(self.find(method, path, job_id=job_id))

    def find(
        self, method: str | None = None, path: str | None = None, *, job_id: str | None = None
    ) -> list[RecordedRequest]:
        """The recorded requests that match (as for ``count``), in arrival order."""
        method = method.upper() if method is not None else None
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and (path is None or r.path == path)
            and (job_id is None or r.job_id == job_id)
        ]

    def times(self, job_id: str, method: str | None = "GET") -> list[float]:
        """When the requests about ``job_id`` (status polls, by default) arrived."""
        return [r.time for r in self.find(method, job_id=job_id)]

    # ------------------------------------------------------------ clients

    @property
    def headers(self) -> dict[str, str]:
        """The headers a client needs: the bearer token's ``Authorization``, if any."""
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    def poller_options(self) -> dict[str, Any]:
        """``TaskPoller`` keyword arguments for this API's shape.

        ``status_url``, ``cancel_url`` and ``cancel_method`` (URLs relative to the API's
        base), ``cancel_json`` when the shape's cancel carries a body (Prefect's state,
        Airflow's ``{"state": "failed"}``), and ``headers`` when a token is set:
        ``TaskPoller(client=api.client(), **api.poller_options())``.
        """
        options: dict[str, Any] = {
            "status_url": self.shape.status_url,
            "cancel_url": self.shape.cancel_url,
            "cancel_method": self.shape.cancel_method,
        }
        if self.shape.cancel_json is not None:
            options["cancel_json"] = self.shape.cancel_json
        if self.token is not None:
            options["headers"] = self.headers
        return options

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` that sends its requests to this app in process.

        Its base URL is ``http://fake-job-api.test``; ``kwargs`` go to
        ``httpx.AsyncClient`` (``base_url=``, ``headers=``, ...). Pass it as
        ``TaskPoller(client=...)`` and close it when done (``async with``).
        """
        kwargs.setdefault("base_url", BASE_URL)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self), **kwargs)

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        raw: bytes | None = await request.body()
        now = self.clock()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        method = scope["method"].upper()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        state: dict[str, Any] = scope.setdefault("state", {})
        status: list[int] = []
        logged: list[bool] = []
        fault: str | None = None

        def log() -> None:
            if logged:
                return
            logged.append(True)
            self.requests.append(
                RecordedRequest(
                    time=now,
                    method=method,
                    path=scope["path"],
                    query=scope.get("query_string", b"").decode("latin-1"),
                    headers=headers,
                    json=body,
                    status_code=status[0] if status else None,
                    job_id=state.get(JOB_ID),
                    fault=fault,
                )
            )

        # The request is logged as its answer starts, before the client can see it, so
        # a test that has its answer finds it in the log (a served API answers from
        # another thread).
        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                # A 429 carries its own RateLimit-* headers.
                if self.rate_limit_headers and fault != "throttled":
                    extra = self._limit_headers(now)
                    message["headers"] = list(message.get("headers", [])) + [
                        (k.lower().encode(), v.encode()) for k, v in extra.items()
                    ]
                log()
            await send(message)

        async def replay() -> Message:
            nonlocal raw
            if raw is not None:
                chunk, raw = raw, None
                return {"type": "http.request", "body": chunk, "more_body": False}
            return dict(await receive())

        try:
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                fault = "unauthorized"
                problem = {"code": "unauthorized", "message": "a valid bearer token is required"}
                await JSONResponse(
                    {"error": problem}, 401, headers={"WWW-Authenticate": 'Bearer realm="jobs"'}
                )(scope, replay, answer)
                return
            if self._bucket is not None and not self._bucket.try_take(now):
                fault = "throttled"
                retry_after = str(max(1, math.ceil(self._bucket.wait_time(now))))
                problem = {"code": "rate_limited", "message": "too many requests"}
                await JSONResponse(
                    {"error": problem},
                    429,
                    headers={"Retry-After": retry_after, **self._limit_headers(now)},
                )(scope, replay, answer)
                return
            if method in self.flaky_methods:
                fault = self._roll_fault()
            if fault == "drop":
                log()
                await _drop(send)
                return
            if fault == "error":
                code = ERROR_STATUSES[self._errors % len(ERROR_STATUSES)]
                self._errors += 1
                problem = {"code": "server_error", "message": "simulated server error"}
                await JSONResponse({"error": problem}, code)(scope, replay, answer)
                return
            if fault == "slow":
                await anyio.sleep(self.slow_seconds)
            state[NOW] = self.clock() if fault == "slow" else now
            await self.app(scope, replay, answer)
        finally:
            log()  # an app that never answered: status_code None

    def _roll_fault(self) -> str | None:
        roll = self._fault_rng.random()
        if roll < self.drop_rate:
            return "drop"
        if roll < self.drop_rate + self.error_rate:
            return "error"
        if roll < self.drop_rate + self.error_rate + self.slow_rate:
            return "slow"
        return None

    def _limit_headers(self, now: float) -> dict[str, str]:
        bucket = self._bucket
        if bucket is None or self.rate_limit is None:
            return {}
        burst = self.rate_limit.burst
        return {
            "RateLimit-Limit": str(burst),
            "RateLimit-Remaining": str(int(bucket.tokens(now) + 1e-9)),
            # To the millisecond: whole seconds would tell a client spending the budget
            # over the time to the reset to go far slower than the limit allows.
            "RateLimit-Reset": f"{math.ceil(bucket.wait_time(now, burst) * 1000 - 1e-6) / 1000:g}",
        }


async def _drop(send: Send) -> None:
    """Close the connection without an answer.

    Under uvicorn, ``send`` is a method of the connection's request cycle, which holds the
    socket's transport: aborting it closes the connection at once, and the client sees
    "Server disconnected without sending a response". Anywhere else (``httpx.
    ASGITransport``), raise ``ConnectionDropped``, which the transport hands on as the
    ``httpx.RemoteProtocolError`` a client gets for a dropped connection.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
        # Let the server see the connection gone before the app returns, so it does not
        # try to answer on it.
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        return
    raise ConnectionDropped("Server disconnected without sending a response.")
