"""Readers: how an HTTP response becomes a ``Status``. Pure functions of a response.

A reader is any callable ``(Response) -> Status``. The engine hands it every 2xx
response. A reader signals trouble by raising:

- ``PollError``: the response can never be read; the job ends ERRORED at once.
- any other exception (``ValueError`` for a body it cannot parse): a transient failure,
  counted against the job's ``max_errors`` budget, its message kept for the final error.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from ._errors import PollError
from ._httpdate import parse_http_date
from ._response import Response, excerpt
from ._status import JobState, Status

__all__ = [
    "DEFAULT_STATES",
    "DefaultReader",
    "Reader",
    "parse_retry_after",
    "progress_fraction",
    "retry_after_of",
    "unknown_state",
]

logger = logging.getLogger("asyncpoll")


class Reader(Protocol):
    """Anything that turns a 2xx ``Response`` into a ``Status``: a function or an object.

    Raise ``PollError`` for a response that can never be read (the job ends ERRORED at
    once); any other exception is a transient failure counted against ``max_errors``.
    """

    def __call__(self, response: Response, /) -> Status:
        """Read one response."""
        ...


#: The state words the default reader knows, lower case.
DEFAULT_STATES: Mapping[str, JobState] = {
    **dict.fromkeys(
        ["pending", "queued", "queuing", "waiting", "created", "delayed", "submitted"],
        JobState.PENDING,
    ),
    **dict.fromkeys(
        [
            "running",
            "processing",
            "active",
            "in_progress",
            "started",
            "generating",
            "validating",
            "finalizing",
        ],
        JobState.RUNNING,
    ),
    **dict.fromkeys(
        ["completed", "complete", "succeeded", "success", "done", "finished"],
        JobState.SUCCEEDED,
    ),
    **dict.fromkeys(["failed", "failure", "fail", "error", "expired"], JobState.FAILED),
    **dict.fromkeys(["cancelled", "canceled"], JobState.CANCELLED),
}

_STATE_KEYS = ("status", "state")
_LINK_KEYS = ("resultUrl", "result_url", "result_urls", "resultUrls")
_LINK_KEY_SET = frozenset(_LINK_KEYS)
_MAX_UNKNOWN_LOGGED = 100  # distinct unknown state words warned about per reader
_ERROR_KEYS = ("error", "failMsg", "message")


def parse_retry_after(value: str | None, *, now: float, date: str | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, or None when absent or unusable.

    ``0`` (or a date equal to the reference) is a valid 0 s. A negative delta, a date
    already past, garbage, NaN and infinity are unusable: None, not 0 s, so the caller
    applies its own default (the engine's pause on a 429) instead of none at all.

    Reads no clock: an HTTP-date is measured against the response's ``Date`` header when
    it has one (the server's clock), else against ``now``.

    Args:
        value: the header's value: delta-seconds or an HTTP-date.
        now: the current wall-clock time in epoch seconds (the engine passes its
            clock's wall time), the reference for an HTTP-date without ``Date``.
        date: the response's ``Date`` header.
    """
    return _retry_after(value, date, now)


def _retry_after(value: str | None, date: str | None, now: float | None) -> float | None:
    """``parse_retry_after``; with ``now`` None an HTTP-date without ``Date`` is None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = parse_http_date(value)
        ref = parse_http_date(date) if date else now
        if when is None or ref is None:
            return None
        seconds = when - ref
    if not (math.isfinite(seconds) and seconds >= 0.0):
        return None  # garbage, NaN, infinity, a negative delta or a date already past
    return seconds + 0.0  # -0.0 reads as 0.0


def number(value: Any) -> float | None:
    """A finite float from a JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return value if math.isfinite(value) else None


def progress_fraction(value: Any) -> float | None:
    """A progress fraction from a number or a ``{done|processed_*, total*}`` object."""
    if type(value) is not float and type(value) is not int and isinstance(value, Mapping):
        done = total = None
        for key, item in value.items():
            key_l = str(key).lower()
            if key_l == "done" or key_l == "processed" or key_l.startswith("processed_"):
                done = number(item)
            elif key_l.startswith("total"):
                total = number(item)
        if done is None or not total or total <= 0:
            return None
        return min(1.0, max(0.0, done / total))
    amount = number(value)
    if amount is None:
        return None
    # A float no greater than 1 is already a fraction; anything else is a percentage.
    fraction = amount if isinstance(value, float) and amount <= 1.0 else amount / 100.0
    return min(1.0, max(0.0, fraction))


def _text(value: Any) -> str | None:
    """Error text from a string or an ``{"message": ...}`` object."""
    if isinstance(value, Mapping):
        value = value.get("message") or value.get("msg") or value.get("detail")
    return value if isinstance(value, str) and value else None


