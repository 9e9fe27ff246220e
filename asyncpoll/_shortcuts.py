"""``poll()`` and ``poll_many()``: one poller for one call."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._poller import TaskPoller
from ._redact import redact_url

__all__ = ["poll", "poll_many"]


async def poll(url: str, **options: Any) -> Any:
    """Poll one job at ``url`` until it finishes and return its result.

    ``options`` are ``TaskPoller``'s keyword arguments (``headers=``, ``schedule=``,
    ``timeout=``, ...). Raises what awaiting the job's handle raises.
    """
    async with TaskPoller(**options) as poller:
        # The URL is the job's id; redacted, so errors and logs never show a credential.
        return await poller.add(redact_url(url), url=url)


async def poll_many(
    job_ids: Iterable[str],
    *,
    status_url: str,
    return_exceptions: bool = False,
    **options: Any,
) -> list[Any]:
    """Poll many jobs on one poller; return their results in the order given.

    Args:
        job_ids: the jobs' ids, filled into ``status_url``.
        status_url: a URL template with ``{job_id}``.
        return_exceptions: put each failed job's exception in its place instead of
            raising the first failure (which cancels the others).
        options: ``TaskPoller``'s other keyword arguments.
    """
    async with TaskPoller(status_url, **options) as poller:
        handles = [poller.add(job_id) for job_id in job_ids]
        return await poller.gather(*handles, return_exceptions=return_exceptions)
