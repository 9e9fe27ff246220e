"""A job as JSON: what a store keeps and what a resume token carries (never pickle).

``encode()`` turns a job (its ``JobRecord``, the handle's metadata and named functions)
into a dict of JSON values; ``decode()`` checks such a dict field by field and builds a
``Decoded``: the record's fields and the names to look up. A document may come from an
untrusted place (a resume token in a request), so ``decode()`` trusts nothing: each
field has its type checked, URLs must be http(s), numbers finite, and a wrong field is
reported by name (``TokenError``).

Times: the engine's records hold times on the poller's monotonic clock; a document holds
wall-clock epoch seconds (``offset`` = wall - monotonic, at encoding and at decoding),
so that a due time means the same in another process.

Callables cannot be stored: ``check=``, ``on_done=``, ``on_progress=`` and schedules
other than ``fixed()``/``backoff()`` are stored by the name they were registered under
(``TaskPoller(named={...})``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from ._errors import AsyncPollError, JobCancelled, JobFailed, JobStalled, JobTimeout, PollError
from ._record import NO_BODY, JobRecord, Submission
from ._schedule import Backoff, Fixed, Schedule
from ._status import JobState, Status
from ._submit import CreateRequest

__all__ = [
    "DOC_VERSION",
    "TOKEN_KIND",
    "Decoded",
    "TokenError",
    "decode",
    "encode",
    "error_from",
    "error_to",
    "from_json",
    "to_json",
]

#: The version of the document format; a document of another version is refused.
DOC_VERSION: Final = 1
#: The ``kind`` field of a resume token.
TOKEN_KIND: Final = "asyncpoll.resume-token"

_ACTIONS = ("poll", "fetch", "resubmit")


class TokenError(ValueError):
    """A stored job or a resume token that cannot be read; the message names the field."""


# ----------------------------------------------------------------- plain values


_PLAIN = (str, int, float, bool, type(None))


def to_json(value: Any) -> Any:
    """``value`` as JSON values: bytes as ``{"$bytes": base64}``; raises TypeError (or
    ValueError: NaN, infinity) for anything JSON cannot hold."""
    if isinstance(value, _PLAIN) and not (isinstance(value, float) and not math.isfinite(value)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    try:
        json.dumps(value, allow_nan=False)  # raises for what cannot be kept as it is
        return value
    except TypeError:
        pass

    def default(obj: Any) -> Any:
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii")}
        raise TypeError(f"{type(obj).__name__} is not JSON")

    return json.loads(json.dumps(value, default=default, allow_nan=False))


def from_json(value: Any) -> Any:
    """The inverse of ``to_json`` at the top level (``{"$bytes": ...}`` -> bytes)."""
    if isinstance(value, dict) and set(value) == {"$bytes"} and isinstance(value["$bytes"], str):
        return base64.b64decode(value["$bytes"])
    return value


# ----------------------------------------------------------------- errors and statuses


def status_to(status: Status | None) -> dict[str, Any] | None:
    if status is None:
        return None
    doc: dict[str, Any] = {"state": status.state.value}
    if status.progress is not None:
        doc["progress"] = status.progress
    if status.error is not None:
        doc["error"] = status.error
    if status.http_status is not None:
        doc["http_status"] = status.http_status
    if status.result_url is not None:
        doc["result_url"] = status.result_url
    return doc


def error_to(exc: BaseException | None) -> dict[str, Any] | None:
    """What is kept of a job's exception: its type, message and fields."""
    if exc is None:
        return None
    status = getattr(exc, "status", None)
    doc: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": exc.message if isinstance(exc, PollError) else str(exc),
        "status": status_to(status if isinstance(status, Status) else None),
    }
    if isinstance(exc, JobTimeout):
        doc["timeout"] = exc.timeout
    if isinstance(exc, JobCancelled):
        doc["reason"] = exc.reason
    if isinstance(exc, PollError):
        doc["url"] = exc.url
        doc["http_status"] = exc.http_status
    return doc


def error_from(doc: Mapping[str, Any] | None, job_id: str) -> AsyncPollError | None:
    """The exception ``error_to`` kept, rebuilt as its own class (``PollError`` for
    others)."""
    if doc is None:
        return None
    where = "error"
    kind = _text(doc, "type", where)
    message = _text(doc, "message", where)
    status = _status(doc.get("status"), f"{where}.status")
    if kind == "JobFailed" and status is not None:
        return JobFailed(job_id, status)
    if kind in ("JobTimeout", "JobStalled"):
        timeout = _number(doc, "timeout", where)
        cls = JobStalled if kind == "JobStalled" else JobTimeout
        return cls(job_id, timeout, status)
    if kind == "JobCancelled":
        return JobCancelled(job_id, _text(doc, "reason", where), status)
    url = doc.get("url")
    http_status = doc.get("http_status")
    return PollError(
        message,
        job_id=job_id,
        url=url if isinstance(url, str) else None,
        http_status=http_status if isinstance(http_status, int) else None,
        status=status,
    )


