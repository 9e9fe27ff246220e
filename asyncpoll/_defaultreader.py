"""``DefaultReader``: the JSON status documents of the job systems people run.

Pure: a function of one response (or one parsed document). How it reads a document:

1. **The state.** The first of, in order:

   - a ``status``, ``state`` or ``phase`` field at the top level or inside ``data``: a
     word, or an object holding one under ``type``, ``state``, ``status``, ``phase`` or
     ``name`` (Prefect's ``state.type``, Argo's ``status.phase``);
   - a boolean ``done`` (Google's long-running operations) or ``building`` (Jenkins);
   - any field whose name ends in ``status`` or ``state`` (AWS's ``JobStatus``,
     ``TranscriptionJobStatus``, ``JobRunState``), any case, at the top level, inside
     ``data`` or one level down in a wrapper object or a one-item list (``{"jobs":
     [{...}]}``);
   - a Google operation still running (it omits ``done`` until it is done).

   A word is matched after normalising case and separators (``_vocab``).

2. **The outcome.** Beside a word that says the job succeeded, a ``conclusion`` or
   ``outcome`` field decides (GitHub's ``completed`` + ``failure`` is a failure);
   beside a word that says only that the job ended (``completed``, ``done``...), or
   Jenkins' ``building: false``, so does a ``result`` that is itself a state word.

3. **The error text** of a failed or cancelled job: the first text under ``_ERROR_KEYS``
   (any case), where the state was first, then the state object's ``message``, a text
   ``result``, ``exception``. With no text, a word that is not plain "failed" or
   "cancelled" stands in (``"conclusion 'timed_out'"``).

4. **The result** of a succeeded job: ``result``, ``resultJson`` (parsed), ``response``
   (a Google operation's), ``output`` (Replicate's; JSON text parsed), the result
   link(s), else the whole document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from ._reader import progress_fraction, retry_after_of, unknown_state
from ._response import Response, excerpt
from ._status import JobState, Status
from ._vocab import DEFAULT_STATES, GENERIC_DONE, PLAIN_ENDS, normalise, state_of, word_table

__all__ = ["DefaultReader"]

logger = logging.getLogger("asyncpoll")

_STATE_KEYS = ("status", "state", "phase")
# Where a word sits inside a state object, in order: Prefect's state has both a
# ``type`` (COMPLETED) and a ``name`` (which may be "Late" or "Cached"): the type wins.
_NESTED_KEYS = ("type", "state", "status", "phase", "name")
_OUTCOME_KEYS = ("conclusion", "outcome")
_OUTCOME_KEY_SET = frozenset(_OUTCOME_KEYS)
_PROGRESS_KEYS = (
    "progress",
    "percentComplete",
    "percentCompleted",
    "percent_complete",
    "progressPercent",
    "jobPercentComplete",
)
_PROGRESS_KEY_SET = frozenset(_PROGRESS_KEYS)
# A field such as SageMaker's TrainingJobStatus wins over its SecondaryStatus.
_JOB_SUFFIXES = ("jobstatus", "jobstate", "jobrunstate", "executionstatus")
_LINK_KEYS = ("resultUrl", "result_url", "result_urls", "resultUrls", "resourceLocation")
_LINK_KEY_SET = frozenset(_LINK_KEYS)
#: Fields holding a failed job's error text, matched after normalising (any case).
_ERROR_KEYS = tuple(
    normalise(key)
    for key in (
        "error",
        "errors",
        "failMsg",
        "failedReason",
        "failureReason",
        "statusReason",
        "errorMessage",
        "cause",
        "message",
        "reason",
        "detail",
        "traceback",
        "exc_info",
    )
)
_NOT_WRAPPERS = frozenset({"error", "errors", "data"})
_CANCELLED_CODE = 1  # google.rpc.Code.CANCELLED, in a done operation's error


_Scopes = tuple[tuple[Mapping[str, Any], str], ...]  # objects to look in, with their paths


class _Found(NamedTuple):
    """Where the state was found."""

    word: str | None  # the word as sent; None for a boolean or a running operation
    state: JobState | None  # the state, when it did not come from a word
    place: str  # the field, for messages: "state.type", "done"
    scope: Mapping[str, Any]  # the object holding the field
    holder: Mapping[str, Any] | None  # a state object ({"type": ..., "message": ...})


def _nested(value: Mapping[str, Any], depth: int = 0) -> tuple[str, str, Mapping[str, Any]] | None:
    """A word inside a state object: (word, key path, the object holding it)."""
    for key in _NESTED_KEYS:
        item = value.get(key)
        if item is None:
            item = next(
                (v for k, v in value.items() if isinstance(k, str) and k.lower() == key), None
            )
        if isinstance(item, str) and item:
            return item, key, value
        if isinstance(item, Mapping) and depth == 0:
            inner = _nested(item, 1)
            if inner is not None:
                return inner[0], f"{key}.{inner[1]}", inner[2]
    return None


def _at(scope: Mapping[str, Any], key: str, value: Any, prefix: str) -> _Found | None:
    """A state word held by ``scope[key]``: a word, or a state object holding one."""
    if isinstance(value, str):
        return _Found(value, None, prefix + key, scope, None) if value else None
    if isinstance(value, Mapping):
        inner = _nested(value)
        if inner is not None:
            return _Found(inner[0], None, f"{prefix}{key}.{inner[1]}", scope, inner[2])
    return None


def _exact(scopes: _Scopes) -> _Found | None:
    for scope, prefix in scopes:
        for key in _STATE_KEYS:
            if key in scope:
                found = _at(scope, key, scope[key], prefix)
                if found is not None:
                    return found
    return None


def _suffixed(scope: Mapping[str, Any], prefix: str) -> _Found | None:
    """A field named like ``JobStatus`` or ``Status`` (any case) holding a state; one
    named for the job (``TrainingJobStatus``) before others (``SecondaryStatus``)."""
    later = []
    for key, value in scope.items():
        lowered = key.lower() if isinstance(key, str) else ""
        if lowered.endswith(_JOB_SUFFIXES):
            found = _at(scope, key, value, prefix)
            if found is not None:
                return found
        elif lowered.endswith(("status", "state", "phase")):
            later.append((key, value))
    for key, value in later:
        found = _at(scope, key, value, prefix)
        if found is not None:
            return found
    return None


def _booleans(scopes: _Scopes) -> _Found | None:
    for scope, prefix in scopes:
        done = scope.get("done")
        if isinstance(done, bool):
            if not done:
                return _Found(None, JobState.RUNNING, prefix + "done", scope, None)
            error = scope.get("error")
            if error:  # an object (Google's), a text or a list
                code = error.get("code") if isinstance(error, Mapping) else None
                state = JobState.CANCELLED if code == _CANCELLED_CODE else JobState.FAILED
                return _Found(None, state, prefix + "done", scope, None)
            return _Found(None, JobState.SUCCEEDED, prefix + "done", scope, None)
        building = scope.get("building")
        if isinstance(building, bool):
            if building:
                return _Found(None, JobState.RUNNING, prefix + "building", scope, None)
            result = scope.get("result")
            if isinstance(result, str) and result:
                return _Found(result, None, prefix + "result", scope, None)
            return _Found(None, JobState.RUNNING, prefix + "building", scope, None)
    return None


def _locate(body: Mapping[str, Any], scopes: _Scopes) -> _Found | None:
    """Where the document says the job's state, or None (see the module's docstring)."""
    found = _exact(scopes) or _booleans(scopes)
    if found is not None:
        return found
    for scope, prefix in scopes:
        found = _suffixed(scope, prefix)
        if found is not None:
            return found
    for key, value in body.items():
        if key in _NOT_WRAPPERS:
            continue
        path = f"{key}."
        if isinstance(value, list) and len(value) == 1:
            value, path = value[0], f"{key}.0."
        if isinstance(value, Mapping):
            found = _suffixed(value, path)
            if found is not None:
                return found
    name = body.get("name")
    if isinstance(name, str) and ("metadata" in body or "operations/" in name):
        # A Google long-running operation omits ``done`` while it is false.
        return _Found(None, JobState.RUNNING, "done", body, None)
    for scope, prefix in scopes:
        for key in _STATE_KEYS:
            if key in scope and scope[key] is None:
                # No state yet (an Airflow task instance not yet scheduled): pending.
                return _Found(None, JobState.PENDING, prefix + key, scope, None)
    return None


def _text(value: Any) -> str | None:
    """Error text from a string, an ``{"message": ...}`` object or a list of them."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        for key in ("message", "msg", "detail", "description", "data"):
            if key in value:
                text = _text(value[key])
                if text is not None:
                    return text
        return None
    if isinstance(value, list) and value:
        return _text(value[0])
    return None


