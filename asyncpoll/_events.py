"""``JobEvent``: one change of one job, as the event stream delivers it."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from ._status import JobState

if TYPE_CHECKING:
    from ._handle import JobHandle

__all__ = ["EventKind", "JobEvent"]


class EventKind(enum.Enum):
    """What happened to a job."""

    ADDED = "added"  # the poller started following it
    PROGRESS = "progress"  # its state or progress changed (coalesced for slow readers)
    STALLED = "stalled"  # its state and progress stood still for stall_timeout
    DONE = "done"  # it reached a terminal state (never dropped)


@attrs.frozen
class JobEvent:
    """One change of one job.

    Attributes:
        kind: what happened.
        job_id: the job's id.
        state: the job's state after the change.
        progress: the job's progress (0.0 to 1.0) after the change, or None.
        time: when, on the poller's clock, in seconds.
        handle: the job's handle (for its result, exception, metadata).
    """

    kind: EventKind
    job_id: str
    state: JobState
    progress: float | None
    time: float
    handle: JobHandle = attrs.field(eq=False, repr=False)

    @property
    def terminal(self) -> bool:
        """True for the event of a job reaching a terminal state."""
        return self.kind is EventKind.DONE
