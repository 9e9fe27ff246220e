"""The ``asyncpoll`` command (``python -m asyncpoll`` does the same).

- ``asyncpoll demo``: a fake job API on loopback, a few hundred jobs, one poller, a table.
- ``asyncpoll watch``: poll real jobs; one JSON line per finished job on stdout.
- ``asyncpoll serve-fake``: the fake job API alone, until Ctrl+C.

argparse only: nothing beyond the base install is imported until a command needs it
(``demo`` and ``serve-fake`` need ``asyncpoll[cli]``; ``watch`` draws its live display
when tqdm is installed). Errors are one line on stderr, never a traceback: exit code 2
for a usage error, 1 for a failure (or a job that did not succeed), 130 after Ctrl+C.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TextIO

import anyio

from ._defaultreader import DefaultReader
from ._handle import JobHandle
from ._jsonreader import JsonReader
from ._poller import TaskPoller
from ._reader import Reader
from ._redact import printable, redact_url
from ._schedule import Schedule, backoff, fixed
from ._status import JobState

__all__ = ["main", "parse_header", "parse_reader", "parse_schedule"]

PROG = "asyncpoll"
#: asyncpoll.testing.SHAPES's names (not imported: the base install lacks Starlette).
SHAPE_NAMES = (
    "status",
    "envelope",
    "location",
    "pages",
    "bearer",
    "celery",
    "ray",
    "github",
    "prefect",
    "airflow",
    "azure",
    "google",
    "openai",
    "replicate",
    "jenkins",
    "argo",
    "rq",
)
INSTALL_CLI = "pip install 'asyncpoll[cli]'"

#: Exit codes.
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130

#: The JsonReader fields a ``--reader json:...`` spec may set, and their kinds.
_READER_PATHS = ("state", "progress", "result", "error", "result_url")
_READER_WORDS = ("succeeded", "failed", "cancelled", "pending", "running")


class UsageError(Exception):
    """A bad command line: one line on stderr, exit code 2."""


class CommandError(Exception):
    """A command that could not run: one line on stderr, exit code 1."""


# ---------------------------------------------------------------------- option syntax


def _seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{what}: {text!r} must be a number >= 0")
    return value


def parse_schedule(spec: str) -> Schedule:
    """A ``--schedule`` spec as a schedule.

    - ``fixed:S``: poll every ``S`` seconds (``fixed:0``: as fast as the rate limit lets).
    - ``backoff:INITIAL[,FACTOR[,MAX]]``: gaps from ``INITIAL`` seconds, each ``FACTOR``
      times the one before (default 1.5), up to ``MAX`` seconds (default 30), with 10 %
      jitter; ``backoff`` alone is the poller's default, ``backoff:1,1.5,30``.

    Raises:
        UsageError: anything else.
    """
    kind, _, rest = spec.strip().partition(":")
    what = f"--schedule {spec!r}"
    if kind == "fixed" and rest:
        return fixed(_seconds(rest, what))
    if kind == "backoff":
        parts = rest.split(",") if rest else []
        if len(parts) > 3 or any(not p.strip() for p in parts):
            raise UsageError(f"{what}: write backoff:INITIAL[,FACTOR[,MAX]], e.g. backoff:1,2,30")
        values = [_seconds(p, what) for p in parts]
        initial, factor, top = (values + [1.0, 1.5, 30.0][len(values) :])[:3]
        try:
            return backoff(initial=initial, factor=factor, max=top)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{what}: {exc}") from None
    raise UsageError(f"{what}: write fixed:SECONDS or backoff:INITIAL[,FACTOR[,MAX]]")


def parse_reader(spec: str) -> Reader:
    """A ``--reader`` spec as a reader.

    - ``default``: the default reader.
    - ``json:state=PATH[,KEY=VALUE...]``: a ``JsonReader``. ``state``, ``progress``,
      ``result``, ``error`` and ``result_url`` take dotted paths (``data.state``;
      ``progress`` also ``done/total``); ``succeeded``, ``failed``, ``cancelled``,
      ``pending`` and ``running`` take state words separated by ``|``; a bare
      ``parse_result`` parses the result field's JSON text.

    Raises:
        UsageError: anything else.
    """
    text = spec.strip()
    if text == "default":
        return DefaultReader()
    kind, _, rest = text.partition(":")
    what = f"--reader {spec!r}"
    if kind != "json" or not rest:
        raise UsageError(f"{what}: write default, or json:state=PATH[,KEY=VALUE...]")
    options: dict[str, Any] = {}
    for item in rest.split(","):
        key, eq, value = (piece.strip() for piece in item.partition("="))
        if key in options:
            raise UsageError(f"{what}: {key} given twice")
        if key == "parse_result" and not eq:
            options["parse_result"] = True
        elif key in _READER_PATHS and value:
            options[key] = value
        elif key in _READER_WORDS and value:
            options[key] = [word for word in value.split("|") if word]
        else:
            known = ", ".join((*_READER_PATHS, *_READER_WORDS, "parse_result"))
            raise UsageError(f"{what}: cannot read {item.strip()!r}; keys are {known}")
    if "state" not in options:
        raise UsageError(f"{what}: json: needs state=PATH")
    try:
        return JsonReader(**options)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what}: {exc}") from None


def parse_header(text: str) -> tuple[str, str]:
    """A ``-H 'Name: value'`` option as ``(name, value)``."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise UsageError(f"-H {text!r}: write -H 'Name: value'")
    return name, value.strip()


