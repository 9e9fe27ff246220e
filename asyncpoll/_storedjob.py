"""The rows a store keeps (``StoredJob``) and the rule of a queue of writes.

Apart from ``_store`` (the seam: the protocol, ``MemoryStore``, ``open_store()``) so
that a store module imports its rows without importing the seam, which imports the
store a URL names: no import cycle, lazy imports included.
"""

from __future__ import annotations

import attrs

__all__ = ["TERMINAL_STATES", "StoredJob"]

#: The ``JobState`` values of a finished job.
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "timed_out", "errored"})


@attrs.frozen
class StoredJob:
    """One job as a store keeps it.

    Attributes:
        job_id: the job's id, the row's key.
        state: the job's state (a ``JobState`` value: ``"running"``, ``"succeeded"``...).
        due: for a live job, when its next request is due; for a terminal one, when it
            finished (wall-clock epoch seconds).
        doc: the job as JSON text; opaque to the store.
    """

    job_id: str
    state: str
    due: float
    doc: str

    @property
    def terminal(self) -> bool:
        """Whether the job is finished."""
        return self.state in TERMINAL_STATES


def _coalesce(
    queue: dict[str, tuple[StoredJob, str | None]], job: StoredJob, owner: str | None
) -> None:
    """Queue ``job``, replacing a queued write of the same id unless that one is final."""
    queued = queue.get(job.job_id)
    if queued is not None and queued[0].terminal:
        return
    queue[job.job_id] = (job, owner)
