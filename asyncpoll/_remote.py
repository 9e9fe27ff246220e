"""Requests outside the schedule: create (``submit()``), remote cancel, read-now.

All three go through ``Sender.send_now()`` (admission bounded by ``request_timeout``,
the request, the host's feedback) and are judged by ``decide``'s rules, like the
scheduled ones.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ._decide import Verdict, locate, on_status, read_status, verdict
from ._errors import PollError, SubmitError
from ._options import Options
from ._outcomes import Finish
from ._policy import checked_delay
from ._record import NO_BODY, Submission
from ._redact import redact_url
from ._response import Response, excerpt
from ._send import NotSent, SendFailed, call_check
from ._status import JobState, Status
from ._submit import IDEMPOTENCY_HEADER, CreateRequest
from ._urls import same_origin

if TYPE_CHECKING:
    from ._engine import Engine
    from ._handle import JobHandle

__all__ = ["MAX_CREATE_ATTEMPTS", "Remote"]

#: The most times one ``submit()`` sends its create request.
MAX_CREATE_ATTEMPTS = 20

logger = logging.getLogger("asyncpoll")


class Remote:
    """The out-of-schedule requests of one poller."""

    __slots__ = ("_engine", "_options")

    def __init__(self, engine: Engine, options: Options) -> None:
        self._engine = engine
        self._options = options

    async def create(self, create: CreateRequest) -> tuple[Response, str, str, bool]:
        """Send a create request; returns the response, job id, status URL and whether
        the ``status_url`` template gave the URL.

        A refusal the server asks to wait out (429, or 503 with a hint) is sent again
        after the host's cool-down: the server refused it, so no job was made. With an
        idempotency key a transient failure (no answer, 5xx, 408) is sent again too, on
        the retry schedule, up to ``max_errors`` times. All of it within
        ``create_timeout`` (default: ``request_timeout``) of the first send, and at most
        ``MAX_CREATE_ATTEMPTS`` sends.

        Raises:
            SubmitError: no answer, a non-2xx answer, or no way to tell where to poll.
        """
        engine = self._engine
        clock = engine.clock
        absolute = engine.sender.transport.absolute(create.url)
        shown = redact_url(absolute)
        name, limit = self._create_limit()
        deadline_name = f"{name}={limit:g} s" if limit is not None else name
        # The create's deadline runs from the call, and again from the first answer: the
        # time it queued for the rate limit's slots (submit_many()) does not count.
        deadline = None if limit is None else clock.now() + limit
        retry_safe = create.idempotency_key is not None
        failures = 0
        for attempt in range(1, MAX_CREATE_ATTEMPTS + 1):
            last = attempt == MAX_CREATE_ATTEMPTS
            try:
                response, hint = await engine.sender.send_now(
                    "the create request",
                    create.method,
                    absolute,
                    json=create.json,
                    data=create.data,
                    content=create.content,
                    headers=create.headers_for(0),
                    deadline=deadline,
                    deadline_name=deadline_name,
                    queue=True,
                )
            except SendFailed as exc:
                if attempt == 1 and limit is not None:
                    deadline = clock.now() + limit
                failures += 1
                if (
                    retry_safe
                    and not last
                    and await self._wait_retry(failures, deadline, exc.message)
                ):
                    continue
                raise SubmitError(
                    exc.message + self._tries(attempt), url=shown, cause=exc.cause
                ) from exc.cause
            if attempt == 1 and limit is not None:
                deadline = clock.now() + limit
            code = response.status_code
            kind = verdict(code, hint)
            if kind is Verdict.READ:
                break
            if (
                kind is Verdict.THROTTLED
                and not last
                and (deadline is None or clock.now() < deadline)
            ):
                # The host's gate holds the cool-down; the next admission waits it out
                # (or gives up at the deadline).
                logger.info(
                    "the create request to %s was refused with HTTP %d; sending it again after %s",
                    shown,
                    code,
                    f"{hint:g} s" if hint is not None else "the host's cool-down",
                )
                continue
            if kind is Verdict.TRANSIENT and retry_safe and not last:
                failures += 1
                if await self._wait_retry(failures, deadline, f"HTTP {code}"):
                    continue
            retry = f"; the server asks to wait {hint:g} s" if hint is not None else ""
            error = SubmitError(
                f"the create request was refused: HTTP {code}{retry}; "
                f"received {excerpt(response.content)}{self._tries(attempt)}",
                url=shown,
                http_status=code,
            )
            error.response = response
            raise error
        try:
            job_id, status_url, from_template = locate(response, engine.rules)
        except PollError as exc:
            error = SubmitError(exc.message, url=shown, http_status=code, cause=exc)
            error.response = response
            raise error from exc
        return response, job_id, status_url, from_template

    def _create_limit(self) -> tuple[str, float | None]:
        """The option bounding a create's tries, and its value in seconds (None: none)."""
        options = self._options
        if options.create_timeout is not None:
            return "create_timeout", options.create_timeout
        return "request_timeout", options.request_timeout

    @staticmethod
    def _tries(attempt: int) -> str:
        return "" if attempt == 1 else f" (attempt {attempt})"

    async def _wait_retry(self, failures: int, deadline: float | None, reason: str) -> bool:
        """Sleep before sending a create again after a transient failure; False when the
        retry budget (``max_errors``) or the deadline does not allow it."""
        engine = self._engine
        if failures >= self._options.max_errors:
            return False
        delay = checked_delay(engine.rules.retry_schedule, failures, engine.rules.rng)
        when = engine.clock.now() + delay
        if deadline is not None and when >= deadline:
            return False
        logger.info(
            "the create request failed (%s); sending it again with the same idempotency "
            "key in %.3g s",
            reason,
            delay,
        )
        await engine.clock.sleep_until(when)
        return True

    def adopt(
        self,
        handle: JobHandle,
        create: CreateRequest,
        response: Response,
        from_template: bool,
        resubmits: int,
    ) -> None:
        """Give a submitted job's handle what ``submit()`` learned."""
        record = handle._record
        absolute = self._engine.sender.transport.absolute(create.url)
        # Credentials go where the user sent them: the create URL's origin, or the
        # origin of the user's own status_url template.
        record.origin = record.target if from_template else absolute
        record.create = create
        record.resubmits_left = resubmits
        assert record.target is not None
        record.submissions = (
            Submission(record.job_id, redact_url(record.target), response.status_code),
        )
        handle._last_response = response
        self._read_create_status(handle, response)

    def _read_create_status(self, handle: JobHandle, response: Response) -> None:
        """A create response that already states the job's state counts as a first read."""
        try:
            status = self._engine.rules.reader(response)
        except Exception:
            return  # most create responses carry no state; the first poll will tell
        if not isinstance(status, Status):
            return
        record = handle._record
        if status.state.is_terminal:
            # Only an outcome that needs no further request and that the answer carries
            # (a result, an error text): a result to fetch, a failure to resubmit, or a
            # bare "SUCCESS" (Celery's create answer, whose result only the status has)
            # is left to the first poll, already scheduled.
            if not record.needs_more(status) and _carries_outcome(status):
                self._resolve(handle, status)
        else:
            record.status = status
            record.state = status.state

    def _resolve(self, handle: JobHandle, status: Status) -> None:
        """Finish a job by a terminal status read outside the schedule."""
        engine = self._engine
        decision = on_status(handle._record, status, None, engine.clock.now(), engine.rules)
        assert isinstance(decision, Finish)
        if handle._scope is not None:
            # A worker's poll of the job, waiting for its host or the rate limit (or in
            # flight): no longer wanted, as when the job is cancelled.
            handle._scope.cancel()
        engine.apply(handle, decision)

    async def cancel(self, handle: JobHandle) -> bool:
        """``handle.cancel_remote()``: see its docstring."""
        engine, options = self._engine, self._options
        if handle.done():
            return False
        record = handle._record
        if record.action == "resubmit":
            # The last job failed and no new one exists yet: nothing to cancel remotely.
            return engine.cancel_job(handle, "cancelled by the caller before it was resubmitted")
        if record.action == "fetch":
            return False  # it succeeded; only its result document is still to come
        url = record.cancel_url or record.target
        if url is None:
            raise ValueError(
                f"job {handle.job_id!r} has no URL to send a cancel request to (it is "
                "polled with check=); pass cancel_url= to add()"
            )
        method = record.cancel_method or options.cancel_method.upper()
        body = options.cancel_json if record.cancel_json is NO_BODY else record.cancel_json
        shown = redact_url(url)
        try:
            response, _ = await engine.sender.send_now(
                f"the {method} request",
                method,
                url,
                credentials=record.credentials_for(url),
                json=body,
                # A job that finished while the request waited for its host or the rate
                # limit is not cancelled: a DELETE may delete a finished job's record.
                wanted=lambda: not handle.done(),
            )
        except NotSent:
            return False
        except SendFailed as exc:
            raise PollError(exc.message, job_id=handle.job_id, url=shown, cause=exc.cause) from (
                exc.cause
            )
        handle._last_response = response
        code = response.status_code
        accepted = 200 <= code < 300 or _redirected_home(response, url, method)
        # Accepted or refused, the job may have finished already: ask, and resolve as
        # the server says (an accepted cancel of a job that had succeeded keeps its result).
        status = await self.read_now(handle)
        if handle.done() or record.action != "poll":
            # Settled (or moved on) while we asked: a regular poll may have seen the
            # cancel take effect first, which is still this cancel's doing.
            return accepted and handle.state is JobState.CANCELLED
        if status is not None and status.state.is_terminal:
            if status.state is JobState.CANCELLED and accepted:
                return self._cancelled(handle)
            if not record.needs_more(status):
                self._resolve(handle, status)
            return False
        if accepted:
            return self._cancelled(handle)
        error = PollError(
            f"the server refused to cancel: HTTP {code}; received {excerpt(response.content)}; "
            f"the job is still {record.state.value} and is still polled",
            job_id=handle.job_id,
            url=shown,
            http_status=code,
            status=record.status,
        )
        error.response = response
        raise error

    def _cancelled(self, handle: JobHandle) -> bool:
        cancelled = self._engine.cancel_job(
            handle, "cancelled on the server at the caller's request"
        )
        if cancelled:
            logger.info("job %r cancelled on the server", handle.job_id)
        return cancelled

    async def read_now(self, handle: JobHandle) -> Status | None:
        """One status read outside the schedule, or None if none could be had."""
        engine = self._engine
        if handle._check is not None:
            try:
                return await call_check(handle)
            except Exception:
                return None
        record = handle._record
        url = record.target
        if url is None:
            return None
        try:
            response, hint = await engine.sender.send_now(
                "the status read",
                "GET",
                url,
                credentials=record.credentials_for(url),
                wanted=lambda: not handle.done(),  # no read for a job settled meanwhile
            )
        except SendFailed:
            return None
        handle._last_response = response
        code = response.status_code
        if 300 <= code < 400 and code != 303:
            return None  # a moved status URL is the worker's to follow, on its schedule
        read = read_status(record, response, hint, engine.rules)
        return read if isinstance(read, Status) else None


