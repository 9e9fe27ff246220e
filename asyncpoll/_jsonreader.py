"""``JsonReader``: a declarative reader for job APIs the default reader does not fit.

In the spirit of AWS waiters' acceptors: say where the state word lives (a dotted path
such as ``"data.state"``), which words mean which state, and where progress, result and
error text are. Pure: a function of one response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ._reader import number as progress_fraction_number
from ._reader import progress_fraction, retry_after_of, unknown_state
from ._response import Response, excerpt
from ._status import JobState, Status
from ._vocab import DEFAULT_STATES, state_of, word_table

__all__ = ["JsonReader", "lookup"]

logger = logging.getLogger("asyncpoll")

_MISSING = object()


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``"data.items.0.state"``), or None when absent."""
    value = document
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list):
            try:
                index = int(part)
            except ValueError:
                return None
            value = value[index] if -len(value) <= index < len(value) else _MISSING
        else:
            return None
        if value is _MISSING:
            return None
    return value


def _check_path(name: str, path: object, *, required: bool = False) -> None:
    if path is None and not required:
        return
    if not isinstance(path, str) or not path or ".." in path or path.startswith("."):
        raise ValueError(
            f"JsonReader({name}=) must be a dotted path like 'data.state', got {path!r}"
        )


class JsonReader:
    """Reads a JSON status body by dotted paths.

    ``JsonReader(state="data.state", succeeded=["success"], failed=["failed", "expired"],
    progress="progress.processed_pages/progress.total_pages", result="data.resultJson",
    parse_result=True, error="data.failMsg")``

    Args:
        state: dotted path to the state word.
        succeeded, failed, cancelled, pending, running: state words (any case) for each
            state; they extend and override the default vocabulary (``DEFAULT_STATES``).
        progress: a dotted path to a percentage, fraction or ``{done, total}`` object, or
            ``"path/path"`` dividing one number by another.
        result: dotted path to a succeeded job's result (default: the whole body).
        parse_result: the result field holds JSON text; parse it.
        error: dotted path to a failed job's error text (a string or ``{"message": ...}``).
        result_url: dotted path to a link to the result document.
        status_codes: HTTP status codes that say the state by themselves, such as
            ``{404: JobState.FAILED}``; the engine hands such responses to this reader
            instead of treating them as errors.
        unknown: a word it does not know means ``"running"`` (logged once per word) or
            ``"error"`` (a ``PollError``).
    """

    def __init__(
        self,
        *,
        state: str,
        succeeded: Sequence[str] = (),
        failed: Sequence[str] = (),
        cancelled: Sequence[str] = (),
        pending: Sequence[str] = (),
        running: Sequence[str] = (),
        progress: str | None = None,
        result: str | None = None,
        parse_result: bool = False,
        error: str | None = None,
        result_url: str | None = None,
        status_codes: Mapping[int, JobState] | None = None,
        unknown: Literal["running", "error"] = "running",
    ) -> None:
        _check_path("state", state, required=True)
        _check_path("result", result)
        _check_path("error", error)
        _check_path("result_url", result_url)
        if progress is not None:
            if not isinstance(progress, str):
                _check_path("progress", progress)  # raises, naming the argument
            for piece in progress.split("/"):
                _check_path("progress", piece)
            if progress.count("/") > 1:
                raise ValueError(
                    f"JsonReader(progress=) takes 'path' or 'path/path', got {progress!r}"
                )
        if unknown not in ("running", "error"):
            raise ValueError(f"JsonReader(unknown=) must be 'running' or 'error', got {unknown!r}")
        words = dict(DEFAULT_STATES)
        listed_words: dict[str, JobState] = {}
        for target, listed in (
            (JobState.PENDING, pending),
            (JobState.RUNNING, running),
            (JobState.SUCCEEDED, succeeded),
            (JobState.FAILED, failed),
            (JobState.CANCELLED, cancelled),
        ):
            if isinstance(listed, str):
                raise TypeError(
                    f"JsonReader: state words must be a list, got the string {listed!r}"
                )
            for word in listed:
                words[str(word).lower()] = target
                listed_words[str(word)] = target
        codes = dict(status_codes or {})
        for code, code_state in codes.items():
            if not isinstance(code_state, JobState):
                raise TypeError(
                    f"JsonReader(status_codes=): {code} maps to {code_state!r}, not a JobState"
                )
        self.state_path = state
        self.words: Mapping[str, JobState] = words
        self._table = word_table(listed_words)
        self.progress_path = progress
        self.result_path = result
        self.parse_result = parse_result
        self.error_path = error
        self.result_url_path = result_url
        self.status_codes: Mapping[int, JobState] = codes
        self.unknown = unknown
        self._seen_unknown: set[str] = set()

    def claims(self, status_code: int) -> bool:
        """True for a non-2xx status code this reader reads itself (``status_codes``)."""
        return status_code in self.status_codes

    def __call__(self, response: Response) -> Status:
        """Read one response."""
        code_state = self.status_codes.get(response.status_code)
        try:
            body = response.json()
        except ValueError:
            if code_state is None:
                raise
            body = None
        unknown_word = None
        if code_state is not None:
            state = code_state
        else:
            word = lookup(body, self.state_path)
            if isinstance(word, bool) or not isinstance(word, (str, int)):
                raise ValueError(
                    f"no job state at {self.state_path!r}; received {excerpt(response.content)}"
                )
            known = state_of(str(word), self._table)
            if known is None:
                unknown_word = str(word)
                known = self._unknown(unknown_word, response)
            state = known
        progress = None
        if self.progress_path is not None and body is not None:
            progress = self._progress(body)
        result: Any = None
        error = None
        result_url = None
        if self.result_url_path is not None:
            link = lookup(body, self.result_url_path)
            if isinstance(link, list) and link:
                link = link[0]
            result_url = link if isinstance(link, str) and link else None
        if state is JobState.SUCCEEDED:
            result = body if self.result_path is None else lookup(body, self.result_path)
            if self.parse_result and isinstance(result, str):
                try:
                    result = json.loads(result)
                except ValueError as exc:
                    raise ValueError(
                        f"{self.result_path!r} does not hold JSON text ({exc}); received "
                        f"{excerpt(result)}"
                    ) from exc
            progress = 1.0
        elif state in (JobState.FAILED, JobState.CANCELLED) and self.error_path is not None:
            text = lookup(body, self.error_path)
            if isinstance(text, Mapping):
                text = text.get("message") or text.get("msg")
            error = str(text) if text not in (None, "") else None
        return Status(
            state=state,
            progress=progress,
            result=result,
            error=error,
            retry_after=retry_after_of(response),
            http_status=response.status_code,
            raw=body,
            result_url=result_url,
            unknown_word=unknown_word,
        )

    def _unknown(self, word: str, response: Response) -> JobState:
        return unknown_state(
            word,
            str(response.url),
            http_status=response.status_code,
            strict=self.unknown == "error",
            seen=self._seen_unknown,
            fix="list it in JsonReader(...)",
            place=f" at {self.state_path!r}",
        )

    def _progress(self, body: Any) -> float | None:
        assert self.progress_path is not None
        if "/" not in self.progress_path:
            return progress_fraction(lookup(body, self.progress_path))
        done_path, total_path = self.progress_path.split("/")
        done = progress_fraction_number(lookup(body, done_path))
        total = progress_fraction_number(lookup(body, total_path))
        if done is None or total is None or total <= 0:
            return None
        return min(1.0, max(0.0, done / total))

    def __repr__(self) -> str:
        return f"JsonReader(state={self.state_path!r})"