# ----------------------------------------------------------------- the job document


@attrs.define
class Decoded:
    """A job document, checked: the record, the names to look up, the outcome."""

    record: JobRecord
    due: float  # on the poller's clock
    metadata: dict[str, Any] | None
    check: str | None
    on_done: str | None
    on_progress: str | None
    result: Any = None
    error: dict[str, Any] | None = None


def _name_of(value: Any, names: Mapping[int, str], what: str, job_id: str) -> str | None:
    if value is None:
        return None
    name = names.get(id(value))
    if name is None:
        raise ValueError(
            f"job {job_id!r}: {what}={value!r} cannot be stored; register it by name: "
            f"TaskPoller(named={{'my-name': ...}}) and pass {what}='my-name' (or the "
            "registered object)"
        )
    return name


def schedule_to(schedule: Schedule, names: Mapping[int, str], job_id: str) -> dict[str, Any]:
    if type(schedule) is Fixed:
        return {"fixed": {"interval": schedule.interval, "first": schedule.first}}
    if type(schedule) is Backoff:
        return {"backoff": attrs.asdict(schedule)}
    name = _name_of(schedule, names, "schedule", job_id)
    return {"name": name}


def encode(
    record: JobRecord,
    *,
    due: float,
    offset: float,
    metadata: Mapping[str, Any] | None = None,
    check: Any = None,
    on_done: Any = None,
    on_progress: Any = None,
    names: Mapping[int, str] | None = None,
    result: Any = None,
    error: BaseException | None = None,
    headers: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
    state: JobState | None = None,
) -> dict[str, Any]:
    """The job as JSON values.

    Args:
        due: when its next request is due (poller's clock; for a finished job: when it
            finished).
        offset: wall-clock minus poller's clock, now.
        names: ``id(obj) -> name`` of the poller's named objects.
        result, error: a finished job's outcome.
        headers: filters the create request's headers (a resume token keeps only those
            the caller allows); None keeps them all (a store is the poller's own).
        state: the state to write (default: the record's): a change queued while the
            job was live is written as it was, even if the job finished since.

    Raises:
        ValueError: a callable or a value that cannot be stored (named in the message).
    """
    names = names or {}
    job_id = record.job_id
    state = record.state if state is None else state

    def wall(t: float | None) -> float | None:
        return None if t is None else t + offset

    create = record.create
    create_doc = None
    if create is not None:
        create_doc = {
            "method": create.method,
            "url": create.url,
            "json": _value(create.json, "create json", job_id),
            "data": _value(create.data, "create data", job_id),
            "content": _value(create.content, "create content", job_id),
            "headers": dict(create.headers if headers is None else headers(create.headers)),
            "idempotency_key": create.idempotency_key,
        }
    doc: dict[str, Any] = {
        "v": DOC_VERSION,
        "job_id": job_id,
        "url": record.url,
        "target": record.target,
        "origin": record.origin,
        "schedule": schedule_to(record.schedule, names, job_id),
        "timeout": record.timeout,
        "deadline": wall(record.deadline),
        "due": wall(due),
        "action": record.action,
        "fetch_url": record.fetch_url,
        "fetch_result": record.fetch_result,
        "create": create_doc,
        "resubmits_left": record.resubmits_left,
        "submissions": [[s.job_id, s.url, s.http_status] for s in record.submissions],
        "cancel_url": record.cancel_url,
        "cancel_method": record.cancel_method,
        "stall_timeout": record.stall_timeout,
        "attempts": record.attempts,
        "errors": record.errors,
        "throttles": record.throttles,
        "redirects": record.redirects,
        "state": state.value,
        "status": status_to(record.status),
        "changed_at": wall(record.changed_at),
        "added_at": wall(record.added_at),
        "stalled": record.stalled,
        "metadata": _value(dict(metadata), "metadata", job_id) if metadata else None,
        "check": _name_of(check, names, "check", job_id),
        "on_done": _name_of(on_done, names, "on_done", job_id),
        "on_progress": _name_of(on_progress, names, "on_progress", job_id),
    }
    if record.cancel_json is not NO_BODY:
        doc["cancel_json"] = _value(record.cancel_json, "cancel_json", job_id)
    if state not in (JobState.PENDING, JobState.RUNNING):
        doc["finished_at"] = wall(due)
        try:
            doc["result"] = to_json(result)
        except (TypeError, ValueError):
            doc["result"] = {"$repr": repr(result)}  # kept as text: JSON cannot hold it
        doc["error"] = error_to(error)
    return doc


