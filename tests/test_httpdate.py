"""Tests for ``asyncpoll._httpdate``: the one HTTP-date parser."""

from __future__ import annotations

import datetime

import pytest

from asyncpoll._httpdate import parse_http_date


def _epoch(*fields: int) -> float:
    return datetime.datetime(*fields, tzinfo=datetime.timezone.utc).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", _epoch(2015, 10, 21, 7, 28, 0)),
        ("  Wed, 21 Oct 2015 07:28:00 GMT  ", _epoch(2015, 10, 21, 7, 28, 0)),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),  # RFC 850, obsolete
        ("Sun Nov  6 08:49:37 1994", 784111777.0),  # asctime, obsolete: UTC
        ("Sun, 06 Nov 1994 08:49:37 -0000", 784111777.0),  # no zone: UTC
        ("Sun, 06 Nov 1994 10:49:37 +0200", 784111777.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
    ],
)
def test_parse_http_date(value: str, epoch: float) -> None:
    """An HTTP-date in any of its three forms gives its epoch seconds."""
    assert parse_http_date(value) == epoch


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "yesterday",
        "120",
        "-5",
        "Wed, 99 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 25:28:00 GMT",
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "1 2 3 4 5",
    ],
)
def test_parse_http_date_garbage_is_none(value: str | None) -> None:
    """Absent, empty, unreadable or out-of-range dates give None, never an exception."""
    assert parse_http_date(value) is None


def test_a_date_without_a_zone_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The obsolete asctime form carries no zone: it is read as UTC, not local time."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_http_date("Wed Oct 21 07:28:00 2015") == 1445412480.0
    finally:
        monkeypatch.undo()
        time.tzset()