def _keyed(scope: Mapping[str, Any]) -> dict[str, Any]:
    """``scope`` with its keys normalised, for matching any case (``FailureReason``)."""
    return {normalise(key): value for key, value in scope.items() if isinstance(key, str)}


def _error_text(found: _Found, scopes: list[Mapping[str, Any]], outcome: str | None) -> str | None:
    """A failed or cancelled job's error text (see the module's docstring)."""
    keyed = [_keyed(scope) for scope in scopes]
    for fields in keyed:
        for key in _ERROR_KEYS:
            if key in fields and key != outcome:
                text = _text(fields[key])
                if text is not None:
                    cause = fields.get("cause") if key == "error" else None
                    if isinstance(cause, str) and cause and cause != text:
                        # Step Functions: an error code and its cause, e.g.
                        # "States.TaskFailed: the task raised ValueError".
                        return f"{text}: {cause}"
                    return text
    if found.holder is not None:
        text = _text(found.holder.get("message"))
        if text is not None:
            return text
    for key in ("result", "exception"):
        for fields in keyed:
            if key != outcome and isinstance(fields.get(key), str) and fields[key]:
                return str(fields[key])
    return None


def _links(value: Any) -> list[str] | None:
    """Result links from a URL string or a list of them."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        links = [item for item in value if isinstance(item, str) and item]
        return links or None
    return None


def _metadata_progress(body: Mapping[str, Any]) -> Any:
    """A Google operation's ``metadata.progressPercent``, or None."""
    metadata = body["metadata"]
    return metadata.get("progressPercent") if isinstance(metadata, Mapping) else None


