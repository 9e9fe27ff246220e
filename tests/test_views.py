"""How pollers, handles, summaries and statistics show themselves: text and Jupyter HTML."""

from __future__ import annotations

import html
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job

import asyncpoll
from asyncpoll import JobState, PollerSummary

pytestmark = pytest.mark.anyio


def poller(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    """A poller on the fake API's client, polling every second."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)


def row(name: str, value: object) -> str:
    return (
        f"<tr><th style='text-align:left'>{name}</th><td style='text-align:left'>{value}</td></tr>"
    )


def table(caption: str, *rows: str) -> str:
    return (
        f"<table class='asyncpoll'><caption style='text-align:left'>{caption}</caption>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# ---------------------------------------------------------------- summary


async def test_summary_counts_jobs_per_state_and_requests(api: FakeJobAPI) -> None:
    """summary() counts live jobs by their last state and finished ones by their end."""
    api.script("p", job("queued"))
    api.script("r", job("running", progress=10))
    api.script("s", job("done", result=1))
    api.script("f", job("failed", message="no"))
    async with poller(api) as p:
        handles = [p.add(j) for j in ("p", "r", "s", "f")]
        handles.append(p.add("c"))
        handles[-1].cancel()
        await anyio.sleep(0.5)  # one poll each, answered
        summary = p.summary()
        assert summary == PollerSummary(
            pending=1, running=1, succeeded=1, failed=1, cancelled=1, requests=4
        )
        assert (summary.in_flight, summary.finished, summary.total) == (2, 3, 5)
        assert summary.counts()[JobState.RUNNING] == 1
        assert str(summary) == (
            "5 jobs: 2 in flight (1 pending, 1 running), 1 succeeded, 1 failed, "
            "1 cancelled; 4 requests"
        )
        for h in handles[:2]:
            h.cancel()


def test_summary_text_for_edge_counts() -> None:
    """One job and one request are singular; nothing in flight has no breakdown; stalled
    jobs are counted among those in flight."""
    assert str(PollerSummary()) == "0 jobs: 0 in flight; 0 requests"
    assert str(PollerSummary(succeeded=1, requests=1)) == (
        "1 job: 0 in flight, 1 succeeded; 1 request"
    )
    assert str(PollerSummary(running=2, stalled=1, timed_out=3, errored=1, requests=9)) == (
        "6 jobs: 2 in flight (2 running, 1 stalled), 3 timed out, 1 errored; 9 requests"
    )


def test_summary_html_is_a_table_of_every_state() -> None:
    """The summary's HTML view lists every state, stalled, the total and requests."""
    summary = PollerSummary(running=2, succeeded=3, requests=7)
    assert summary._repr_html_() == table(
        "asyncpoll jobs",
        row("pending", 0),
        row("running", 2),
        row("succeeded", 3),
        row("failed", 0),
        row("cancelled", 0),
        row("timed out", 0),
        row("errored", 0),
        row("stalled", 0),
        row("total", 5),
        row("requests", 7),
    )


# ---------------------------------------------------------------- statistics


def test_statistics_print_as_one_readable_line() -> None:
    """str(statistics()) names each counter; the finished jobs are broken down by state."""
    stats = asyncpoll.PollerStatistics(
        active=3,
        finished={**dict.fromkeys(JobState, 0), JobState.SUCCEEDED: 7, JobState.TIMED_OUT: 1},
        requests=41,
        transient_errors=2,
        throttled=1,
        callback_errors=0,
        waiting_for_rate_limit=4,
    )
    assert str(stats) == (
        "3 active, 8 finished (7 succeeded, 1 timed out); 41 requests, 2 transient errors, "
        "1 throttled, 0 callback errors, 4 waiting for the rate limit"
    )
    html = stats._repr_html_()
    assert html.startswith("<table class='asyncpoll'><caption style='text-align:left'>")
    assert row("finished succeeded", 7) + row("finished failed", 0) in html
    assert row("waiting for the rate limit", 4) + "</tbody></table>" in html


async def test_statistics_of_a_fresh_poller_print_zeroes(api: FakeJobAPI) -> None:
    """A poller with no jobs yet prints its statistics without a breakdown."""
    async with poller(api) as p:
        assert str(p.statistics()) == (
            "0 active, 0 finished; 0 requests, 0 transient errors, 0 throttled, "
            "0 callback errors, 0 waiting for the rate limit"
        )


# ---------------------------------------------------------------- handles


async def test_handle_repr_and_html_follow_the_job(api: FakeJobAPI) -> None:
    """A handle's repr and HTML view show its id, state, progress, attempts and outcome."""
    api.script("a", job("running", progress=40), job("done", result={"n": 1}))
    async with poller(api) as p:
        handle = p.add("a")
        assert repr(handle) == "<JobHandle 'a' pending attempts=0>"
        await anyio.sleep(0.5)
        assert repr(handle) == "<JobHandle 'a' running progress=40% attempts=1>"
        assert handle._repr_html_() == table(
            "JobHandle",
            row("job id", "a"),
            row("state", "running"),
            row("progress", "40%"),
            row("attempts", 1),
            row("status URL", "/jobs/a"),
        )
        await handle
    assert repr(handle) == "<JobHandle 'a' succeeded progress=100% attempts=2>"
    assert handle._repr_html_().endswith(
        row("status URL", "/jobs/a") + row("result", "{&#x27;n&#x27;: 1}") + "</tbody></table>"
    )


async def test_handle_html_escapes_and_shortens_the_error(api: FakeJobAPI) -> None:
    """A failed job's error is shown escaped, and cut at 200 characters."""
    api.script("a", job("failed", message="<b>" + "x" * 300))
    async with poller(api) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.JobFailed):
            await handle
    view = handle._repr_html_()
    assert "<b>" not in view
    error = f"JobFailed: job 'a' failed: <b>{'x' * 300}"
    assert view.endswith(row("error", html.escape(error[:199] + "\u2026")) + "</tbody></table>")


# ---------------------------------------------------------------- pollers


async def test_poller_html_shows_its_state_url_counts_and_rate_limit() -> None:
    """The poller's HTML view: lifecycle, redacted status URL, the summary and the limit."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "done"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with asyncpoll.TaskPoller(
        "https://user:pw@api.test/jobs/{job_id}?a=<b>",
        client=client,
        rate_limit=asyncpoll.RateLimit(10),
    ) as p:
        await p.add("a")
        html = p._repr_html_()
    assert html.startswith(
        "<table class='asyncpoll'><caption style='text-align:left'>TaskPoller</caption>"
        "<tbody>" + row("state", "open")
    )
    assert "pw" not in html and "<b>" not in html
    assert row("succeeded", 1) in html
    assert row("requests", 1) + row("rate limit", "RateLimit(rate=10, per=1.0, burst=1)") in html
    assert row("state", "closed") in p._repr_html_()
    await client.aclose()


def test_values_escape_their_html() -> None:
    """html_table escapes names and values alike."""
    from asyncpoll._views import html_table

    assert html_table("<x>", [("a&b", "<script>")]) == table(
        "&lt;x&gt;", row("a&amp;b", "&lt;script&gt;")
    )