def _timeout(text: str) -> float | None:
    if text.strip().lower() in ("none", "0"):
        return None
    value = _seconds(text, "--timeout")
    return value


def _positive(kind: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {what}") from None
        if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    convert.__name__ = what
    return convert


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {text!r}")
    return value


def _duration(text: str) -> float | tuple[float, float]:
    low, comma, high = text.partition(",")
    try:
        first = float(low)
        last = float(high) if comma else first
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write SECONDS or LOW,HIGH") from None
    if not (math.isfinite(first) and math.isfinite(last) and 0 <= first <= last):
        raise argparse.ArgumentTypeError(f"{text!r}: seconds >= 0, LOW <= HIGH")
    return (first, last) if comma else first


# ---------------------------------------------------------------------- the parser


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (``UsageError``), not usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The ``asyncpoll`` parser and its subcommands."""
    from . import __version__

    version = f"%(prog)s {__version__}"
    parser = _Parser(
        prog=PROG,
        description="Watch many long-running remote jobs at once.",
        epilog="asyncpoll COMMAND --help shows a command's options.",
    )
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = commands.add_parser(
        "demo",
        help="poll a few hundred jobs on a fake job API served on loopback",
        description=(
            "Start a fake job API on a loopback port, submit jobs to it (mixed durations, "
            "some failures, a few 5xx answers and dropped connections), poll them all "
            "through one TaskPoller with a live display, and print what happened. "
            f"Needs {INSTALL_CLI}."
        ),
    )
    demo.add_argument("--version", action="version", version=version)
    demo.add_argument(
        "--jobs", type=_positive(int, "job count"), default=300, help="jobs (default 300)"
    )
    demo.add_argument(
        "--shape",
        choices=SHAPE_NAMES,
        default="status",
        help="the fake API's shape (default status)",
    )
    demo.add_argument(
        "--rate",
        type=_positive(float, "rate"),
        default=500.0,
        help="the poller's rate limit, requests/s (default 500)",
    )
    demo.add_argument("--seed", type=int, default=7, help="seeds the fake jobs (default 7)")
    demo.add_argument("--no-progress", action="store_true", help="no live display")

    watch = commands.add_parser(
        "watch",
        help="poll jobs until they finish; one JSON line per finished job",
        description=(
            "Poll jobs by status URL (or by id, with --ids and --status-url) until each "
            "finishes. Prints one JSON line per finished job on stdout, in the order they "
            "finish: job_id, url, state, attempts, and result (succeeded) or error. "
            "A live display goes to stderr when it is a terminal and tqdm is installed. "
            "Exit code 0 when every job succeeded, 1 otherwise, 130 after Ctrl+C (the jobs "
            "still running are listed on stderr)."
        ),
    )
    watch.add_argument("--version", action="version", version=version)
    watch.add_argument("urls", nargs="*", metavar="URL", help="a job's status URL")
    watch.add_argument(
        "--ids",
        metavar="FILE",
        help="a file of job ids, one a line ('-': stdin; blank lines and # comments skipped)",
    )
    watch.add_argument(
        "--status-url",
        metavar="TEMPLATE",
        help="the status URL of an id from --ids, with {job_id}",
    )
    watch.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header for every request (repeatable)",
    )
    watch.add_argument(
        "--rate", type=_positive(float, "rate"), help="rate limit, requests/s (default: none)"
    )
    watch.add_argument(
        "--concurrency",
        type=_positive(int, "concurrency"),
        default=16,
        help="requests in flight at once (default 16)",
    )
    watch.add_argument(
        "--timeout",
        default="3600",
        help="each job's deadline in seconds (default 3600; none: no deadline)",
    )
    watch.add_argument(
        "--schedule",
        default="backoff",
        help="fixed:SECONDS or backoff:INITIAL[,FACTOR[,MAX]] (default backoff:1,1.5,30)",
    )
    watch.add_argument(
        "--reader",
        default="default",
        help="default, or json:state=PATH[,KEY=VALUE...] (see docs/cli.md)",
    )
    watch.add_argument("--no-progress", action="store_true", help="no live display")

    fake = commands.add_parser(
        "serve-fake",
        help="serve the fake job API alone, until Ctrl+C",
        description=(
            "Serve asyncpoll.testing's FakeJobAPI with uvicorn and print its URLs, until "
            f"Ctrl+C; for trying asyncpoll watch by hand. Needs {INSTALL_CLI}."
        ),
    )
    fake.add_argument("--version", action="version", version=version)
    fake.add_argument("--shape", choices=SHAPE_NAMES, default="status", help="(default status)")
    fake.add_argument("--host", default="127.0.0.1", help="(default 127.0.0.1)")
    fake.add_argument("--port", type=_port, default=0, help="(default 0: a free port)")
    fake.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="jobs to make at start, their status URLs printed one a line (default 0)",
    )
    fake.add_argument(
        "--duration",
        type=_duration,
        default=(2.0, 10.0),
        help="each job's running time: SECONDS or LOW,HIGH (default 2,10)",
    )
    fake.add_argument(
        "--pending", type=_duration, default=0.0, help="time queued first (default 0)"
    )
    fake.add_argument("--failure-rate", type=_share, default=0.1, help="(default 0.1)")
    fake.add_argument("--error-rate", type=_share, default=0.0, help="5xx answers (default 0)")
    fake.add_argument("--drop-rate", type=_share, default=0.0, help="dropped (default 0)")
    fake.add_argument(
        "--rate-limit", type=_positive(float, "rate"), help="429 above this many requests/s"
    )
    fake.add_argument("--token", help="require Authorization: Bearer TOKEN")
    fake.add_argument("--seed", type=int, help="seeds the jobs and faults")
    return parser


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``asyncpoll`` command; returns its exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return USAGE
        if args.command == "demo":
            return _demo(args)
        if args.command == "watch":
            return _watch(args)
        return _serve_fake(args)
    except UsageError as exc:
        _say(f"{exc}", usage=True)
        return USAGE
    except CommandError as exc:
        _say(str(exc))
        return FAILED
    except KeyboardInterrupt:
        _say("interrupted")
        return INTERRUPTED
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else FAILED
    except Exception as exc:  # one line, never a traceback
        cause = _single(exc)
        if isinstance(cause, BrokenPipeError):
            return _reader_gone()
        _say(f"error: {type(cause).__name__}: {cause}")
        return FAILED


def _single(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one error, else ``exc``."""
    # Duck-typed: (Base)ExceptionGroup is built in from Python 3.11, a backport before.
    while True:
        inner = getattr(exc, "exceptions", None)
        if not (isinstance(inner, tuple) and len(inner) == 1):
            return exc
        exc = inner[0]


def _reader_gone() -> int:
    """stdout's reader went away (``asyncpoll watch ... | head``): stop quietly, as
    Unix tools do; later writes go nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file (a test's StringIO): nothing to redirect
    return OK


def _say(message: str, *, usage: bool = False) -> None:
    message = printable(message)
    text = message if message.startswith(PROG) else f"{PROG}: {message}"
    if usage and "--help" not in text:
        text += " (see --help)"
    print(text, file=sys.stderr, flush=True)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _need_cli_extra(command: str) -> None:
    if not (_installed("starlette") and _installed("uvicorn")):
        raise CommandError(f"{command} needs the fake job API: {INSTALL_CLI}")


# ---------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    _need_cli_extra("asyncpoll demo")
    from ._demo import run_demo

    progress = not args.no_progress and _isatty(sys.stderr) and _installed("tqdm")
    with _log_to_stderr():
        anyio.run(
            lambda: run_demo(
                jobs=args.jobs, shape=args.shape, rate=args.rate, seed=args.seed, progress=progress
            )
        )
    return OK


@contextmanager
def _log_to_stderr(level: int = logging.ERROR) -> Iterator[None]:
    """Send asyncpoll's log records of ``level`` and above to stderr as one line each."""
    log = logging.getLogger("asyncpoll")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    handler.setLevel(level)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


@contextmanager
def _silenced() -> Iterator[None]:
    log = logging.getLogger("asyncpoll")
    disabled, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = disabled


# ---------------------------------------------------------------------- watch


def _read_ids(path: str) -> list[str]:
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
    except OSError as exc:
        raise UsageError(f"--ids {path!r}: {exc.strerror or exc}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def job_line(handle: JobHandle) -> str:
    """One finished job as a JSON line: job_id, url, state, attempts, result or error."""
    record: dict[str, Any] = {
        "job_id": handle.job_id,
        "url": redact_url(handle.url) if handle.url is not None else None,
        "state": handle.state.value,
        "attempts": handle.attempts,
    }
    error = handle.exception()
    if error is None:
        record["result"] = handle.result()
    else:
        record["error"] = str(error)
    line = json.dumps(record, default=_jsonable, ensure_ascii=False)
    # JSON escapes \x00-\x1f itself; the other characters a terminal or a log reader may
    # act on (\x7f, \x85, \u2028, \u2029, bidirectional overrides...) only occur inside
    # strings here, where a \u escape means the same character.
    return line if line.isprintable() else "".join(map(_json_char, line))


def _json_char(ch: str) -> str:
    return ch if ch.isprintable() else json.dumps(ch)[1:-1]


def _watch(args: argparse.Namespace) -> int:
    if args.status_url and not args.ids:
        raise UsageError(f"{PROG} watch: --status-url goes with --ids")
    if args.ids and not args.status_url:
        raise UsageError(f"{PROG} watch: --ids needs --status-url TEMPLATE")
    if args.status_url and "{job_id}" not in args.status_url:
        raise UsageError(f"{PROG} watch: --status-url must contain {{job_id}}")
    headers = dict(parse_header(h) for h in args.header)
    schedule = parse_schedule(args.schedule)
    reader = parse_reader(args.reader)
    timeout = _timeout(args.timeout)
    ids = _read_ids(args.ids) if args.ids else []
    for url in args.urls:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"{PROG} watch: {url!r} is not an http(s) URL")
    if not args.urls and not ids:
        raise UsageError(f"{PROG} watch: give status URLs, or --ids FILE and --status-url")
    progress = not args.no_progress and _isatty(sys.stderr) and _installed("tqdm")
    options: dict[str, Any] = {
        "headers": headers,
        "rate_limit": args.rate,
        "max_concurrency": args.concurrency,
        "schedule": schedule,
        "timeout": timeout,
        "reader": reader,
        "progress": progress,
    }
    with _log_to_stderr(logging.WARNING):
        return anyio.run(lambda: watch(args.urls, ids, status_url=args.status_url, options=options))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


async def watch(
    urls: Sequence[str],
    ids: Sequence[str] = (),
    *,
    status_url: str | None = None,
    options: dict[str, Any] | None = None,
    stop: anyio.Event | None = None,
) -> int:
    """Poll ``urls`` and ``ids``; print a JSON line per finished job; the exit code.

    Stops early, listing the jobs still running on stderr, on SIGINT or SIGTERM, or
    when ``stop`` is set (returns 130 then).
    """
    out = sys.stdout
    stop = stop if stop is not None else anyio.Event()
    failed = 0
    report: list[str] = []  # after an interruption, printed once the display has closed
    async with TaskPoller(status_url, **(options or {})) as poller:
        for url in urls:
            poller.add(redact_url(url), url=url)
        for job_id in ids:
            poller.add(job_id)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, stop)

            async def stopper() -> None:
                await stop.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(stopper)
            async for handle in poller.as_completed():
                print(job_line(handle), file=out, flush=True)
                if handle.state is not JobState.SUCCEEDED:
                    failed += 1
            tg.cancel_scope.cancel()
        if stop.is_set():
            running = poller.in_flight()
            report.append(f"{PROG} watch: interrupted; {len(running)} jobs still running")
            for handle in running:
                progress = f" {handle.progress:.0%}" if handle.progress is not None else ""
                shown = redact_url(handle.url) if handle.url else handle.job_id
                url = f" {shown}" if shown != handle.job_id else ""  # a URL job: once
                shown_id = printable(handle.job_id)
                report.append(f"  {shown_id} {handle.state.value}{progress}{url}")
            with _silenced():  # not "N jobs in flight cancelled": they are listed
                await poller.shutdown(wait=False, cancel_futures=True)
    if report:
        print("\n".join(report), file=sys.stderr, flush=True)
        return INTERRUPTED
    return FAILED if failed else OK