def _redirected_home(response: Response, url: str, method: str) -> bool:
    """A 302/303 answering a cancel that is not a GET, to the job's own origin: the usual
    "done, now look here" (Jenkins' stop). One to another origin (a login page) is not."""
    if response.status_code not in (302, 303) or method == "GET":
        return False
    location = response.headers.get("location")
    return bool(location) and same_origin(urljoin(url, location), url)


def _carries_outcome(status: Status) -> bool:
    """Whether a terminal status read from a create answer says how the job ended."""
    if status.state is JobState.SUCCEEDED:
        if status.result_url is not None:
            return True
        return status.result is not None and status.result is not status.raw
    if status.state is JobState.FAILED:
        return status.error is not None
    return True


def create_request(
    method: str,
    url: str,
    json: Any,
    data: Any,
    content: bytes | str | None,
    headers: Mapping[str, str] | None,
    idempotency_key: bool | str = False,
) -> CreateRequest:
    """A create request as ``submit()`` was given it, kept to send again.

    ``idempotency_key``: True for a new UUID, a string for that key; a key already in
    ``headers`` is kept.
    """
    given = dict(headers or {})
    key = next(
        (value for name, value in given.items() if name.lower() == IDEMPOTENCY_HEADER.lower()),
        None,
    )
    if key is None and idempotency_key is not False:
        if isinstance(idempotency_key, str):
            if not idempotency_key:
                raise ValueError("idempotency_key must be True, False or a non-empty string")
            key = idempotency_key
        elif idempotency_key is True:
            key = str(uuid.uuid4())
        else:
            raise TypeError(
                f"idempotency_key must be True, False or a string, got {idempotency_key!r}"
            )
    return CreateRequest(method.upper(), url, json, data, content, given, key)
