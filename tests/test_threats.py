"""The threat model's tests (docs/threat-model.md), one section per threat.

The job API, the network between it and the poller, whoever hands the poller a resume
token and whoever pushes it an update are untrusted. Each test proves one defence;
tests of the same defences elsewhere are named in the threat model's table.

In virtual time against the in-process fake API, except the sections that need real
sockets (credentials on redirects, compression bombs): those run a server on a free
127.0.0.1 port, on every transport, in real time, each bounded to a few seconds.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import logging
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job, rel, serving
from test_safety_net_loopback import Reply, Server

import asyncpoll
from asyncpoll import JobState, MemoryStore, Status
from asyncpoll._cli import _say, job_line
from asyncpoll._codec import TokenError
from asyncpoll._progress import JOB_LABEL, _label
from asyncpoll._redact import printable, quote_url, redact_url
from asyncpoll._registry import MemoryRegistry
from asyncpoll._send import SendFailed
from asyncpoll._transport import TransportFailure

pytestmark = pytest.mark.anyio

#: What a hostile server puts in every string it controls: a line break that would start
#: a forged log line, and an escape sequence a terminal would act on.
PAYLOAD = "done\nINFO forged line\x1b[31m"
#: How asyncpoll shows it: one line, the controls escaped.
SHOWN = "done\\nINFO forged line\\x1b[31m"


def poller(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    """A poller on the fake API's client, polling every second unless told otherwise."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every asyncpoll log line, each checked to be one printable line."""
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncpoll"]
    for line in lines:
        assert line.isprintable(), line
    return lines


def hosts(api: FakeJobAPI) -> set[str]:
    """The hosts every request went to."""
    return {call.request.url.host for call in api.router.calls}


# ================================================================ log injection
# Every string a server controls reaches logs, messages and the CLI with its control
# characters escaped (asyncpoll._redact.printable), so it cannot forge a line or drive
# a terminal.


@pytest.mark.parametrize(
    "ch",
    [chr(c) for c in range(0x20)]
    + ["\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\u202e", "\u200f", "\ud800"],
)
def test_printable_escapes_every_control_and_line_break_as_repr_does(ch: str) -> None:
    """C0, DEL, C1 (NEL, CSI), the Unicode line and paragraph separators, bidirectional
    overrides and lone surrogates come out as repr() writes them."""
    assert printable(f"a{ch}b") == f"a{repr(ch)[1:-1]}b"
    assert printable(f"a{ch}b").isprintable()


def test_printable_keeps_printable_text_and_is_idempotent() -> None:
    """Printable text (quotes, backslashes, non-Latin letters) is returned as it is, so
    escaping an escaped text again changes nothing."""
    text = "naïve 日本語 'q' \"d\" C:\\temp 🙂"
    assert printable(text) is text
    assert printable(PAYLOAD) == SHOWN
    assert printable(printable(PAYLOAD)) == SHOWN


def test_urls_shown_are_redacted_and_escaped_once() -> None:
    url = "https://h.test/a\x1b[31m\u2028?token=s3cret&x=1"
    assert redact_url(url) == "https://h.test/a\\x1b[31m\\u2028?token=[redacted]&x=1"
    assert quote_url(url) == "'https://h.test/a\\x1b[31m\\u2028?token=[redacted]&x=1'"


def test_exception_messages_escape_what_they_quote() -> None:
    """PollError (message and URL), TransportFailure and the internal SendFailed keep
    one line whatever they quote; JobCancelled escapes its reason."""
    error = asyncpoll.PollError(PAYLOAD, job_id=PAYLOAD, url=f"https://h.test/{PAYLOAD}")
    assert error.message == SHOWN
    assert str(error) == f"job {PAYLOAD!r} (https://h.test/{SHOWN}): {SHOWN}"
    assert str(error).isprintable()
    assert str(TransportFailure(PAYLOAD, transient=True)) == SHOWN
    assert SendFailed(PAYLOAD).message == str(SendFailed(PAYLOAD)) == SHOWN
    assert str(asyncpoll.JobCancelled("a", PAYLOAD)) == f"job 'a' was cancelled: {SHOWN}"