def _link_field(scopes: tuple[Mapping[str, Any], ...]) -> Any:
    """The first result link field (a URL or a list of them), top level first, or None."""
    return next(
        (
            scope[key]
            for scope in scopes
            for key in _LINK_KEYS
            if key in scope and _links(scope[key])
        ),
        None,
    )


def _first_link(scopes: tuple[Mapping[str, Any], ...]) -> str | None:
    links = _links(_link_field(scopes))
    return links[0] if links else None


def _find(
    scopes: tuple[Mapping[str, Any], ...], keys: tuple[str, ...], key_set: frozenset[str]
) -> Any:
    """The first value under one of ``keys`` that is not None, top level first."""
    for scope in scopes:
        if key_set.isdisjoint(scope):
            continue
        for key in keys:
            value = scope.get(key)
            if value is not None:
                return value
    return None


def _json_text(text: Any, field: str) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(
            f"{field!r} does not hold JSON text ({exc}); received {excerpt(text)}"
        ) from exc


def _result(
    scopes: tuple[Mapping[str, Any], ...], body: Any, link_field: Any, outcome: str | None
) -> Any:
    """A succeeded job's result (see the module's docstring)."""
    if outcome != "result":
        for scope in scopes:
            if "result" in scope:
                return scope["result"]
    for scope in scopes:
        if "resultJson" in scope:
            return _json_text(scope["resultJson"], "resultJson")
    for scope in scopes:
        if "response" in scope:
            return scope["response"]
    for scope in scopes:
        if "output" in scope:
            output = scope["output"]
            if isinstance(output, str) and output[:1] in ("{", "["):
                try:
                    return json.loads(output)
                except ValueError:
                    return output
            return output
    return body if link_field is None else link_field


