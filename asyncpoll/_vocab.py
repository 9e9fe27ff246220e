"""The state words of the job systems people run, and how a word is matched.

A word is matched after normalising: lower case, with ``_``, ``-``, spaces and dots
removed, so ``InProgress``, ``in-progress``, ``in progress`` and ``IN_PROGRESS`` are one
word. Pure values: no I/O.

Where the words come from (the systems' public API documents):

- Celery (through Flower): PENDING RECEIVED STARTED RETRY SUCCESS FAILURE REVOKED
- RQ: queued started deferred scheduled finished failed stopped canceled
- Ray Jobs: PENDING RUNNING SUCCEEDED FAILED STOPPED
- Prefect state types: SCHEDULED PENDING RUNNING COMPLETED FAILED CANCELLED CRASHED
  CANCELLING PAUSED
- Airflow DAG runs and task instances: queued scheduled running success failed
  up_for_retry up_for_reschedule upstream_failed skipped restarting deferred removed
- Azure long-running operations: NotStarted Running Succeeded Failed Canceled
- AWS job APIs (Batch, Step Functions, Transcribe, SageMaker, Glue, Textract,
  MediaConvert): SUBMITTED PENDING RUNNABLE STARTING RUNNING IN_PROGRESS PROGRESSING
  SUCCEEDED COMPLETED COMPLETE PARTIAL_SUCCESS FAILED ERROR TIMED_OUT TIMEOUT STOPPING
  STOPPED ABORTED CANCELED PENDING_REDRIVE (a failed Step Functions execution)
- OpenAI batches and fine-tuning: validating validating_files in_progress finalizing
  completed failed expired cancelling cancelled queued running succeeded
- Azure AI services' jobs: notStarted running succeeded partiallySucceeded failed
  cancelling cancelled, ValidationFailed (Translator)
- Replicate predictions: starting processing succeeded failed canceled
- GitHub Actions runs: status queued in_progress completed waiting requested pending;
  conclusion success failure neutral cancelled skipped timed_out action_required stale
  startup_failure (a stale run never finished: failed)
- Jenkins builds: result SUCCESS FAILURE UNSTABLE ABORTED NOT_BUILT
- Argo Workflows: Pending Running Succeeded Failed Error (and Skipped, Omitted nodes)
"""

from __future__ import annotations

from collections.abc import Mapping

from ._status import JobState

__all__ = [
    "DEFAULT_STATES",
    "GENERIC_DONE",
    "PLAIN_ENDS",
    "normalise",
    "state_of",
    "word_table",
]

_PENDING = (
    "pending queued queuing waiting created delayed submitted received scheduled deferred "
    "not_started runnable starting accepted requested up_for_reschedule paused new"
)
_RUNNING = (
    "running processing progressing active in_progress started generating validating "
    "validating_files finalizing retry retrying restarting up_for_retry cancelling canceling "
    "stopping building executing"
)
_SUCCEEDED = (
    "completed complete succeeded success successful done finished partial_success "
    "partially_succeeded"
)
_FAILED = (
    "failed failure fail error errored expired crashed timed_out timeout upstream_failed "
    "unstable startup_failure action_required stale validation_failed pending_redrive"
)
# A job stopped, revoked or skipped on the server did not fail and will not finish:
# it ends CANCELLED.
_CANCELLED = (
    "cancelled canceled stopped revoked aborted terminated killed dismissed skipped omitted "
    "not_built removed deleted"
)

#: The state words the default reader knows (lower case; matched after normalising).
DEFAULT_STATES: Mapping[str, JobState] = {
    word: state
    for words, state in (
        (_PENDING, JobState.PENDING),
        (_RUNNING, JobState.RUNNING),
        (_SUCCEEDED, JobState.SUCCEEDED),
        (_FAILED, JobState.FAILED),
        (_CANCELLED, JobState.CANCELLED),
    )
    for word in words.split()
}

_DROP = str.maketrans("", "", "_- .")


def normalise(word: str) -> str:
    """``word`` in the form state words are matched in: lower case, no separators.

    A word without letters (a status code such as ``-1`` or ``1.0``) keeps its signs
    and dots: ``-1`` and ``1`` stay two words.
    """
    lowered = word.lower()
    if lowered.isascii() and not any(c.isalpha() for c in lowered):
        return lowered.strip()
    return lowered.translate(_DROP)


#: Words that say only that a job ended, so an outcome field (``result``) may say how.
GENERIC_DONE = frozenset(normalise(word) for word in ("completed", "complete", "done", "finished"))

#: Words that need no explaining in an error message ("failed" says it all).
PLAIN_ENDS = frozenset(
    normalise(word) for word in ("failed", "failure", "fail", "error", "cancelled", "canceled")
)


def word_table(extra: Mapping[str, JobState] | None = None) -> dict[str, JobState]:
    """A lookup table from words as servers send them to states.

    Holds each word normalised, and lower-cased, upper-cased and title-cased as listed
    (``in_progress``, ``IN_PROGRESS``, ``In_Progress``), so the common spellings match on
    the first lookup. ``extra`` adds or overrides words (any case or separators).
    """
    seen: dict[str, tuple[str, JobState]] = {}
    for word, state in (extra or {}).items():
        key = normalise(word)
        other = seen.setdefault(key, (word, state))
        if other[1] is not state:
            raise ValueError(
                f"state words {other[0]!r} and {word!r} are one word once case and "
                f"separators are set aside, but map to {other[1].name} and {state.name}"
            )
    words = (*DEFAULT_STATES.items(), *(extra or {}).items())
    table = {normalise(word): state for word, state in words}
    for word, _ in words:
        state = table[normalise(word)]
        for spelling in (word.lower(), word.upper(), word.lower().title()):
            table.setdefault(spelling, state)
    return table


def state_of(word: str, table: Mapping[str, JobState]) -> JobState | None:
    """The state ``word`` means in ``table``, or None when it does not know the word."""
    state = table.get(word)
    if state is None:
        lowered = word.lower()
        state = table.get(lowered)
        if state is None:
            state = table.get(normalise(lowered))
    return state
