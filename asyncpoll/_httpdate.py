"""HTTP dates (RFC 9110 section 5.6.7) to epoch seconds: the one parser of the package.

``Date``, an HTTP-date ``Retry-After`` and anything else that carries a wall-clock time
over HTTP are read here. Pure: no clock is read; the caller decides what a date is
measured against.
"""

from __future__ import annotations

import datetime
import email.utils

__all__ = ["parse_http_date"]


def parse_http_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP-date, or None when absent or unreadable.

    Accepts the IMF-fixdate form (``Wed, 21 Oct 2015 07:28:00 GMT``) and the obsolete
    RFC 850 and asctime forms, as ``email.utils`` reads them; a date without a zone (or
    with ``-0000``) is UTC. An empty value, garbage, or a date out of range gives None,
    never an exception.
    """
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
