"""A job API on loopback that misbehaves at the socket level, on purpose and on a seed.

``ChaosServer`` speaks just enough HTTP/1.1 (keep-alive, Content-Length) from raw sockets,
one thread a connection, so that it can do what no HTTP framework lets a server do:
refuse connections, reset them before or in the middle of an answer, hang, trickle a
body a byte at a time, lie in Content-Length, write a stray second response, send a gzip
bomb. ``GET /jobs/<id>`` answers ``{"status": "running"}`` until the job's ``polls``-th
answered poll, then its terminal answer: ``{"status": "succeeded", "result": {...}}`` or
``{"status": "failed", "error": "..."}``. Any id is a job. A few jobs misbehave for the
whole run: a *flipper* answers ``running`` again for two polls after its first terminal
answer, a *vanisher* answers 404 from its second poll on.

Faults are drawn per request from ``random.Random(f"{seed}:{job}:{n}")`` (the job's
n-th request), so a run's faults depend on the seed and each job's own history, never on
the order in which concurrent requests arrive. Some faults last a while once drawn: a
refusal closes the listening socket for ``outage`` seconds, a 5xx burst answers the next
``burst`` requests with the same status, a 429 storm answers every request 429 for
``storm`` seconds, each with the storm's form of ``Retry-After``.

Every request is logged with its kernel arrival time (``SO_TIMESTAMPNS`` on the socket,
``time.time()``'s clock), so a rate limit can be checked on what reached the server.
A second listener, ``foreign``, is another origin: redirects point there, and it logs
whatever reaches it (nothing should). Every loop is bounded by socket timeouts and the
stop flag; ``stop()`` closes every socket and joins every thread.

Run it alone for a soak: ``python tests/servers/chaos.py --seed 1 --rate 0.2``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import email.utils
import gzip
import json
import math
import random
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "FAULTS",
    "WEIGHTS",
    "Arrival",
    "ChaosServer",
    "Cooldown",
    "Job",
]

#: Every fault the server can inject, by name.
FAULTS = (
    "refused",  # the listening socket closes for `outage` seconds (connections refused)
    "reset_before",  # the connection is reset after the request, before any answer
    "reset_midway",  # reset in the middle of the answer's body
    "hang",  # the request is read and never answered (until the client gives up)
    "trickle",  # the answer is written a byte at a time
    "burst_5xx",  # the next `burst` requests get one of 500, 502, 503 (no hint), 504
    "storm_429",  # every request gets 429 for `storm` seconds; Retry-After in one form
    "bad_json",  # malformed JSON, status 200
    "short_body",  # truncated JSON: Content-Length promises more than is sent
    "html_200",  # an HTML error page with status 200
    "wrong_type",  # a JSON body sent as text/html
    "huge_body",  # a body far over the poller's size cap
    "gzip_bomb",  # 64 MiB of zeros in a 64 KiB gzip body
    "deep_json",  # JSON nested 100,000 levels deep
    "redirect_loop",  # a 307 to itself, for ever
    "redirect_away",  # a 307 to the same path on the foreign origin
    "stray",  # the answer, then a stray second response on the kept-alive connection
    "unknown_word",  # {"status": "<a word no reader knows>"}
)

#: The default weights: a refusal, a 5xx burst and a 429 storm hold back every job for a
#: while (a storm also halves the poller's adaptive rate), so they come less often.
WEIGHTS = dict.fromkeys(FAULTS, 1.0) | {"refused": 0.3, "burst_5xx": 0.3, "storm_429": 0.15}

#: The forms of Retry-After a 429 storm uses, each for a whole storm.
RETRY_AFTER_FORMS = ("seconds", "date", "negative", "huge", "garbage")

_SO_TIMESTAMPNS = 35  # Linux: SO_TIMESTAMPNS (SCM_TIMESTAMPNS has the same number)
_TIMESPEC = struct.Struct("@qq")
_REASONS = {
    200: "OK",
    302: "Found",
    307: "Temporary Redirect",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_GZIP_BOMB: bytes | None = None
_BOMB_SIZE = 64 * 1024 * 1024


def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzipped (about 64 KiB), made once."""
    global _GZIP_BOMB
    if _GZIP_BOMB is None:
        _GZIP_BOMB = gzip.compress(bytes(_BOMB_SIZE), compresslevel=9)
    return _GZIP_BOMB