def _word(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _find(
    scopes: tuple[Mapping[str, Any], ...], keys: tuple[str, ...], convert: Callable[[Any], Any]
) -> Any:
    """The first readable value under one of ``keys``, top level first, else None."""
    for scope in scopes:
        for key in keys:
            if key in scope:
                value = convert(scope[key])
                if value is not None:
                    return value
    return None


def _links(value: Any) -> list[str] | None:
    """Result links from a URL string or a list of them."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        links = [item for item in value if isinstance(item, str) and item]
        return links or None
    return None


def _result(scopes: tuple[Mapping[str, Any], ...], body: Any, link_field: Any) -> Any:
    """A succeeded job's result: ``result``, else parsed ``resultJson``, else its link(s)."""
    for scope in scopes:
        if "result" in scope:
            return scope["result"]
    for scope in scopes:
        if "resultJson" in scope:
            text = scope["resultJson"]
            if not isinstance(text, str):
                return text
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError(
                    f"'resultJson' does not hold JSON text ({exc}); received {excerpt(text)}"
                ) from exc
    return body if link_field is None else link_field


def unknown_state(
    word: str,
    response: Response,
    *,
    strict: bool,
    seen: set[str],
    fix: str,
    place: str = "",
    warn_fix: bool = False,
) -> JobState:
    """What a state word no reader list knows means: RUNNING (warned once) or an error.

    Args:
        strict: raise ``PollError`` instead of reading the word as running.
        seen: the words already warned about (bounded, so a server inventing a new word
            per poll cannot grow it forever).
        fix: what the user can do, for the message.
        place: where the word was, such as `` at 'data.state'``.
        warn_fix: put ``fix`` in the warning too.
    """
    if strict:
        raise PollError(
            f"the server reported state {word!r}{place}, which this reader does not know ({fix})",
            http_status=response.status_code,
        )
    key = word.lower()
    if key not in seen and len(seen) < _MAX_UNKNOWN_LOGGED:
        seen.add(key)
        logger.warning(
            "unknown job state %r%s from %s; treating it as running%s",
            word,
            place,
            response.url,
            f" ({fix})" if warn_fix else "",
        )
    return JobState.RUNNING


def retry_after_of(response: Response) -> float | None:
    """Seconds the response's ``Retry-After`` header asks to wait, or None.

    A reader is a pure function of the response and reads no clock, so an HTTP-date is
    measured against the response's ``Date`` header only; without one it gives None
    here. The engine reads the same header itself against its clock's wall time
    (``_policy.header_hint``) and waits for the longer of the two hints.
    """
    headers = response.headers
    return _retry_after(headers.get("retry-after"), headers.get("date"), None)


class DefaultReader:
    """Reads the JSON job-status bodies most job APIs answer with.

    The state comes from ``status`` or ``state``, at the top level or inside a ``data``
    object, matched case-insensitively against ``states`` (``DEFAULT_STATES`` plus any
    you add). Progress comes from ``progress`` (a percentage, a fraction when it is a
    float <= 1, or a ``{done|processed_*, total*}`` object); a failed job's error text
    from ``error``, ``error.message``, ``failMsg`` or ``message``; a succeeded job's
    result is its ``result`` field, else the whole parsed body.

    Args:
        states: extra or overriding state words (any case) and the states they mean.
        unknown: what a state word it does not know means: ``"running"`` (the default:
            keep polling, log a warning once per word; the job's timeout bounds it) or
            ``"error"`` (end the job at once with a ``PollError``).
    """

    __slots__ = ("_seen_unknown", "states", "unknown")

    def __init__(
        self,
        *,
        states: Mapping[str, JobState] | None = None,
        unknown: Literal["running", "error"] = "running",
    ) -> None:
        if unknown not in ("running", "error"):
            raise ValueError(
                f"DefaultReader(unknown=) must be 'running' or 'error', got {unknown!r}"
            )
        merged = dict(DEFAULT_STATES)
        for word, state in (states or {}).items():
            if not isinstance(state, JobState):
                raise TypeError(
                    f"DefaultReader(states=): {word!r} maps to {state!r}, not a JobState"
                )
            merged[word.lower()] = state
        self.states: Mapping[str, JobState] = merged
        self.unknown = unknown
        self._seen_unknown: set[str] = set()

    def __call__(self, response: Response) -> Status:
        """Read one 2xx response; raises ``ValueError`` when the body has no state."""
        body = response.json()
        if type(body) is not dict and not isinstance(body, Mapping):
            raise ValueError(
                f"expected a JSON object with a status, received {excerpt(response.content)}"
            )
        data = body.get("data")
        scopes = (body,) if data is None or not isinstance(data, Mapping) else (body, data)
        word = _find(scopes, _STATE_KEYS, _word)
        if word is None:
            raise ValueError(
                "no job state in the response (looked for 'status' or 'state', at the top "
                f"level and inside 'data'); received {excerpt(response.content)}"
            )
        state = self.states.get(word.lower())
        if state is None:
            state = self._unknown(word, response)
        progress = _find(scopes, ("progress",), progress_fraction)
        result = error = result_url = None
        link_field = None
        if not _LINK_KEY_SET.isdisjoint(body) or len(scopes) > 1:  # skip the search if none
            link_field = _find(scopes, _LINK_KEYS, lambda value: value if _links(value) else None)
            links = _links(link_field)
            result_url = links[0] if links else None
        if state is JobState.SUCCEEDED:
            result = _result(scopes, body, link_field)
            progress = 1.0
        elif state in (JobState.FAILED, JobState.CANCELLED):
            # Error text comes first from where the state was: in an envelope the job's
            # own text wins over the envelope's message about the API call
            # ({"message": "success", "data": {"state": "fail", "failMsg": ...}}).
            in_data = _find(scopes[:1], _STATE_KEYS, _word) is None
            error = _find(scopes[::-1] if in_data else scopes, _ERROR_KEYS, _text)
        return Status(
            state=state,
            progress=progress,
            result=result,
            error=error,
            retry_after=retry_after_of(response) if "retry-after" in response.headers else None,
            http_status=response.status_code,
            raw=body,
            result_url=result_url,
        )

    def _unknown(self, word: str, response: Response) -> JobState:
        return unknown_state(
            word,
            response,
            strict=self.unknown == "error",
            seen=self._seen_unknown,
            fix="map it with DefaultReader(states={...})",
            warn_fix=True,
        )

    def __repr__(self) -> str:
        return f"DefaultReader(unknown={self.unknown!r})"
