"""httpcore's connection pool, assigning each idle HTTP/1.1 connection once.

Imported by ``_http`` only. ``assign(pool)`` replaces the body of httpcore's
``AsyncConnectionPool._assign_requests_to_connections`` for the pools the poller makes
(never for a client a caller passes in); ``supported(pool)`` says whether the installed
httpcore has the internals it reads and writes.

Written against httpcore 1.0.x (read in 1.0.9; ``pyproject.toml`` allows ``httpcore>=1.0``).
Another version with the same attributes gets it too; one without them keeps httpcore's
own assignment (see ``supported``).
"""

from __future__ import annotations

import collections
import logging
from typing import Any

import httpcore

try:
    from httpcore._async.http11 import HTTPConnectionState
except ImportError:  # another httpcore: supported() says False
    HTTPConnectionState = None  # type: ignore[assignment,misc]

logger = logging.getLogger("asyncpoll")

__all__ = ["assign", "supported"]

#: What ``assign`` reads and calls on the pool (instance attributes are looked for on the
#: pool itself), on each queued request (httpcore's ``AsyncPoolRequest``), and the one
#: connection class it recognises.
_POOL_METHODS = ("_assign_requests_to_connections", "create_connection")
_POOL_ATTRIBUTES = ("_connections", "_requests", "_max_connections", "_max_keepalive_connections")
_REQUEST_ATTRIBUTES = ("request", "connection", "assign_to_connection", "is_queued")


def supported(pool: Any) -> bool:
    """True when ``pool`` has httpcore 1.0's internals that ``assign`` works on."""
    try:
        from httpcore._async.connection_pool import AsyncPoolRequest
    except ImportError:
        missing: list[str] = ["httpcore._async.connection_pool.AsyncPoolRequest"]
    else:
        missing = [n for n in _POOL_METHODS if not callable(getattr(type(pool), n, None))]
        missing += [n for n in _POOL_ATTRIBUTES if not hasattr(pool, n)]
        missing += [n for n in _REQUEST_ATTRIBUTES if not hasattr(AsyncPoolRequest, n)]
        # request and connection are set in __init__, not on the class.
        missing = [n for n in missing if n not in ("request", "connection")]
        if not isinstance(getattr(pool, "_connections", None), list) or not isinstance(
            getattr(pool, "_requests", None), list
        ):
            missing.append("_connections/_requests lists")
    if not hasattr(httpcore, "AsyncHTTP11Connection"):
        missing.append("AsyncHTTP11Connection")
    if getattr(HTTPConnectionState, "CLOSED", None) is None:
        missing.append("httpcore._async.http11.HTTPConnectionState.CLOSED")
    if missing:
        logger.debug(
            "httpcore %s lacks %s: keeping its own request assignment",
            getattr(httpcore, "__version__", "?"),
            ", ".join(missing),
        )
        return False
    return True


def _http11(connection: Any) -> Any:
    """The HTTP/1.1 connection ``connection`` is, or wraps (a proxy's does); else None
    (still connecting, HTTP/2, or unknown)."""
    for _ in range(3):
        if isinstance(connection, httpcore.AsyncHTTP11Connection):
            return connection
        connection = getattr(connection, "_connection", None)
        if connection is None:
            return None
    return None


def _one_at_a_time(connection: Any) -> bool:
    """True when ``connection`` is, or wraps, an HTTP/1.1 connection: one request at a
    time. A connection still connecting, HTTP/2, or unknown: False."""
    return _http11(connection) is not None


def _closed_now(connection: Any) -> None:
    """Mark an HTTP/1.1 connection closed at once, as the first step of its ``aclose()``
    does (state CLOSED, so a request that starts on it is refused with
    ``ConnectionNotAvailable`` and queues again); the pool closes its socket later."""
    opened = _http11(connection)
    if opened is not None:
        opened._state = HTTPConnectionState.CLOSED