class Arrival:
    """One request as the server read it."""

    __slots__ = ("at", "fault", "headers", "job", "method", "origin", "path")

    def __init__(
        self, at: float, origin: str, method: str, path: str, headers: dict[str, str]
    ) -> None:
        self.at = at  #: kernel arrival time (time.time()'s clock)
        self.origin = origin  #: "main" or "foreign"
        self.method = method
        self.path = path
        self.headers = headers  #: lower-cased names
        self.job: str | None = None
        self.fault: str | None = None  #: the fault this request got, or None

    def __repr__(self) -> str:
        return f"Arrival({self.at:.6f}, {self.origin}, {self.method} {self.path}, {self.fault})"


class Cooldown:
    """A cool-down the server announced: no request should arrive in ``[start, end)``."""

    __slots__ = ("end", "form", "sent")

    def __init__(self, sent: float, end: float, form: str) -> None:
        self.sent = sent  #: when the 429 was written (time.time())
        self.end = end  #: when the announced pause ends (time.time())
        self.form = form


class Job:
    """One job's script (from the seed) and what the server answered it."""

    __slots__ = (
        "answer",
        "answered",
        "flipper",
        "id",
        "polls",
        "requests",
        "terminal_served",
        "vanisher",
    )

    def __init__(self, job_id: str, seed: int, failure_rate: float, odd_rate: float) -> None:
        rng = random.Random(f"{seed}:job:{job_id}")
        self.id = job_id
        self.polls = rng.randint(1, 4)  #: answered polls before the terminal answer
        odd = rng.random()
        self.flipper = odd < odd_rate / 2
        self.vanisher = not self.flipper and odd < odd_rate
        if self.vanisher:
            self.polls = max(self.polls, 2)
        self.answer: dict[str, Any]
        if rng.random() < failure_rate:
            self.answer = {"status": "failed", "error": f"job {job_id} failed: {rng.random()}"}
        else:
            self.answer = {
                "status": "succeeded",
                "result": {"job": job_id, "value": rng.randrange(10**9)},
            }
        self.requests = 0  #: requests for this job (each draws its faults)
        self.answered = 0  #: polls answered without a fault
        self.terminal_served = 0  #: complete terminal answers written

    def body(self) -> tuple[int, dict[str, Any]]:
        """The status and document of the next fault-free answer."""
        self.answered += 1
        n = self.answered
        if self.vanisher and n >= 2:
            return 404, {"error": f"no job {self.id}"}
        if n < self.polls:
            return 200, {"status": "running", "progress": n / self.polls}
        if self.flipper and self.polls < n <= self.polls + 2:
            return 200, {"status": "running"}
        return 200, self.answer


def _reason(code: int) -> str:
    return _REASONS.get(code, "Unknown")


def _head(
    code: int, length: int, *, content_type: str = "application/json", extra: str = ""
) -> bytes:
    return (
        f"HTTP/1.1 {code} {_reason(code)}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n"
        f"{extra}\r\n"
    ).encode("ascii")


def _response(code: int, body: bytes, **kwargs: Any) -> bytes:
    return _head(code, len(body), **kwargs) + body


def _json(code: int, doc: Any) -> bytes:
    return _response(code, json.dumps(doc).encode())