class DefaultReader:
    """Reads the JSON status documents of the job systems people run, unconfigured.

    Celery (through Flower), RQ, Ray Jobs, Prefect, Airflow, Azure and Google
    long-running operations, AWS job APIs, OpenAI batches and fine-tuning jobs,
    Replicate, GitHub Actions, Jenkins, Argo Workflows and most hand-written job APIs:
    the state from ``status``, ``state`` or ``phase`` (a word, or an object holding one),
    a boolean ``done``, or a field such as ``JobStatus``; words matched whatever their
    case and separators (``DEFAULT_STATES`` plus any you add); an outcome field
    (``conclusion``) beside a generic "completed"; progress from ``progress`` (a
    percentage, a fraction when it is a float <= 1, ``{done, total}`` or ``"3/4"``); a
    failed job's error text from the fields those systems use (``error``,
    ``error.message``, ``errors[0].message``, ``failMsg``, ``failedReason``,
    ``message``, ``reason``, ``detail``, ``traceback``, ``state.message``...); a
    succeeded job's result from ``result``, ``resultJson``, ``response``, ``output``,
    else the whole document. The module ``asyncpoll._defaultreader`` says it in full;
    ``docs/job-systems.md`` shows each system.

    Args:
        states: extra or overriding state words (any case) and the states they mean.
        unknown: what a state word it does not know means: ``"running"`` (the default:
            keep polling, warn once per word, and again for each job that stalls on
            it; the job's timeout bounds it) or ``"error"`` (end the job at once with
            a ``PollError``).
    """

    __slots__ = ("_seen_unknown", "_table", "states", "unknown")

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
        self._table = word_table(states)
        self._seen_unknown: set[str] = set()

    def __call__(self, response: Response) -> Status:
        """Read one 2xx response; raises ``ValueError`` when the body has no state."""
        body = response.json()
        if type(body) is not dict and not isinstance(body, Mapping):
            raise ValueError(
                f"expected a JSON object with a status, received {excerpt(response.content)}"
            )
        return self._read(body, response)

    def read(self, document: Mapping[str, Any]) -> Status:
        """Read an already parsed status document, such as a dict an SDK returned.

        For ``check=`` functions: ``return reader.read(boto3_client.describe_jobs(...))``.

        Raises:
            TypeError: ``document`` is not a mapping.
            ValueError: it holds no job state.
        """
        if not isinstance(document, Mapping):
            raise TypeError(
                f"DefaultReader.read() takes a mapping (a parsed JSON object), got "
                f"{type(document).__name__}"
            )
        return self._read(document, None)

    def _read(self, body: Mapping[str, Any], response: Response | None) -> Status:
        data = body.get("data")
        plain: tuple[Mapping[str, Any], ...] = (body,)
        scopes: _Scopes = ((body, ""),)
        if data is not None and isinstance(data, Mapping):
            plain, scopes = (body, data), ((body, ""), (data, "data."))
        key = "status"
        word = body.get(key)
        if word is None:
            key = "state"
            word = body.get(key)
            if word is None and len(plain) > 1 and "phase" not in body:
                key = "data.status"
                word = plain[1].get("status")  # an envelope: {"code": 0, "data": {...}}
                if word is None:
                    key = "data.state"
                    word = plain[1].get("state")
        if type(word) is str and word:
            # The common case: a word at the top level, found without a search; and most
            # polls find a job live, with no outcome, error or result to look for.
            live = self._table.get(word)
            if live is JobState.RUNNING or live is JobState.PENDING:
                return self._live(body, live, plain, response)
            scope = plain[1] if key.startswith("data.") else body
            found: _Found | None = _Found(word, None, key, scope, None)
        else:
            found = _locate(body, scopes)
        if found is None:
            what, shown = (
                ("response", excerpt(response.content))
                if response is not None
                else ("document", excerpt(repr(body)))
            )
            raise ValueError(
                f"no job state in the {what} (looked for 'status', 'state' or 'phase', a "
                "boolean 'done', and fields named like 'JobStatus', at the top level, inside "
                f"'data' and one level down); received {shown}"
            )
        state, word, place, outcome, unknown_word = self._state(found, response)
        if state is JobState.FAILED and (
            found.scope.get("isCancelled") is True or found.scope.get("isTerminated") is True
        ):
            state = JobState.CANCELLED  # AWS Batch: a cancelled or terminated job is FAILED
        progress = _find(plain, _PROGRESS_KEYS, _PROGRESS_KEY_SET)
        if progress is None:
            if found.holder is not None:
                progress = found.holder.get("progress")
            elif "metadata" in body:
                progress = _metadata_progress(body)
        progress = progress_fraction(progress) if progress is not None else None
        result = error = result_url = None
        link_field = None
        if not _LINK_KEY_SET.isdisjoint(body) or len(plain) > 1:  # skip the search if none
            link_field = _link_field(plain)
            links = _links(link_field)
            result_url = links[0] if links else None
        if state is JobState.SUCCEEDED:
            result = _result(plain, body, link_field, outcome)
            progress = 1.0
        elif state is JobState.FAILED or state is JobState.CANCELLED:
            # Error text comes first from where the state was: in an envelope the job's
            # own text wins over the envelope's message about the API call
            # ({"message": "success", "data": {"state": "fail", "failMsg": ...}}).
            first = found.scope
            order = [first, *(scope for scope in plain if scope is not first)]
            error = _error_text(found, order, outcome)
            if (
                error is None
                and word is not None
                and (outcome is not None or normalise(word) not in PLAIN_ENDS)
            ):
                error = f"{place} {word!r}"
        headers = response.headers if response is not None else None
        return Status(
            state=state,
            progress=progress,
            result=result,
            error=error,
            retry_after=(
                retry_after_of(response)
                if response is not None and headers is not None and "retry-after" in headers
                else None
            ),
            http_status=response.status_code if response is not None else None,
            raw=body,
            result_url=result_url,
            unknown_word=unknown_word,
        )

    @staticmethod
    def _live(
        body: Mapping[str, Any],
        state: JobState,
        plain: tuple[Mapping[str, Any], ...],
        response: Response | None,
    ) -> Status:
        """A live job's status: its state, progress and any result link."""
        progress = _find(plain, _PROGRESS_KEYS, _PROGRESS_KEY_SET)
        if progress is None and "metadata" in body:
            progress = _metadata_progress(body)
        result_url = None
        if not _LINK_KEY_SET.isdisjoint(body) or len(plain) > 1:
            result_url = _first_link(plain)
        if response is None:
            return Status(state, progress_fraction(progress), raw=body, result_url=result_url)
        return Status(
            state=state,
            progress=progress_fraction(progress) if progress is not None else None,
            retry_after=retry_after_of(response) if "retry-after" in response.headers else None,
            http_status=response.status_code,
            raw=body,
            result_url=result_url,
        )

    def _state(
        self, found: _Found, response: Response | None
    ) -> tuple[JobState, str | None, str, str | None, str | None]:
        """(state, the deciding word, its field, the outcome field used, an unknown word)."""
        if found.word is None:
            assert found.state is not None
            return found.state, None, found.place, None, None
        word, place, scope = found.word, found.place, found.scope
        state = state_of(word, self._table)
        if state is None:
            source = str(response.url) if response is not None else "a document"
            status_code = response.status_code if response is not None else None
            state = unknown_state(
                word,
                source,
                http_status=status_code,
                strict=self.unknown == "error",
                seen=self._seen_unknown,
                fix="map it with DefaultReader(states={...})",
                place=f" at {place!r}" if place not in _STATE_KEYS else "",
                warn_fix=True,
            )
            return state, word, place, None, word
        if "building" in scope and found.holder is None and place.endswith("result"):
            return self._outcome(state, word, place, "result")  # Jenkins: building false
        if state is JobState.SUCCEEDED:
            candidates: tuple[str, ...] = _OUTCOME_KEYS
            if "result" in scope and word.lower() in GENERIC_DONE:  # no separators in these
                candidates = (*_OUTCOME_KEYS, "result")
            elif _OUTCOME_KEY_SET.isdisjoint(scope):
                return state, word, place, None, None  # the common case: nothing to weigh
            for key in candidates:
                value = scope.get(key)
                if isinstance(value, str) and value:
                    decided = state_of(value, self._table)
                    if decided is None or not decided.is_terminal:
                        continue
                    if key == "result" and decided is JobState.SUCCEEDED:
                        break  # {"status": "done", "result": "done"}: a result, kept as one
                    return self._outcome(decided, value, key, key)
        return state, word, place, None, None

    @staticmethod
    def _outcome(
        state: JobState, word: str, place: str, key: str
    ) -> tuple[JobState, str | None, str, str | None, str | None]:
        if not state.is_terminal:
            state = JobState.RUNNING
        return state, word, place, key, None

    def __repr__(self) -> str:
        return f"DefaultReader(unknown={self.unknown!r})"
