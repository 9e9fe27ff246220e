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
    if missing:
        logger.debug(
            "httpcore %s lacks %s: keeping its own request assignment",
            getattr(httpcore, "__version__", "?"),
            ", ".join(missing),
        )
        return False
    return True


def _one_at_a_time(connection: Any) -> bool:
    """True when ``connection`` is, or wraps (a proxy's does), an HTTP/1.1 connection:
    one request at a time. A connection still connecting, HTTP/2, or unknown: False."""
    for _ in range(3):
        if isinstance(connection, httpcore.AsyncHTTP11Connection):
            return True
        connection = getattr(connection, "_connection", None)
        if connection is None:
            return False
    return False


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
      is the same.) ``has_expired()`` is asked once per connection per pass, as there.
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
        if connection.is_closed():
            left -= 1
        elif connection.has_expired() or (connection.is_idle() and left > surplus_above):
            left -= 1
            closing.append(connection)
        else:
            kept.append(connection)
    if len(kept) != len(connections):
        connections[:] = kept

    queued = [request for request in pool._requests if request.is_queued()]
    if not queued:
        return closing

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
        for i, connection in enumerate(available):
            if connection.can_handle_request(origin):
                if _one_at_a_time(connection):
                    del available[i]
                held.add(id(connection))
                request.assign_to_connection(connection)
                break
        else:
            if len(connections) >= max_connections:
                if idle is None:
                    idle = collections.deque(c for c in connections if c.is_idle())
                while idle and id(idle[0]) in held:
                    idle.popleft()
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
    return closing