def _reset(conn: socket.socket) -> None:
    """Close ``conn`` with a TCP RST (SO_LINGER with a zero timeout)."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.close()


class ChaosServer:
    """The misbehaving job API; use as a context manager (``start()``/``stop()``).

    Args:
        seed: every fault and every job's script follows from it.
        rate: the chance that a request draws a fault (0 for a well-behaved server).
        faults: the faults to draw from: names (drawn uniformly) or names with weights
            (default: ``WEIGHTS``, every fault, lasting ones less often).
        polls_range, failure_rate: jobs' scripts (see ``Job``).
        odd_rate: the share of jobs that flip back to running or vanish (404).
        outage, burst, storm: how long a refusal, a 5xx burst and a 429 storm last.
        retry_after: the seconds a storm's ``Retry-After`` announces (as seconds or a
            date); ``huge`` announces 10**9, ``negative`` -5, ``garbage`` a word.
        trickle: seconds between two bytes of a trickled answer.
        forms: the forms of ``Retry-After`` storms draw from (``RETRY_AFTER_FORMS``).
        max_body: the client's body cap; ``huge_body`` sends four times as much.
        log: keep an ``Arrival`` per request (a soak of many jobs may turn it off).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        rate: float = 0.2,
        faults: Iterable[str] | Mapping[str, float] | None = None,
        failure_rate: float = 0.1,
        odd_rate: float = 0.04,
        outage: float = 0.2,
        burst: int = 5,
        storm: float = 0.2,
        retry_after: float = 1.0,
        trickle: float = 0.002,
        forms: Iterable[str] = RETRY_AFTER_FORMS,
        max_body: int = 1024 * 1024,
        log: bool = True,
    ) -> None:
        if faults is None:
            faults = WEIGHTS
        weights = dict(faults) if isinstance(faults, Mapping) else dict.fromkeys(faults, 1.0)
        self.faults = tuple(weights)
        self.weights = tuple(weights.values())
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
        self.seed = seed
        self.rate = rate
        self.failure_rate = failure_rate
        self.odd_rate = odd_rate
        self.outage = outage
        self.burst = burst
        self.storm = storm
        self.retry_after = retry_after
        self.trickle = trickle
        self.forms = tuple(forms)
        if not self.forms or set(self.forms) - set(RETRY_AFTER_FORMS):
            raise ValueError(f"forms= takes some of {RETRY_AFTER_FORMS}, got {self.forms}")
        self.max_body = max_body
        self.keep_log = log
        self.jobs: dict[str, Job] = {}
        self.arrivals: list[Arrival] = []  #: every request, main and foreign
        self.cooldowns: list[Cooldown] = []  #: every pause a 429 announced in seconds or a date
        self.injected: collections.Counter[str] = collections.Counter()  #: faults by kind
        self.requests = 0  #: requests read on the main origin
        self.foreign_requests: list[Arrival] = []  #: what reached the foreign origin
        self.connections = 0  #: connections accepted (both origins)
        self.open = 0  #: connections open now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._burst_left = 0
        self._burst_code = 500
        self._storm_until = 0.0
        self._storm_form = "seconds"
        self._outage_until = 0.0
        self._listen_main = self._listener(0)
        self.port = self._listen_main.getsockname()[1]
        self._listen_foreign = self._listener(0)
        self.foreign_port = self._listen_foreign.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.foreign_url = f"http://127.0.0.1:{self.foreign_port}"

    # ---------------------------------------------------------------- lifecycle

    @staticmethod
    def _listener(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(512)
        sock.settimeout(0.05)
        return sock

    def start(self) -> ChaosServer:
        for target, args in (
            (self._accept_main, ()),
            (self._accept, (self._listen_foreign, "foreign")),
        ):
            thread = threading.Thread(target=target, args=args, daemon=True, name="chaos-accept")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=10)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
        for sock in (self._listen_main, self._listen_foreign):
            with contextlib.suppress(OSError):
                sock.close()
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"chaos server threads still running: {alive}")

    def __enter__(self) -> ChaosServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_main(self) -> None:
        """The main origin's accept loop; a refusal closes the socket for a while."""
        while not self._stop.is_set():
            if self._outage_until and time.time() >= self._outage_until:
                with self._lock:
                    self._outage_until = 0.0
                self._listen_main = self._relisten()
            if self._outage_until:
                self._stop.wait(0.01)
                continue
            self._accept_one(self._listen_main, "main")

    def _relisten(self) -> socket.socket:
        """The main listener again, on the same port: tried until it binds (another
        socket may hold the port a moment), or until the stop (the closed one, then)."""
        while not self._stop.is_set():
            try:
                return self._listener(self.port)
            except OSError:
                self._stop.wait(0.01)
        return self._listen_main

    def _accept(self, listener: socket.socket, origin: str) -> None:
        while not self._stop.is_set():
            self._accept_one(listener, origin)

    def _accept_one(self, listener: socket.socket, origin: str) -> None:
        try:
            conn, _ = listener.accept()
        except (TimeoutError, OSError):
            return
        conn.settimeout(0.05)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        with self._lock:
            self.connections += 1
            self.open += 1
            self._conns.add(conn)
        thread = threading.Thread(
            target=self._serve, args=(conn, origin), daemon=True, name="chaos-conn"
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    # ---------------------------------------------------------------- one connection

    def _serve(self, conn: socket.socket, origin: str) -> None:
        try:
            self._converse(conn, origin)
        except OSError:
            pass
        finally:
            with self._lock:
                self.open -= 1
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _read(self, conn: socket.socket) -> tuple[bytes, float] | None:
        """Bytes from ``conn`` with their kernel arrival time; None at EOF or stop."""
        while not self._stop.is_set():
            try:
                data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(_TIMESPEC.size))
            except TimeoutError:
                continue
            if not data:
                return None
            stamp = time.time()
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                    stamp = sec + nsec / 1e9
            return data, stamp
        return None

    def _converse(self, conn: socket.socket, origin: str) -> None:
        buffer = b""
        stamp = 0.0
        while not self._stop.is_set():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                got = self._read(conn)
                if got is None:
                    return
                data, at = got
                if not buffer:
                    stamp = at  # a request's time is that of its first bytes
                buffer += data
                continue
            head, buffer = buffer[:end].decode("latin-1"), buffer[end + 4 :]
            lines = head.split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            while len(buffer) < length:
                got = self._read(conn)
                if got is None:
                    return
                buffer += got[0]
            buffer = buffer[length:]
            # A pipelined request left in the buffer shares the bytes' time; otherwise
            # the next read stamps the next request.
            arrival = Arrival(stamp, origin, method, path, headers)
            if not self._answer(conn, arrival):
                return

    # ---------------------------------------------------------------- answers

    def _answer(self, conn: socket.socket, arrival: Arrival) -> bool:
        """Answer one request; False when the connection is finished."""
        if arrival.origin == "foreign":
            with self._lock:
                self.arrivals.append(arrival)
                self.foreign_requests.append(arrival)
            conn.sendall(_json(404, {"error": "this is another origin"}))
            return True
        parts = arrival.path.split("?")[0].strip("/").split("/")
        if len(parts) < 2 or parts[0] != "jobs":
            conn.sendall(_json(404, {"error": f"no route {arrival.path}"}))
            return True
        job_id = parts[1]
        arrival.job = job_id
        with self._lock:
            self.requests += 1
            job = self.jobs.get(job_id)
            if job is None:
                job = self.jobs[job_id] = Job(job_id, self.seed, self.failure_rate, self.odd_rate)
            job.requests += 1
            fault = self._draw(job, arrival)
            arrival.fault = fault
            if fault is not None:
                self.injected[fault] += 1
            if self.keep_log:
                self.arrivals.append(arrival)
            if fault is None and arrival.method == "DELETE":  # a remote cancel
                job.answer = {"status": "cancelled"}
                job.polls = job.answered = 0
                job.flipper = job.vanisher = False
            code, doc = job.body() if fault is None else (0, None)
            if fault is None and code == 200 and doc is job.answer:
                job.terminal_served += 1
        if fault is None:
            conn.sendall(_json(code, doc))
            return True
        return self._misbehave(conn, fault, job, arrival)

    def _draw(self, job: Job, arrival: Arrival) -> str | None:
        """The fault for this request (under the lock), starting any lasting one."""
        now = time.time()
        if self._storm_until > now:
            return "storm_429"
        if self._burst_left > 0:
            self._burst_left -= 1
            return "burst_5xx"
        rng = random.Random(f"{self.seed}:{job.id}:{job.requests}")
        if not self.faults or rng.random() >= self.rate:
            return None
        fault = rng.choices(self.faults, self.weights)[0]
        if fault == "burst_5xx":
            self._burst_left = self.burst - 1
            self._burst_code = rng.choice((500, 502, 503, 504))
        elif fault == "storm_429":
            self._storm_until = now + self.storm
            self._storm_form = rng.choice(self.forms)
        elif fault == "refused":
            self._outage_until = now + self.outage
        return fault

    def _retry_after(self) -> str:
        """The storm's Retry-After, and the cool-down it announces (logged)."""
        now = time.time()
        form = self._storm_form
        if form == "seconds":
            value = str(math.ceil(self.retry_after))
            end = now + math.ceil(self.retry_after)
        elif form == "date":
            when = math.ceil(now) + math.ceil(self.retry_after)
            value = email.utils.formatdate(when, usegmt=True)
            end = float(when)
        elif form == "negative":
            return "-5"
        elif form == "huge":
            value = str(10**9)
            end = math.inf
        else:
            return "in a little while"
        with self._lock:
            self.cooldowns.append(Cooldown(now, end, form))
        return value

    def _misbehave(self, conn: socket.socket, fault: str, job: Job, arrival: Arrival) -> bool:
        if fault == "refused" or fault == "reset_before":
            if fault == "refused":
                with contextlib.suppress(OSError):
                    self._listen_main.close()
            _reset(conn)
            return False
        if fault == "reset_midway":
            body = json.dumps({"status": "running", "note": "x" * 200}).encode()
            conn.sendall(_head(200, len(body)) + body[: len(body) // 2])
            _reset(conn)
            return False
        if fault == "hang":
            while not self._stop.is_set():  # until the client gives up (or the stop)
                if self._read(conn) is None:
                    break
            return False
        if fault == "trickle":
            with self._lock:
                code, doc = job.body()
            for byte in _json(code, doc):
                if self._stop.wait(self.trickle):
                    return False
                conn.sendall(bytes((byte,)))
            if code == 200 and doc is job.answer:  # served only once it is all written
                with self._lock:
                    job.terminal_served += 1
            return True
        if fault == "burst_5xx":
            conn.sendall(_json(self._burst_code, {"error": "server error (burst)"}))
            return True
        if fault == "storm_429":
            retry = self._retry_after()
            conn.sendall(
                _response(429, b'{"error": "slow down"}', extra=f"Retry-After: {retry}\r\n")
            )
            return True
        if fault == "bad_json":
            conn.sendall(_response(200, b'{"status": "runn'))
            return True
        if fault == "short_body":
            conn.sendall(_head(200, 100) + b'{"status": "succeeded", "result": {"jo')
            _reset(conn)
            return False
        if fault == "html_200":
            page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
            conn.sendall(_response(200, page, content_type="text/html"))
            return True
        if fault == "wrong_type":
            conn.sendall(_response(200, b'{"status": "running"}', content_type="text/html"))
            return True
        if fault == "huge_body":
            size = 4 * self.max_body
            conn.sendall(_head(200, size))
            chunk = b" " * 65536
            for _ in range(size // len(chunk)):
                conn.sendall(chunk)
            return True
        if fault == "gzip_bomb":
            bomb = gzip_bomb()
            conn.sendall(_response(200, bomb, extra="Content-Encoding: gzip\r\n"))
            return True
        if fault == "deep_json":
            conn.sendall(_response(200, b"[" * 100_000 + b"]" * 100_000))
            return True
        if fault == "redirect_loop":
            conn.sendall(_response(307, b"", extra=f"Location: {arrival.path}\r\n"))
            return True
        if fault == "redirect_away":
            location = f"{self.foreign_url}{arrival.path}"
            conn.sendall(_response(307, b"", extra=f"Location: {location}\r\n"))
            return True
        if fault == "stray":
            stray = _json(200, {"status": "succeeded", "result": {"job": "stray"}})
            conn.sendall(_json(200, {"status": "running"}) + stray)
            return True
        assert fault == "unknown_word", fault
        conn.sendall(_json(200, {"status": "frobnicating"}))
        return True

    # ---------------------------------------------------------------- reading the log

    def forget(self) -> None:
        """Drop the jobs and every log (a long run's batches, memory measured)."""
        with self._lock:
            self.jobs.clear()
            self.arrivals.clear()
            self.cooldowns.clear()
            self.foreign_requests.clear()
            self.injected.clear()
            self.requests = 0

    def sockets(self) -> set[int]:
        """The file descriptors of the server's listening sockets."""
        return {self._listen_main.fileno(), self._listen_foreign.fileno()}

    def main_arrivals(self) -> list[float]:
        """Kernel arrival times of every request to the main origin, sorted."""
        return sorted(a.at for a in self.arrivals if a.origin == "main")

    def expected(self, job_id: str) -> Mapping[str, Any]:
        """The terminal answer of ``job_id``."""
        return self.jobs[job_id].answer


@contextlib.contextmanager
def running(**options: Any) -> Iterator[ChaosServer]:
    """A started ``ChaosServer`` (``options`` as for it), stopped afterwards."""
    server = ChaosServer(**options)
    with server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.2)
    args = parser.parse_args()
    with running(seed=args.seed, rate=args.rate, log=False) as server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