async def test_a_failed_jobs_error_text_cannot_forge_a_log_line(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    api.script("a", job("failed", error=PAYLOAD))
    caplog.set_level(logging.INFO, logger="asyncpoll")
    async with poller(api) as p:
        with pytest.raises(asyncpoll.JobFailed) as info:
            await p.add("a")
    assert str(info.value) == f"job 'a' failed: {SHOWN}"
    assert info.value.error == PAYLOAD  # the whole text, as the server sent it
    assert messages(caplog) == [f"job 'a' failed: {SHOWN}"]


async def test_a_cancelled_jobs_error_text_cannot_forge_a_log_line(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    api.script("a", job("cancelled", error=PAYLOAD))
    caplog.set_level(logging.INFO, logger="asyncpoll")
    async with poller(api) as p:
        with pytest.raises(asyncpoll.JobCancelled) as info:
            await p.add("a")
    shown = f"job 'a' was cancelled: cancelled on the server: {SHOWN}"
    assert str(info.value) == shown
    assert messages(caplog) == [shown]


async def test_an_errored_status_text_cannot_forge_a_log_line(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    async def check(job_id: str) -> Status:
        return Status(JobState.ERRORED, error=PAYLOAD)

    caplog.set_level(logging.INFO, logger="asyncpoll")
    async with poller(api) as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a", check=check)
    assert str(info.value) == f"job 'a': {SHOWN}"
    assert messages(caplog) == [f"job 'a' errored: {SHOWN}"]


async def test_a_long_error_text_keeps_its_ends_on_one_line(api: FakeJobAPI) -> None:
    """A 3,000-character traceback: the message quotes 400 + 600 characters of it, one
    line, the left-out middle counted in characters of the server's text."""
    traceback = ("Traceback\n" + "  frame\n" * 400)[:2999] + "\x1b"
    api.script("a", job("failed", error=traceback))
    async with poller(api) as p:
        with pytest.raises(asyncpoll.JobFailed) as info:
            await p.add("a")
    head, tail = printable(traceback[:400]), printable(traceback[-600:])
    assert str(info.value) == (f"job 'a' failed: {head} [... 2000 characters left out ...] {tail}")
    assert str(info.value).isprintable()
    assert str(info.value).endswith("frame\\n  fra\\x1b")


async def test_an_unknown_state_word_cannot_forge_a_log_line(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    api.script("a", job(PAYLOAD), job("done"))
    caplog.set_level(logging.WARNING, logger="asyncpoll")
    async with poller(api) as p:
        await p.add("a")
    assert messages(caplog) == [
        f"unknown job state {PAYLOAD!r} from https://api.test/jobs/a; treating it as "
        "running (map it with DefaultReader(states={...}))"
    ]


async def test_a_resubmitted_jobs_error_text_cannot_forge_a_log_line(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    ids = iter(["x1", "x2"])
    api.router.post("/render").mock(
        side_effect=lambda request: httpx.Response(202, headers={"Location": f"/jobs/{next(ids)}"})
    )
    api.script("x1", job("failed", error=PAYLOAD))
    api.script("x2", job("done", result="ok"))
    caplog.set_level(logging.INFO, logger="asyncpoll")
    async with poller(api, resubmit=1) as p:
        handle = await p.submit("/render", json={})
        assert await handle == "ok"
    assert messages(caplog) == [
        f"job 'x1' failed ({SHOWN}); submitting it again (0 more allowed)",
        "job 'x2' succeeded after 1 polls",
    ]


async def test_a_job_id_from_a_create_response_is_shown_escaped(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """The id a create response names reaches log lines (quoted by repr), the live
    progress display's labels and the CLI escaped."""
    api.router.post("/render").mock(
        return_value=httpx.Response(202, headers={"Location": "/jobs/x1"}, json={"id": PAYLOAD})
    )
    api.script("x1", job("done", result="ok"))
    caplog.set_level(logging.DEBUG, logger="asyncpoll")
    async with poller(api) as p:
        handle = await p.submit("/render", json={})
        assert handle.job_id == PAYLOAD
        assert await handle == "ok"
    assert messages(caplog)[-1] == f"job {PAYLOAD!r} succeeded after 1 polls"
    assert _label(PAYLOAD) == "…" + SHOWN[-(JOB_LABEL - 1) :]
    assert _label(PAYLOAD).isprintable()
    line = job_line(handle)
    assert line.isprintable()
    assert json.loads(line)["job_id"] == PAYLOAD  # JSON escapes, the value is intact


async def test_a_response_excerpt_cannot_forge_a_log_line(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    api.script("a", httpx.Response(500, content=PAYLOAD.encode()))
    caplog.set_level(logging.INFO, logger="asyncpoll")
    async with poller(api, max_errors=1) as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a")
    assert info.value.message == (
        f"1 transient failures in a row (max_errors=1); the last: HTTP 500; received '{SHOWN}'"
    )
    assert messages(caplog) == [f"job 'a' errored: {info.value.message}"]


async def test_a_result_url_with_control_characters_is_shown_escaped(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A same-origin result link with an escape sequence: refused by the HTTP client,
    named escaped (once) in the message."""
    api.script("a", job("done", resultUrl="/results/a\x1b[31m"))
    caplog.set_level(logging.INFO, logger="asyncpoll")
    async with poller(api, fetch_result=True, transport="httpx") as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a")
    assert info.value.message == (
        "invalid URL 'https://api.test/results/a\\x1b[31m': Invalid non-printable ASCII "
        "character in URL, '\\x1b' at position 26."
    )
    assert messages(caplog) == [f"job 'a' errored: {info.value.message}"]
    assert hosts(api) == {"api.test"}


async def test_a_readers_poll_error_quoting_the_server_is_escaped(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader of your own that quotes the body in its PollError: still one line."""

    def reader(response: asyncpoll.Response) -> Status:
        raise asyncpoll.PollError(f"cannot read {response.text}")

    api.script("a", httpx.Response(200, content=PAYLOAD.encode()))
    caplog.set_level(logging.INFO, logger="asyncpoll")
    async with poller(api, reader=reader) as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a")
    assert str(info.value) == f"job 'a' (/jobs/a): cannot read {SHOWN}"
    assert messages(caplog) == [f"job 'a' errored: cannot read {SHOWN}"]


async def test_a_retry_after_header_is_read_as_a_number_never_shown(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A Retry-After that is not a number or a date is ignored: the retry schedule
    applies, and nothing of the header reaches a log line."""
    api.script("a", httpx.Response(503, headers={"Retry-After": "5\x1b[31m"}), job("done"))
    caplog.set_level(logging.DEBUG, logger="asyncpoll")
    t0 = anyio.current_time()
    async with poller(api, retry_schedule=asyncpoll.fixed(2.0)) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0.0, 2.0]
    assert not any("[31m" in line for line in messages(caplog))


async def test_the_cli_escapes_what_json_leaves_raw(api: FakeJobAPI) -> None:
    """JSON escapes \\x00-\\x1f; the JSON line escapes DEL, NEL, the line separators and
    bidirectional overrides too (as \\u escapes, so the JSON reads back the same)."""
    result = "a\x7fb\x85c\u2028d\u2029e\u202ef\x1bg"
    api.script("a", job("done", result=result))
    async with poller(api) as p:
        handle = p.add("a")
        await handle
    line = job_line(handle)
    assert line == (
        '{"job_id": "a", "url": "/jobs/a", "state": "succeeded", "attempts": 1, '
        '"result": "a\\u007fb\\u0085c\\u2028d\\u2029e\\u202ef\\u001bg"}'
    )
    assert json.loads(line)["result"] == result


def test_cli_error_lines_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    _say(f"error: PollError: {PAYLOAD}")
    assert capsys.readouterr().err == f"asyncpoll: error: PollError: {SHOWN}\n"


# ================================================================ SSRF: server-supplied URLs
# A URL the server supplies (a create response's status link, a redirect, a result link)
# must be http(s), carry no user info and be of the job's origin or one allowed; else it
# is refused before any request goes there. Origins are compared on the URL's parts:
# an address such as 169.254.169.254 (cloud metadata) is just another origin.


@pytest.mark.parametrize(
    ("link", "why"),
    [
        pytest.param(
            "http://169.254.169.254/latest/meta-data/",
            "'http://169.254.169.254/latest/meta-data/': its origin "
            "http://169.254.169.254:80 differs from 'https://api.test/render'; list it in "
            "allowed_origins= to trust it",
            id="link-local",
        ),
        pytest.param(
            "//169.254.169.254/x",
            "'https://169.254.169.254/x': its origin https://169.254.169.254:443 differs "
            "from 'https://api.test/render'; list it in allowed_origins= to trust it",
            id="scheme-relative",
        ),
        pytest.param(
            "http://127.0.0.1:6379/",
            "'http://127.0.0.1:6379/': its origin http://127.0.0.1:6379 differs from "
            "'https://api.test/render'; list it in allowed_origins= to trust it",
            id="loopback",
        ),
        pytest.param(
            "https://user:pw@api.test/jobs/1",
            "'https://user:[redacted]@api.test/jobs/1': it carries user credentials",
            id="userinfo",
        ),
        pytest.param(
            "https://api.test@169.254.169.254/",
            "'https://[redacted]@169.254.169.254/': it carries user credentials",
            id="userinfo-host-trick",
        ),
        pytest.param(
            "file:///etc/passwd",
            "'file:///etc/passwd': only http and https URLs are followed",
            id="file",
        ),
        pytest.param(
            "gopher://api.test/_x",
            "'gopher://api.test/_x': only http and https URLs are followed",
            id="gopher",
        ),
    ],
)
@pytest.mark.parametrize("where", ["Location", "body"])
async def test_a_create_responses_status_link_elsewhere_is_refused_unrequested(
    api: FakeJobAPI, link: str, why: str, where: str
) -> None:
    """submit(): the status link of the create response, in a Location header or a body
    field, pointing at another host, carrying user info or of another scheme."""
    if where == "Location":
        created = httpx.Response(202, headers={"Location": link})
        source = "the Location header"
    else:
        created = httpx.Response(200, json={"id": "1", "statusUrl": link})
        source = "the status URL in the create response's body"
    api.router.post("/render").mock(return_value=created)
    async with poller(api, headers={"Authorization": "Bearer k"}) as p:
        with pytest.raises(asyncpoll.SubmitError) as info:
            await p.submit("/render", json={})
        assert p.in_flight() == []
    assert str(info.value) == f"https://api.test/render: refusing {source} {why}"
    assert hosts(api) == {"api.test"}
    assert len(api.router.calls) == 1


@pytest.mark.parametrize("job_id", [".", ".."])
async def test_a_job_id_that_is_a_path_step_is_refused_before_any_template_uses_it(
    api: FakeJobAPI, job_id: str
) -> None:
    """A create response naming its job ".." would turn /v1/jobs/{job_id}/status into
    /v1/status (and a cancel's DELETE /v1/jobs/{job_id} into DELETE /v1/): refused."""
    api.router.post("/render").mock(return_value=httpx.Response(200, json={"id": job_id}))
    async with asyncpoll.TaskPoller(
        "/v1/jobs/{job_id}/status",
        client=api.client(),
        cancel_url="/v1/jobs/{job_id}",
    ) as p:
        with pytest.raises(asyncpoll.SubmitError) as info:
            await p.submit("/render", json={})
        with pytest.raises(ValueError, match="cannot fill a URL template") as added:
            p.add(job_id)
        assert p.in_flight() == []
    assert str(info.value) == (
        f"https://api.test/render: refusing the job id {job_id!r} of the create response: "
        "a URL reads it as a step up its path, not as a name"
    )
    assert str(added.value) == (
        f"job id {job_id!r} cannot fill a URL template: a URL reads it as a step up its "
        "path, not as a name"
    )
    assert [call.request.url.path for call in api.router.calls] == ["/render"]


async def test_a_status_redirect_to_the_metadata_address_is_not_followed(
    api: FakeJobAPI,
) -> None:
    api.script("a", httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/"}))
    async with poller(api) as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a")
    assert info.value.message == (
        "refusing the redirect Location 'http://169.254.169.254/latest/': its origin "
        "http://169.254.169.254:80 differs from 'https://api.test/jobs/a'; list it in "
        "allowed_origins= to trust it"
    )
    assert hosts(api) == {"api.test"}
    assert len(api.router.calls) == 1


async def test_a_result_link_to_the_metadata_address_is_not_fetched(api: FakeJobAPI) -> None:
    api.script("a", job("done", resultUrl="http://169.254.169.254/r"))
    async with poller(api, fetch_result=True) as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a")
    assert info.value.message == (
        "refusing the result link 'http://169.254.169.254/r': its origin "
        "http://169.254.169.254:80 differs from 'https://api.test/jobs/a'; list it in "
        "allowed_origins= to trust it"
    )
    assert hosts(api) == {"api.test"}
    assert len(api.router.calls) == 1


# ================================================================ credentials on redirects
# asyncpoll never lets a client follow a redirect: each Location is checked as above, and
# a request to an origin other than the job's (an allowed one) is sent bare: no
# Authorization, no Cookie, no API key, none of the client's defaults. On every transport.

REAL = ("asyncio", {"loop_factory": asyncio.new_event_loop})

#: (real-time event loop, transport): every transport kind the poller can make.
LOOPBACK = pytest.mark.parametrize(
    ("anyio_backend", "kind"),
    [
        pytest.param(REAL, "httpx", id="asyncio-httpx"),
        pytest.param(REAL, "httpx-aiohttp", id="asyncio-httpx-aiohttp"),
        pytest.param(REAL, "aiohttp", id="asyncio-aiohttp"),
        pytest.param(("trio", {}), "httpx", id="trio-httpx"),
    ],
)

CREDENTIALS = {
    "Authorization": "Bearer k",
    "X-Api-Key": "key-1",
    "Cookie": "session=s1",
    "X-Trace": "t1",
}


def bare(headers: dict[str, str]) -> bool:
    """No credential of the poller's among a request's (lower-cased) headers."""
    return not {"authorization", "x-api-key", "cookie"} & headers.keys()


@pytest.fixture
def home() -> Iterator[Server]:
    """The job API: a scripted server on a free loopback port."""
    yield from serving(Server())


@pytest.fixture
def elsewhere() -> Iterator[Server]:
    """Another origin (another port), where a hostile Location points."""
    yield from serving(Server())


@LOOPBACK
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_a_cross_origin_redirect_is_never_requested_on_any_transport(
    kind: str, home: Server, elsewhere: Server, code: int
) -> None:
    """A status poll answered by a redirect to another origin: the job ends ERRORED
    naming it, and the other origin receives nothing (credentials or not)."""
    home.script("GET", "/jobs/a", Reply(b"", code, {"Location": elsewhere.url + "/steal"}))
    with anyio.fail_after(5):
        async with asyncpoll.TaskPoller(
            home.url + "/jobs/{job_id}", headers=CREDENTIALS, transport=kind
        ) as p:
            handle = p.add("a")
            (outcome,) = await p.gather(handle, return_exceptions=True)
    assert isinstance(outcome, asyncpoll.PollError)
    host, port = elsewhere.server_address[:2]
    what = "the 303 Location" if code == 303 else "the redirect Location"
    assert outcome.message == (
        f"refusing {what} '{elsewhere.url}/steal': its origin "
        f"http://{host!s}:{port} differs from '{home.url}/jobs/a'; list it in "
        "allowed_origins= to trust it"
    )
    assert elsewhere.requests == []
    assert len(home.requests) == 1
    assert home.sent("GET", "/jobs/a")[0]["authorization"] == "Bearer k"


@LOOPBACK
@pytest.mark.parametrize("code", [302, 307])
async def test_an_allowed_cross_origin_redirect_is_followed_bare_on_any_transport(
    kind: str, home: Server, elsewhere: Server, code: int
) -> None:
    """A redirect to an origin in allowed_origins= is followed, without the poller's
    Authorization, API key or Cookie; other headers still go."""
    home.script("GET", "/jobs/a", Reply(b"", code, {"Location": elsewhere.url + "/moved/a"}))
    elsewhere.script("GET", "/moved/a", Reply({"status": "done", "result": 7}))
    with anyio.fail_after(5):
        async with asyncpoll.TaskPoller(
            home.url + "/jobs/{job_id}",
            headers=CREDENTIALS,
            allowed_origins=[elsewhere.url],
            transport=kind,
        ) as p:
            assert await p.add("a") == 7
    (moved,) = elsewhere.sent("GET", "/moved/a")
    assert bare(moved)
    assert moved["x-trace"] == "t1"
    (first,) = home.sent("GET", "/jobs/a")
    assert first["authorization"] == "Bearer k" and first["cookie"] == "session=s1"


# ================================================================ unbounded bodies and bombs
# A body is read under max_body (1 MiB) decoded bytes, inflated a piece at a time: a
# small compressed body cannot balloon in memory. JSON that is too deep, or holds a
# number too long to convert cheaply, is refused by name.

BOMB_SIZE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """64 MiB of zeros, gzip- and deflate-compressed (about 64 KB each)."""
    zeros = b"\0" * BOMB_SIZE
    return {"gzip": gzip.compress(zeros, 9), "deflate": zlib.compress(zeros, 9)}


@LOOPBACK
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
# httpx's own transport on trio leaves the body's inner async generators unfinished when
# a read stops at the cap, and trio's finalizer warns: the gap test_safety_net_loopback's
# body cap test notes, not what this test checks.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_compression_bomb_is_refused_at_the_cap_on_any_transport(
    kind: str, home: Server, bombs: dict[str, bytes], encoding: str
) -> None:
    """A 64 KB body inflating to 64 MiB: refused once 1 MiB is inflated, the poller's
    memory growing by a few MiB at most; never retried (not transient)."""
    home.script("GET", "/jobs/a", Reply(bombs[encoding], headers={"Content-Encoding": encoding}))
    with anyio.fail_after(10):
        async with asyncpoll.TaskPoller(home.url + "/jobs/{job_id}", transport=kind) as p:
            tracemalloc.start()
            try:
                handle = p.add("a")
                (outcome,) = await p.gather(handle, return_exceptions=True)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    gc.collect()
    assert isinstance(outcome, asyncpoll.PollError)
    assert outcome.message == (
        f"the response to GET {home.url}/jobs/a is larger than 1048576 bytes (decoded); "
        "refusing to read more"
    )
    assert len(home.requests) == 1
    assert peak < 12 * 1024 * 1024


async def test_a_json_number_too_long_to_convert_is_refused(api: FakeJobAPI) -> None:
    """A 100,000-digit integer (quadratic to convert) is refused by the parser's limit."""
    body = b'{"status": "running", "progress": ' + b"7" * 100_000 + b"}"
    api.script("a", httpx.Response(200, content=body))
    async with poller(api, max_errors=1) as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a")
    # Python's own words differ by version ("limit (4300)" on 3.10, "limit (4300 digits)"
    # later); the limit, the count and the excerpt are the same.
    message = info.value.message
    assert message.startswith(
        "1 transient failures in a row (max_errors=1); the last: ValueError: response body "
        "is not JSON (Exceeds the limit (4300"
    )
    assert "for integer string conversion: value has 100000 digits" in message
    assert (
        'set_int_max_str_digits() to increase the limit); received \'{"status": "running"'
        in message
    )
    assert info.value.message.endswith(" (100035 characters)")


# ================================================================ resume tokens
# A token is versioned JSON (never pickle), checked field by field; it carries no
# credentials (make_token refuses them, read_token refuses a token that has them) and
# its URLs must be of an origin the poller polls unless trusted=True.


async def test_a_resume_token_nested_too_deeply_is_refused_by_name(api: FakeJobAPI) -> None:
    async with poller(api) as p:
        with pytest.raises(TokenError) as info:
            p.resume("[" * 100_000 + "]" * 100_000)
    assert str(info.value) == "a resume token must be JSON nested less deeply"


def _token(p: asyncpoll.TaskPoller, **fields: Any) -> str:
    """A resume token of a live job ``a``, its job's fields changed."""
    outer = json.loads(p.handle("a").resume_token())
    outer["job"].update(fields)
    return json.dumps(outer)


@pytest.mark.parametrize(
    ("fields", "name", "shown"),
    [
        (
            {"url": "https://user:pw@api.test/jobs/a", "target": "https://user:pw@api.test/jobs/a"},
            "url",
            "https://user:[redacted]@api.test/jobs/a",
        ),
        (
            {"cancel_url": "https://api.test/jobs/a?access_token=t0k"},
            "cancel_url",
            "https://api.test/jobs/a?access_token=[redacted]",
        ),
    ],
    ids=["userinfo", "query-token"],
)
async def test_a_resume_token_carrying_credentials_is_refused_even_trusted(
    api: FakeJobAPI, fields: dict[str, str], name: str, shown: str
) -> None:
    api.script("a", job("running"))
    async with poller(api, schedule=asyncpoll.fixed(60.0)) as p:
        p.add("a")
        token = _token(p, **fields)
        p.handle("a").cancel()
        for trusted in (False, True):
            with pytest.raises(TokenError) as info:
                p.resume(token, trusted=trusted)
            assert str(info.value) == (
                f"resume token: its {name} {shown!r} carries credentials; a resume token "
                "never carries credentials"
            )


@pytest.mark.parametrize("name", ["cancel_url", "fetch_url"])
async def test_a_resume_token_pointing_at_the_metadata_address_is_refused(
    api: FakeJobAPI, name: str
) -> None:
    """Every URL of a token is checked, not only the status URL (which test_durable
    covers): a cancel URL or a result link at 169.254.169.254 is refused."""
    api.script("a", job("running"))
    async with poller(api, schedule=asyncpoll.fixed(60.0)) as p:
        p.add("a")
        token = _token(p, **{name: "http://169.254.169.254/latest/meta-data/"})
        p.handle("a").cancel()
        with pytest.raises(TokenError) as info:
            p.resume(token)
    assert str(info.value) == (
        f"resume token: its {name} 'http://169.254.169.254/latest/meta-data/' is not of an "
        "origin this poller polls (status_url, base_url, allowed_origins); pass "
        "trusted=True for a token from your own system"
    )
    assert "169.254.169.254" not in hosts(api)


# ================================================================ pushed updates: nudge()
# A pushed update (a webhook) is a hint: nudge(job_id) moves the job's next poll to now.
# It sets nothing from the push; it coalesces; its poll waits for the rate limit, the
# host's cool-down, min_interval and a retry back-off like any other.


async def test_a_nudge_during_a_long_interval_polls_at_once(api: FakeJobAPI) -> None:
    api.script("a", job("running"), job("running", progress=0.5), job("done", result=1))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(100.0)) as p:
        handle = p.add("a")
        await anyio.sleep(10.0)
        assert p.nudge("a") is True
        # A hint only: nothing about the job changes until the poll answers.
        assert handle.state is JobState.RUNNING and handle.progress is None
        assert await handle == 1
    assert rel(api.times("a"), t0) == [0.0, 10.0, 110.0]


async def test_a_thousand_nudges_of_one_job_make_one_request(api: FakeJobAPI) -> None:
    """Nudges of a job already due, or in a request (2 s long here), coalesce."""

    async def slow() -> httpx.Response:
        await anyio.sleep(2.0)
        return job("running")

    api.script("a", job("running"), slow, job("done"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(100.0)) as p:
        handle = p.add("a")
        await anyio.sleep(10.0)
        assert all(p.nudge("a") for _ in range(1000))
        await anyio.sleep(1.0)  # the nudged poll is in its request
        assert all(p.nudge("a") for _ in range(1000))
        await handle
    assert rel(api.times("a"), t0) == [0.0, 10.0, 112.0]


async def test_nudges_during_a_429_cool_down_wait_for_its_end(api: FakeJobAPI) -> None:
    """Job b's 429 (Retry-After: 30) pauses the host: job a, nudged at 5 s, is polled
    when the cool-down ends, not before."""
    api.script("a", job("running"), job("done"))
    api.script("b", httpx.Response(429, headers={"Retry-After": "30"}), job("done"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(100.0)) as p:
        a, b = p.add("a"), p.add("b")
        await anyio.sleep(5.0)
        assert p.nudge("a") is True
        await p.gather(a, b)
    assert rel(api.times("a"), t0) == [0.0, 30.0]
    assert rel(api.times("b"), t0) == [0.0, 30.0]


async def test_nudges_cannot_exceed_the_rate_limit(api: FakeJobAPI) -> None:
    """RateLimit(1, per=10): a nudge at 11 s waits for the next slot, at 20 s."""
    api.script("a", job("running"), job("done"))
    api.script("b", job("running"), job("done"))
    t0 = anyio.current_time()
    async with poller(
        api, schedule=asyncpoll.fixed(100.0), rate_limit=asyncpoll.RateLimit(1, per=10.0)
    ) as p:
        a, b = p.add("a"), p.add("b")
        await anyio.sleep(11.0)
        assert p.nudge("a") is True
        await p.gather(a, b)
    assert rel(api.times("a"), t0) == [0.0, 20.0]
    assert rel(api.times("b"), t0) == [10.0, 110.0]


async def test_a_nudge_keeps_min_interval_and_a_retry_back_off(api: FakeJobAPI) -> None:
    """min_interval=5: a nudge 1 s after a poll brings the next to 5 s after it. After a
    failed request the retry schedule's wait (20 s) stands."""
    api.script("a", job("running"), job("running"), job("done"))
    api.script("b", httpx.Response(500), job("done"))
    t0 = anyio.current_time()
    async with poller(
        api,
        schedule=asyncpoll.fixed(100.0),
        retry_schedule=asyncpoll.fixed(20.0),
        min_interval=5.0,
    ) as p:
        a, b = p.add("a"), p.add("b")
        await anyio.sleep(1.0)
        assert p.nudge("a") is True
        assert p.nudge("b") is True
        await p.gather(a, b)
    assert rel(api.times("a"), t0) == [0.0, 5.0, 105.0]
    assert rel(api.times("b"), t0) == [0.0, 20.0]


async def test_a_nudge_keeps_the_back_off_after_a_429(api: FakeJobAPI) -> None:
    """A bare 429 pauses the host for 1 s and the job for the retry schedule's 20 s: a
    nudge at 2 s, the host open again, still leaves the job's poll at 20 s."""
    api.script("a", httpx.Response(429), job("done"))
    t0 = anyio.current_time()
    async with poller(api, retry_schedule=asyncpoll.fixed(20.0)) as p:
        handle = p.add("a")
        await anyio.sleep(2.0)
        assert p.nudge("a") is True
        await handle
    assert rel(api.times("a"), t0) == [0.0, 20.0]


@pytest.mark.parametrize(
    "pushed", ["nope", "", 7, True, None, {"job_id": "a"}, ["a"], 1.5], ids=repr
)
async def test_an_unknown_or_malformed_job_id_is_refused_and_adds_nothing(
    api: FakeJobAPI, pushed: Any
) -> None:
    api.script("a", job("running"), job("done"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(100.0)) as p:
        handle = p.add("a")
        await anyio.sleep(10.0)
        assert p.nudge(pushed) is False
        assert [h.job_id for h in p.in_flight()] == ["a"]
        await handle
        assert p.nudge("a") is False  # finished
    assert rel(api.times("a"), t0) == [0.0, 100.0]
    assert p.nudge("a") is False  # closed


async def test_a_fleet_worker_refuses_a_nudge_for_a_job_it_does_not_hold(
    api: FakeJobAPI,
) -> None:
    """Between polls a fleet's jobs wait in the shared store, held by no worker."""
    api.script("a", job("running"), job("done"))
    t0 = anyio.current_time()
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        client=api.client(),
        store=MemoryStore(shared=True),
        clock=WallClock(),
        schedule=asyncpoll.fixed(100.0),
    ) as p:
        handle = p.add("a")
        await anyio.sleep(10.0)
        assert p.nudge("a") is False
        await handle
    assert rel(api.times("a"), t0) == [0.0, 100.0]


class WallClock(asyncpoll.AnyioClock):
    """Wall time in step with virtual time, as a fleet's leases need."""

    def wall(self) -> float:
        return 1_800_000_000.0 + anyio.current_time()


def test_the_registry_drops_moved_entries_and_stays_bounded() -> None:
    """unschedule() drops an entry (pop_due skips it); the heap is rebuilt once the
    dropped entries outnumber the live ones (and 64), so moves cannot grow it."""
    registry = MemoryRegistry()
    handle: Any = object()
    kept = registry.schedule(handle, 5.0)
    for n in range(10_000):
        entry = registry.schedule(handle, 100.0 + n)
        assert registry.unschedule(entry) is True
        assert registry.unschedule(entry) is False
        assert len(registry._heap) <= 2 * 1 + 66
    assert registry.unschedule(kept) is True
    assert list(registry.pop_due(1e9)) == []
    assert registry.next_due() == float("inf")