async def _stop_on_signal(stop: anyio.Event) -> None:
    """Set ``stop`` on SIGINT or SIGTERM (where signals can be received here)."""
    try:
        receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
        with receiver as signals:
            async for _ in signals:
                stop.set()
                return
    except (ValueError, RuntimeError, NotImplementedError):
        await anyio.sleep_forever()  # not the main thread, or no signals on this platform


# ---------------------------------------------------------------------- serve-fake


def _serve_fake(args: argparse.Namespace) -> int:
    _need_cli_extra("asyncpoll serve-fake")
    from .testing import FakeJobAPI, serve

    if args.jobs < 0:
        raise UsageError(f"{PROG} serve-fake: --jobs must be >= 0")
    try:
        api = FakeJobAPI(
            args.shape,
            duration=args.duration,
            pending=args.pending,
            failure_rate=args.failure_rate,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            rate_limit=args.rate_limit,
            token=args.token,
            seed=args.seed,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{PROG} serve-fake: {exc}") from None
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # Ctrl+C, politely
    except ValueError:  # not the main thread
        previous = None
    try:
        try:
            server = serve(api, host=args.host, port=args.port)
            url = server.start()
        except (OSError, RuntimeError) as exc:
            where = f"{args.host}:{args.port}"
            raise CommandError(f"{PROG} serve-fake: cannot serve on {where}: {exc}") from None
        try:
            shape = api.shape
            out = sys.stdout
            print(f"fake job API (shape {shape.name!r}) at {url}", file=out)
            print(f"  create: POST {url}{shape.create_url}", file=out)
            print(f"  status: GET {url}{shape.status_url}", file=out)
            print(f"  cancel: {shape.cancel_method} {url}{shape.cancel_url}", file=out)
            if shape.cancel_json is not None:
                print(f"    with the JSON body {json.dumps(shape.cancel_json)}", file=out)
            if api.token is not None:
                print(f"  every request needs -H 'Authorization: Bearer {api.token}'", file=out)
            if args.jobs:
                print(f"{args.jobs} jobs:", file=out)
                for _ in range(args.jobs):
                    job_id = api.add_job().id
                    print(url + shape.status_url.replace("{job_id}", job_id), file=out)
            print("Ctrl+C to stop", file=out, flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(f"stopped; {len(api.requests)} requests served", file=sys.stderr, flush=True)
            return OK
        finally:
            server.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