def _value(value: Any, what: str, job_id: str) -> Any:
    try:
        return to_json(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job {job_id!r}: its {what} cannot be stored as JSON: {exc}") from None


# ----------------------------------------------------------------- decoding (untrusted)


def _field(doc: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in doc:
        raise TokenError(f"{where}: field {name!r} is missing")
    return doc[name]


def _text(doc: Mapping[str, Any], name: str, where: str, *, none: bool = False) -> Any:
    value = _field(doc, name, where)
    if value is None and none:
        return None
    if not isinstance(value, str):
        raise TokenError(f"{where}: field {name!r} must be text, got {value!r:.80}")
    return value


def _number(doc: Mapping[str, Any], name: str, where: str, *, none: bool = False) -> Any:
    value = _field(doc, name, where)
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenError(f"{where}: field {name!r} must be a finite number, got {value!r:.80}")
    return float(value)


def _count(doc: Mapping[str, Any], name: str, where: str) -> int:
    value = _field(doc, name, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TokenError(f"{where}: field {name!r} must be a whole number >= 0, got {value!r:.80}")
    return value


def _method(doc: Mapping[str, Any], name: str, where: str, *, none: bool = False) -> Any:
    value = _text(doc, name, where, none=none)
    if value is not None and not (value.isascii() and value.isalpha()):
        raise TokenError(f"{where}: field {name!r} must be an HTTP method, got {value!r:.80}")
    return None if value is None else value.upper()


def _seconds(doc: Mapping[str, Any], name: str, where: str) -> float | None:
    value = _number(doc, name, where, none=True)
    if value is not None and value <= 0:
        raise TokenError(f"{where}: field {name!r} must be > 0 seconds or null, got {value!r}")
    result: float | None = value
    return result


def _url(doc: Mapping[str, Any], name: str, where: str, *, relative: bool = False) -> str | None:
    """An http(s) URL; ``relative``: a path (relative to a client's base URL) too."""
    value: str | None = _text(doc, name, where, none=True)
    if value is None or value.lower().startswith(("http://", "https://")):
        return value
    if relative and value.startswith("/") and not value.startswith("//"):
        return value
    kind = "an http(s) URL or a path" if relative else "an http(s) URL"
    raise TokenError(f"{where}: field {name!r} must be {kind}, got {value!r:.80}")


def _status(value: Any, where: str) -> Status | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TokenError(f"{where} must be an object, got {value!r:.80}")
    try:
        state = JobState(_text(value, "state", where))
        progress = value.get("progress")
        http_status = value.get("http_status")
        return Status(
            state,
            progress=None if progress is None else _number(value, "progress", where),
            error=_text(value, "error", where) if "error" in value else None,
            http_status=http_status if isinstance(http_status, int) else None,
            result_url=_url(value, "result_url", where) if "result_url" in value else None,
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, TokenError):
            raise
        raise TokenError(f"{where}: {exc}") from None


def schedule_from(value: Any, named: Mapping[str, Any], where: str) -> Schedule:
    if not isinstance(value, dict) or len(value) != 1:
        raise TokenError(
            f"{where}: field 'schedule' must be an object of one key, got {value!r:.80}"
        )
    ((kind, params),) = value.items()
    try:
        if kind == "fixed" and isinstance(params, dict):
            return Fixed(**params)
        if kind == "backoff" and isinstance(params, dict):
            return Backoff(**params)
    except (TypeError, ValueError) as exc:
        raise TokenError(f"{where}: field 'schedule': {exc}") from None
    if kind == "name" and isinstance(params, str):
        schedule = named.get(params)
        if schedule is None or not callable(getattr(schedule, "delay", None)):
            raise LookupError(params)
        return schedule  # type: ignore[no-any-return]
    raise TokenError(f"{where}: field 'schedule' is not a schedule: {value!r:.80}")


def decode(doc: Any, *, offset: float, named: Mapping[str, Any], where: str = "job") -> Decoded:
    """Check a job document and build its record.

    Raises:
        TokenError: a field is missing or wrong (named in the message), or the version
            is not ``DOC_VERSION``.
        LookupError: a named schedule is not registered (its name is the argument).
    """
    if not isinstance(doc, dict):
        raise TokenError(f"{where} must be a JSON object, got {doc!r:.80}")
    version = doc.get("v")
    if version != DOC_VERSION:
        raise TokenError(
            f"{where} is of format version {version!r}; this asyncpoll reads version "
            f"{DOC_VERSION} (a newer asyncpoll wrote it?)"
        )
    job_id = _text(doc, "job_id", where)
    if not job_id:
        raise TokenError(f"{where}: field 'job_id' must not be empty")
    action = _text(doc, "action", where)
    if action not in _ACTIONS:
        raise TokenError(f"{where}: field 'action' must be one of {_ACTIONS}, got {action!r:.80}")
    try:
        state = JobState(_text(doc, "state", where))
    except ValueError:
        raise TokenError(
            f"{where}: field 'state' is not a job state: {doc['state']!r:.80}"
        ) from None

    def mono(name: str) -> float | None:
        value = _number(doc, name, where, none=True)
        return None if value is None else value - offset

    create = None
    create_doc = _field(doc, "create", where)
    if create_doc is not None:
        if not isinstance(create_doc, dict):
            raise TokenError(f"{where}: field 'create' must be an object")
        headers = _field(create_doc, "headers", f"{where}.create")
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise TokenError(f"{where}.create: field 'headers' must map text to text")
        content = from_json(create_doc.get("content"))
        create = CreateRequest(
            _method(create_doc, "method", f"{where}.create"),
            _url(create_doc, "url", f"{where}.create", relative=True) or "",
            json=create_doc.get("json"),
            data=create_doc.get("data"),
            content=content if isinstance(content, (bytes, str)) else None,
            headers=headers,
            idempotency_key=_text(create_doc, "idempotency_key", f"{where}.create", none=True),
        )
    submissions = _field(doc, "submissions", where)
    if not isinstance(submissions, list) or not all(
        isinstance(s, list)
        and len(s) == 3
        and isinstance(s[0], str)
        and isinstance(s[1], str)
        and isinstance(s[2], int)
        for s in submissions
    ):
        raise TokenError(f"{where}: field 'submissions' must be a list of [id, url, status]")
    metadata = _field(doc, "metadata", where)
    if metadata is not None and not isinstance(metadata, dict):
        raise TokenError(f"{where}: field 'metadata' must be an object or null")
    stalled = _field(doc, "stalled", where)
    fetch_result = _field(doc, "fetch_result", where)
    if not isinstance(stalled, bool) or not isinstance(fetch_result, bool):
        raise TokenError(f"{where}: fields 'stalled' and 'fetch_result' must be true or false")
    deadline = mono("deadline")
    due = mono("due")
    changed_at = mono("changed_at")
    added_at = mono("added_at")
    record = JobRecord(
        job_id,
        _url(doc, "url", where, relative=True),
        schedule_from(_field(doc, "schedule", where), named, where),
        _seconds(doc, "timeout", where),
        deadline,
        target=_url(doc, "target", where),
        origin=_url(doc, "origin", where),
        action=action,
        fetch_url=_url(doc, "fetch_url", where),
        fetch_result=fetch_result,
        create=create,
        resubmits_left=_count(doc, "resubmits_left", where),
        submissions=tuple(Submission(a, b, c) for a, b, c in submissions),
        cancel_url=_url(doc, "cancel_url", where),
        cancel_method=_method(doc, "cancel_method", where, none=True),
        cancel_json=doc.get("cancel_json", NO_BODY),
        stall_timeout=_seconds(doc, "stall_timeout", where),
        attempts=_count(doc, "attempts", where),
        errors=_count(doc, "errors", where),
        throttles=_count(doc, "throttles", where),
        redirects=_count(doc, "redirects", where),
        state=state,
        status=_status(_field(doc, "status", where), f"{where}.status"),
        changed_at=0.0 if changed_at is None else changed_at,
        stalled=stalled,
        added_at=0.0 if added_at is None else added_at,
    )
    if record.action == "resubmit" and record.create is None:
        raise TokenError(f"{where}: action 'resubmit' needs a 'create' request")
    if record.action == "fetch" and record.fetch_url is None:
        raise TokenError(f"{where}: action 'fetch' needs a 'fetch_url'")
    if record.url is None and _text(doc, "check", where, none=True) is None:
        raise TokenError(f"{where}: a job needs a 'url' or a 'check' name")
    error = doc.get("error")
    if error is not None and not isinstance(error, dict):
        raise TokenError(f"{where}: field 'error' must be an object or null")
    return Decoded(
        record,
        0.0 if due is None else due,
        metadata,
        _text(doc, "check", where, none=True),
        _text(doc, "on_done", where, none=True),
        _text(doc, "on_progress", where, none=True),
        result=from_json(doc.get("result")),
        error=error,
    )