def assign(pool: Any) -> list[Any]:
    """httpcore 1.0's ``_assign_requests_to_connections``, without handing one HTTP/1.1
    connection to several requests. Returns the connections to close.

    What stays as httpcore's:

    - First a sweep over the connections, in order: a closed one is dropped, an expired
      one (``has_expired()``: keep-alive expiry, or a readable idle socket, the server
      having closed it) is dropped and closed, and an idle one is dropped and closed while
      the pool holds more than ``max_keepalive_connections``. (httpcore counts all of the
      pool's connections there, ``len([c.is_idle() for c in ...])``, not the idle ones;
      the count is kept, as the number of connections left, so which connections close
      is the same.) ``has_expired()`` is asked once per connection per pass, as there
      (but see 5).
    - Then the queued requests, oldest first (FIFO), each take the first connection, in
      pool order, that ``can_handle_request(origin)`` and ``is_available()``; else a new
      connection if there are fewer than ``max_connections``; else the first idle
      connection is closed to make room for a new one. A connection that
      ``is_available()`` for several requests (HTTP/2, or one still connecting that may
      turn out HTTP/2) is given to as many as httpcore gives it to.

    What differs, and why:

    1. An HTTP/1.1 connection (``_one_at_a_time``) held by a request (assigned to it in
       this pass or an earlier one, and not yet given back: its response not closed) is
       not available to another. httpcore's ``is_available()`` stays true from the
       assignment until the request starts sending, so it hands the same idle connection
       to every queued request of a pass, and again in the passes that run before the
       woken request starts; all but one fail with ``ConnectionNotAvailable`` and queue
       again, each failure a further pass. Here the next request takes the next
       connection, or a new one, or waits: no retry and the same outcome.
    2. The connection closed to make room for another origin is never one a request
       holds (httpcore may close it, and that request retries); when every idle
       connection is held, the request waits for the next pass, as it would at
       ``max_connections`` with nothing idle.
    3. Cost: the sweep is O(n) in connections (httpcore's idle count is O(n) per idle
       connection); each connection is asked ``is_available()`` once per pass rather than
       once per queued request; and the pass stops early once no connection is left to
       give, nor room to open one.
    4. Every HTTP/1.1 connection the pass drops is marked closed before the pass returns
       (``_closed_now``). httpcore closes the dropped connections after the pass, one
       after the other, awaiting each; a request given one of them in an earlier pass
       (held, idle: woken, its task not yet run) and which has waited longer than
       keep-alive expiry, runs in between, finds a later one still idle, sends on it,
       and the close under its read raises ``httpx.ReadError`` (``ClosedResourceError``;
       trio: "another task closed this fd"). Marked closed, the connection refuses it
       with ``ConnectionNotAvailable`` and the request queues again, as httpcore means
       it to. (httpcore's own pass has the same race.)
    5. A connection with a ``stale()`` method (``_http._NoUnread``) is asked that in the
       sweep instead of ``has_expired()``: everything but the idle socket's readability
       (a syscall a connection, a pass). The socket is looked at with ``server_closed()``
       when an idle HTTP/1.1 connection is about to be given to a request; if readable
       (the server closed it, or sent what no request asked for), it is dropped and
       closed, and the request takes the next one. Once per hand-out rather than once
       per idle connection per pass. Not asked again while the request that holds it
       has not started on it (httpcore asks in every pass until then): a server that
       closes it in that time fails that request, as one closing it after the last
       pass does in httpcore. (Looking at held connections in each sweep cost 10 % of
       the CPU in benchmarks/profile.py: with 100 in flight many are held at a time.)

    A connection httpcore cannot reuse after all (the server closed it after the sweep)
    still raises ``ConnectionNotAvailable`` and its request queues again, as in httpcore.
    """
    closing: list[Any] = []
    connections: list[Any] = pool._connections

    # The sweep: closed, expired and surplus idle connections.
    left = len(connections)  # httpcore's len(self._connections) at each step
    surplus_above = pool._max_keepalive_connections
    kept = []
    for connection in connections:
        stale = getattr(connection, "stale", None)
        if connection.is_closed():
            left -= 1
        elif (connection.has_expired() if stale is None else stale()) or (
            connection.is_idle() and left > surplus_above
        ):
            left -= 1
            closing.append(connection)
        else:
            kept.append(connection)
    if len(kept) != len(connections):
        connections[:] = kept

    queued = [request for request in pool._requests if request.is_queued()]
    if not queued:
        return _marked(closing)

    held = {id(request.connection) for request in pool._requests if request.connection is not None}
    available = [
        connection
        for connection in connections
        if connection.is_available() and not (id(connection) in held and _one_at_a_time(connection))
    ]
    idle: collections.deque[Any] | None = None  # made when first needed
    max_connections = pool._max_connections

    for request in queued:
        origin = request.request.url.origin
        given = None
        i = 0
        while i < len(available):
            connection = available[i]
            if not connection.can_handle_request(origin):
                i += 1
                continue
            if _one_at_a_time(connection):
                del available[i]
                server_closed = getattr(connection, "server_closed", None)
                if server_closed is not None and server_closed():
                    connections.remove(connection)
                    closing.append(connection)
                    continue
            given = connection
            break
        if given is not None:
            held.add(id(given))
            request.assign_to_connection(given)
        else:
            if len(connections) >= max_connections:
                if idle is None:
                    idle = collections.deque(c for c in connections if c.is_idle())
                while idle and (id(idle[0]) in held or idle[0] not in connections):
                    idle.popleft()  # held, or dropped above (its server closed it)
                if not idle:
                    if not available:
                        break  # nothing to give, no room: no later request is served either
                    continue
                victim = idle.popleft()
                connections.remove(victim)
                closing.append(victim)
                if victim in available:
                    available.remove(victim)
            connection = pool.create_connection(origin)
            connections.append(connection)
            held.add(id(connection))
            request.assign_to_connection(connection)
            if connection.is_available() and not _one_at_a_time(connection):
                available.append(connection)
    return _marked(closing)


def _marked(closing: list[Any]) -> list[Any]:
    for connection in closing:
        _closed_now(connection)
    return closing
