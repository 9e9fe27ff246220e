"""A job store in Redis, shared by a fleet of pollers: ``RedisStore``, ``RedisLimiter``.

``RedisStore("redis://host:6379/0")`` (``TaskPoller(store="redis://...")``) keeps every
job in one Redis database, where several pollers, on several machines, share them: a
worker polls the jobs it ``claim()``-s, under a lease (the rules are ``_store``'s).

The layout, every key under ``{prefix}`` (a hash tag: a Redis Cluster keeps them all in
one slot, so one script may touch them all):

- ``{prefix}:jobs``: a hash, job id -> the row as JSON ``[state, due, doc]``. One hash
  rather than a key per job, because a script must name every key it touches before it
  runs (``KEYS``), and ``claim()`` learns which jobs it takes only inside its script;
  one hash also makes ``get_many()`` a single ``HMGET``.
- ``{prefix}:due``: a sorted set of the live job ids, scored by when each may next be
  claimed: the row's ``due``, or the end of the lease that holds it.
- ``{prefix}:leases``: a hash, job id -> the worker holding its lease.
- ``{prefix}:finished``: a sorted set of the terminal job ids, scored by when each
  finished (for ``prune()``); a job is terminal exactly when it is in this set.
- ``{prefix}:cooldowns``: a hash, host -> the end of its cool-down.
- ``{prefix}:limiter:<rate>/<per>/<burst>``: the fleet's token bucket of one
  ``RateLimit`` (``limiter()``); it expires once full.

Every change that reads before it writes, or writes several keys, is one Lua script, so
it is atomic whatever the other workers do. Times are wall-clock epoch seconds, as the
workers pass them, except the rate limiter's: its token bucket runs in one script on
Redis's own clock (``TIME``), so workers whose clocks disagree cannot together exceed the
limit.

Redis runs on asyncio only (``redis.asyncio``); ``insert()`` and ``get()``, synchronous
by the protocol, use a second, blocking client.
"""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import anyio
import sniffio

from ._storedjob import StoredJob, _coalesce

try:
    import redis
    import redis.asyncio
    from redis.connection import parse_url
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "the Redis store needs the redis package: pip install 'asyncpoll[redis]'"
    ) from exc

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript, Script

    from ._clock import Clock
    from ._ratelimit import RateLimit

__all__ = ["RedisLimiter", "RedisStore"]

#: Rows per ``put`` script call in ``flush()``: the calls of one flush go in one
#: pipeline (one round trip), and no single call blocks the server for long.
FLUSH_CHUNK = 500
#: Terminal rows deleted per ``prune`` script call (the calls repeat until done).
PRUNE_CHUNK = 1000
#: Seconds an ended cool-down stays in Redis after ``cooldowns()`` stops returning it,
#: so a worker whose clock runs a little ahead does not delete a pause that others,
#: behind it, still honour.
COOLDOWN_GRACE = 60.0

_REDACTED = "***"

# KEYS: jobs, due, leases, finished. ARGV: id, value, due, terminal ("1"/"0").
# A live row there: return it, write nothing. Else write the row (a terminal row of the
# id is replaced) and return nil.
_INSERT = """
local id = ARGV[1]
local cur = redis.call('HGET', KEYS[1], id)
if cur and not redis.call('ZSCORE', KEYS[4], id) then
  return cur
end
redis.call('HSET', KEYS[1], id, ARGV[2])
redis.call('HDEL', KEYS[3], id)
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[4], ARGV[3], id)
else
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZADD', KEYS[2], ARGV[3], id)
end
return false
"""

# KEYS: jobs, due, leases, finished. ARGV: groups of five: id, value, due, terminal
# ("1"/"0"), owner ("" for none). Returns how many rows were written.
# - a terminal stored row is final: the put is dropped;
# - a terminal put is written over a live row whoever holds the lease, leaves `due` and
#   the leases and joins `finished`;
# - a live put by X is written if X holds the lease, a live put by nobody ("") if nobody
#   holds one; it releases the lease and the job is claimable again at the row's due.
_PUT = """
local written = 0
for i = 1, #ARGV, 5 do
  local id = ARGV[i]
  if not redis.call('ZSCORE', KEYS[4], id) then
    if ARGV[i + 3] == '1' then
      redis.call('HSET', KEYS[1], id, ARGV[i + 1])
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
      redis.call('ZADD', KEYS[4], ARGV[i + 2], id)
      written = written + 1
    else
      local holder = redis.call('HGET', KEYS[3], id)
      -- The holder's write releases its lease; a write without a lease is taken only
      -- while nobody holds one: a worker whose lease was lost (even if the worker that
      -- took it over has released it since) writes nothing.
      if (holder and holder == ARGV[i + 4]) or ((not holder) and ARGV[i + 4] == '') then
        redis.call('HSET', KEYS[1], id, ARGV[i + 1])
        redis.call('HDEL', KEYS[3], id)
        redis.call('ZADD', KEYS[2], ARGV[i + 2], id)
        written = written + 1
      end
    end
  end
end
return written
"""

# KEYS: jobs, due, leases. ARGV: owner, now, lease end, limit.
# The live ids due at `now` (a job under a lease is due once the lease ends), earliest
# first: each is leased to the owner until the lease end. Returns id, value, id, value...
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
local out = {}
for _, id in ipairs(ids) do
  local value = redis.call('HGET', KEYS[1], id)
  if value then
    redis.call('HSET', KEYS[3], id, ARGV[1])
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    out[#out + 1] = id
    out[#out + 1] = value
  else
    redis.call('ZREM', KEYS[2], id)  -- no row: a stray id
    redis.call('HDEL', KEYS[3], id)
  end
end
return out
"""

# KEYS: jobs, due. Every live row: id, value, id, value... in `due` order.
_LIVE = """
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local value = redis.call('HGET', KEYS[1], id)
  if value then
    out[#out + 1] = id
    out[#out + 1] = value
  end
end
return out
"""

# KEYS: jobs, finished. ARGV: before, limit. Deletes up to `limit` terminal rows that
# finished before `before`; returns how many.
_PRUNE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return #ids
"""

# KEYS: cooldowns. ARGV: host, until, host, until... A later end wins: a pause is
# never shortened.
_COOL = """
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or tonumber(cur) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""

# KEYS: cooldowns. ARGV: now, forget (delete pauses that ended before it).
# Returns host, until, ... of the pauses in force at `now`.
_COOLDOWNS = """
local all = redis.call('HGETALL', KEYS[1])
local now, forget = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 1, #all, 2 do
  local untl = tonumber(all[i + 1])
  if untl > now then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  elseif untl < forget then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
"""

# KEYS: the bucket. ARGV: rate (tokens a second), burst, want.
# A token bucket on the server's clock: takes every whole token there is, at most
# `want`. Returns {taken, wait, now}: wait, when nothing was taken, the microseconds
# until a token accrues (else 0); now, the server's time of the call in microseconds.
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens, last = tonumber(s[1]), tonumber(s[2])
if tokens == nil or last == nil then
  tokens, last = burst, now
elseif now > last then
  tokens = tokens + (now - last) * rate / 1000000
  last = now
end
if tokens > burst then tokens = burst end
local taken = math.min(want, math.floor(tokens + 1e-9))
local wait = 0
if taken >= 1 then
  tokens = tokens - taken
else
  taken = 0
  wait = math.ceil((1 - tokens) * 1000000 / rate)
  if wait < 1 then wait = 1 end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'last', string.format('%.17g', last))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {taken, wait, now}
"""


def redact_redis_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` query) as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        if colon:
            netloc = f"{user}:{_REDACTED}@{host}"
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, sep, _ = piece.partition("=")
            pieces.append(f"{name}={_REDACTED}" if sep and unquote(name) == "password" else piece)
        query = "&".join(pieces)
    if netloc == parts.netloc and query == parts.query:
        return url
    return parts._replace(netloc=netloc, query=query).geturl()


def _split_prefix(url: str) -> tuple[str, str | None]:
    """``url`` without its ``prefix=`` query parameter, and that parameter's value."""
    base, sep, rest = url.partition("?")
    if not sep:
        return url, None
    query, hash_, fragment = rest.partition("#")
    kept: list[str] = []
    found: list[str] = []
    for piece in query.split("&"):
        name, _, value = piece.partition("=")
        if unquote(name) == "prefix":
            found.append(unquote(value))
        elif piece:
            kept.append(piece)
    if len(found) > 1:
        raise ValueError(
            f"Redis store URL {redact_redis_url(url)!r} gives prefix= {len(found)} times"
        )
    rebuilt = base + ("?" + "&".join(kept) if kept else "") + hash_ + fragment
    return rebuilt, (found[0] if found else None)


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(
            f"a Redis store's prefix must be a non-empty name without braces, got {prefix!r}"
        )
    return prefix


def _encode(job: StoredJob) -> str:
    return json.dumps([job.state, job.due, job.doc], ensure_ascii=False)


def _decode(job_id: str, value: str) -> StoredJob:
    state, due, doc = json.loads(value)
    return StoredJob(job_id, state, float(due), doc)


def _score(value: float) -> str:
    """A float as Redis reads a score: exactly (``repr`` round-trips; ``inf`` too)."""
    return repr(float(value))


def _pairs(flat: list[Any]) -> list[StoredJob]:
    return [_decode(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


class RedisStore:
    """A job store in Redis: durable, and shared by every poller that opens it.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
            ``unix:///path/redis.sock``; the query may carry the ``redis`` client's
            options (``?socket_timeout=5``).
        prefix: the name every key starts with, so several stores (applications, test
            runs) share one database without seeing each other's jobs.

    Raises:
        ValueError: ``url`` is no Redis URL (the message names it, password redacted).

    ``RedisStore.from_url("redis://host/0?prefix=app")`` takes the prefix from the URL.
    ``open()`` on an event loop other than asyncio raises ``RuntimeError``.
    """

    shared = True

    def __init__(self, url: str, *, prefix: str = "asyncpoll") -> None:
        self.url = redact_redis_url(url)
        self.prefix = _check_prefix(prefix)
        try:
            options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ValueError(f"not a Redis URL: {self.url!r} ({exc})") from None
        if "prefix" in options:
            raise ValueError(
                f"Redis store URL {self.url!r} carries prefix=: use "
                "RedisStore.from_url(url) to read it, or RedisStore(url, prefix=...)"
            )
        self._raw_url = url
        tag = "{" + prefix + "}"
        self._jobs = f"{tag}:jobs"
        self._due = f"{tag}:due"
        self._leases = f"{tag}:leases"
        self._finished = f"{tag}:finished"
        self._cooldowns = f"{tag}:cooldowns"
        self._bucket = f"{tag}:limiter"
        self._row_keys = [self._jobs, self._due, self._leases, self._finished]
        self._queue: dict[str, tuple[StoredJob, str | None]] = {}
        self._cool: dict[str, float] = {}
        self._sync: redis.Redis | None = None  # made on first use, open() or not
        self._insert_sync: Script | None = None
        self._async: redis.asyncio.Redis | None = None  # while open

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """The store of ``url``, whose ``?prefix=name`` (if any) is the key prefix."""
        if not isinstance(url, str):
            raise TypeError(f"a Redis store URL must be a string, got {url!r}")
        rest, prefix = _split_prefix(url)
        return cls(rest, prefix=prefix) if prefix is not None else cls(rest)

    # ----------------------------------------------------------------- connection

    async def open(self) -> None:
        if self._async is not None:
            raise RuntimeError(f"the store {self.url} is open already; make a new one")
        try:
            library = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            library = "no event loop"
        if library != "asyncio":
            raise RuntimeError(
                f"the Redis store runs on asyncio only (the redis client's asyncio API), "
                f"not on {library}; run the poller on asyncio, or use another store"
            )
        # No timeout on the event loop's side unless the URL asks for one
        # (?socket_timeout=5): a virtual-time loop would fire it while a reply is on its
        # way (the loop sees nothing to do but wait). Options in the URL win.
        self._async = redis.asyncio.Redis.from_url(
            self._raw_url,
            decode_responses=True,
            socket_timeout=None,
            socket_connect_timeout=None,
        )
        self._get_live: AsyncScript = self._async.register_script(_LIVE)
        self._put: AsyncScript = self._async.register_script(_PUT)
        self._claim: AsyncScript = self._async.register_script(_CLAIM)
        self._prune: AsyncScript = self._async.register_script(_PRUNE)
        self._cool_put: AsyncScript = self._async.register_script(_COOL)
        self._cool_get: AsyncScript = self._async.register_script(_COOLDOWNS)
        self._take: AsyncScript = self._async.register_script(_BUCKET)
        await self._async.ping()

    async def aclose(self) -> None:
        """Write the queued writes, then disconnect; closing twice does nothing. The
        store may be opened again (a poller made anew resumes its jobs)."""
        client = self._async
        if client is None:
            return
        try:
            await self.flush()
        finally:
            self._async = None
            await client.aclose()
            if self._sync is not None:
                self._sync.close()
                self._sync = self._insert_sync = None

    def _client(self) -> redis.asyncio.Redis:
        if self._async is None:
            raise RuntimeError(f"the store {self.url} is not open")
        return self._async

    def _sync_client(self) -> redis.Redis:
        """The blocking client of ``insert()`` and ``get()``, which work unopened too
        (they need no event loop)."""
        if self._sync is None:
            self._sync = redis.Redis.from_url(self._raw_url, decode_responses=True)
            self._insert_sync = self._sync.register_script(_INSERT)
        return self._sync

    # ----------------------------------------------------------------- rows

    def insert(self, job: StoredJob) -> StoredJob | None:
        self._sync_client()
        assert self._insert_sync is not None
        if job.job_id in self._queue:
            current = self.get(job.job_id)
            if current is not None and not current.terminal:
                return current
        found = self._insert_sync(
            keys=self._row_keys,
            args=[job.job_id, _encode(job), _score(job.due), "1" if job.terminal else "0"],
        )
        if found is not None:
            return _decode(job.job_id, found)
        self._queue.pop(job.job_id, None)
        return None

    def _overlay(self, job_id: str, value: str | None) -> StoredJob | None:
        stored = None if value is None else _decode(job_id, value)
        queued = self._queue.get(job_id)
        if queued is not None and (stored is None or not stored.terminal):
            return queued[0]
        return stored

    def get(self, job_id: str) -> StoredJob | None:
        value: str | None = self._sync_client().hget(self._jobs, job_id)  # type: ignore[assignment]
        return self._overlay(job_id, value)

    async def get_many(self, job_ids: Iterable[str]) -> list[StoredJob | None]:
        ids = list(job_ids)
        if not ids:
            return []
        values: list[str | None] = await self._client().hmget(self._jobs, ids)  # type: ignore[assignment]
        return [self._overlay(job_id, value) for job_id, value in zip(ids, values, strict=True)]

    def put(self, job: StoredJob, owner: str | None = None) -> None:
        _coalesce(self._queue, job, owner)

    @property
    def pending(self) -> int:
        """How many writes are queued (rows and cool-downs)."""
        return len(self._queue) + len(self._cool)

    async def flush(self) -> None:
        """Write every queued row and cool-down in one round trip (a pipeline of
        scripts, ``FLUSH_CHUNK`` rows each). On failure the writes are queued again
        (behind any queued since) and the error is raised."""
        if not self._queue and not self._cool:
            return
        client = self._client()
        batch, self._queue = self._queue, {}
        cool, self._cool = self._cool, {}
        try:
            async with client.pipeline(transaction=False) as pipe:
                args: list[str] = []
                for job_id, (job, owner) in batch.items():
                    args += (
                        job_id,
                        _encode(job),
                        _score(job.due),
                        "1" if job.terminal else "0",
                        owner or "",
                    )
                    if len(args) >= 5 * FLUSH_CHUNK:
                        await self._put(keys=self._row_keys, args=args, client=pipe)
                        args = []
                if args:
                    await self._put(keys=self._row_keys, args=args, client=pipe)
                if cool:
                    flat = [x for host, until in cool.items() for x in (host, _score(until))]
                    await self._cool_put(keys=[self._cooldowns], args=flat, client=pipe)
                await pipe.execute()
        except BaseException:
            newer = self._queue
            self._queue = batch
            for job, owner in newer.values():
                _coalesce(self._queue, job, owner)
            for host, until in self._cool.items():
                cool[host] = max(until, cool.get(host, -math.inf))
            self._cool = cool
            raise

    async def live(self) -> list[StoredJob]:
        """Every live row, leased or not (queued writes flushed first), earliest
        ``row.due`` first. A row's ``due`` is what its last write said, not the end of
        a lease that holds it."""
        await self.flush()
        rows = _pairs(await self._get_live(keys=[self._jobs, self._due], client=self._client()))
        rows.sort(key=lambda r: r.due)
        return rows

    async def prune(self, before: float) -> int:
        await self.flush()
        client, total = self._client(), 0
        while True:
            count = int(
                await self._prune(
                    keys=[self._jobs, self._finished],
                    args=[_score(before), PRUNE_CHUNK],
                    client=client,
                )
            )
            total += count
            if count < PRUNE_CHUNK:
                return total

    async def finished_since(self, since: float) -> list[str]:
        """Ids in the ``finished`` sorted set scored ``since`` or later (one round trip)."""
        await self.flush()
        found = await self._client().zrangebyscore(self._finished, _score(since), "+inf")
        return [str(job_id) for job_id in found]

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[StoredJob]:
        """Lease up to ``limit`` live jobs due at ``now`` to ``owner`` until
        ``now + lease``, earliest first. A job under a lease (anyone's, ``owner``'s too)
        is claimable once the lease has ended; they come in the order they became
        claimable (a lease that ended counts from its end, not from the row's ``due``).
        Queued writes are flushed first."""
        if not owner:
            raise ValueError("claim() needs a non-empty owner")
        if limit <= 0:
            return []
        await self.flush()
        flat = await self._claim(
            keys=[self._jobs, self._due, self._leases],
            args=[owner, _score(now), _score(now + lease), int(limit)],
            client=self._client(),
        )
        return _pairs(flat)

    # ----------------------------------------------------------------- cool-downs

    def put_cooldown(self, host: str, until: float) -> None:
        """Queue: requests to ``host`` pause until ``until`` (a later end wins)."""
        self._cool[host] = max(until, self._cool.get(host, -math.inf))

    async def cooldowns(self, now: float) -> dict[str, float]:
        """The pauses in force at ``now`` (ending after it). Pauses that ended over
        ``COOLDOWN_GRACE`` seconds before ``now`` are deleted from Redis."""
        flat = await self._cool_get(
            keys=[self._cooldowns],
            args=[_score(now), _score(now - COOLDOWN_GRACE)],
            client=self._client(),
        )
        return {flat[i]: float(flat[i + 1]) for i in range(0, len(flat), 2)}

    # ----------------------------------------------------------------- rate limit

    def limiter(self, limit: RateLimit, clock: Clock) -> RedisLimiter:
        """The fleet-wide rate limiter: one token bucket in Redis for every poller of
        this store (every ``RedisStore`` of the same database and prefix)."""
        return RedisLimiter(self, limit, clock)

    async def _take_tokens(self, limit: RateLimit, want: int) -> tuple[int, int, int]:
        """One call of the bucket script: (tokens taken, at most ``want``; µs to wait
        when none was; the server's time in µs)."""
        taken, wait, now = await self._take(
            keys=[f"{self._bucket}:{limit.rate!r}/{limit.per!r}/{limit.burst}"],
            args=[repr(limit.per_second), limit.burst, want],
            client=self._client(),
        )
        return int(taken), int(wait), int(now)

    def __repr__(self) -> str:
        return f"<RedisStore {self.url} prefix={self.prefix!r}, {self.pending} writes queued>"


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event: anyio.Event | None = None  # set when granted or made the head
        self.granted = False


class RedisLimiter:
    """A rate limit for a whole fleet: one token bucket in Redis, on Redis's clock.

    Every grant comes from one run of a Lua script that reads the server's clock,
    brings the bucket (``{prefix}:limiter:...``: tokens and the time of the last call)
    up to it and takes the whole tokens there are; when there is none it says how long
    until one accrues. The grants of every worker are thus one token bucket's on one
    clock: in any window of ``t`` seconds of the server's clock at most
    ``burst + rate * t`` requests pass, the fleet over, however the workers' own clocks
    disagree.

    In one process, waiters queue first come, first served; only the head calls Redis,
    asking for a token for each waiter (at most ``MAX_BATCH``, 1 by default), hands
    those it gets to the waiters in order, and, when it got none, sleeps on the
    poller's ``clock`` for as long as the script said and tries again.

    ``grants``: set it to a list and the server time (epoch seconds) of each grant is
    appended to it (for tests).
    """

    #: The most tokens the head asks for in one call. 1 by default: a process then
    #: holds at most one granted token not yet sent, so requests reach the server close
    #: to their grants' spacing. With more, a process that stalls (CPU contention) right
    #: after a batch sends it late, on top of the tokens other workers took meanwhile:
    #: tests/test_store_processes.py saw arrivals exceed the bound by 2 to 5 requests
    #: (3 workers, 400/s, burst 20, 10 ms slack) at 4 and 64. Raise it on an instance
    #: for rates above a process's ~4,000 Redis round trips a second.
    MAX_BATCH = 1

    def __init__(self, store: RedisStore, limit: RateLimit, clock: Clock) -> None:
        self._store = store
        self._limit = limit
        self._clock = clock
        self._queue: collections.deque[_Waiter] = collections.deque()
        self.waiting = 0
        self.grants: list[float] | None = None

    @property
    def limit(self) -> RateLimit:
        """The configured ``RateLimit``."""
        return self._limit

    async def acquire(self, deadline: float = math.inf) -> bool:
        """Wait for this request's turn and a token of the fleet's bucket.

        Args:
            deadline: a reading of the poller's clock; if the next try would come at or
                after it, sleep until it and return False. A waiter behind others finds
                out at its turn (it returns False then if the deadline has passed).

        Returns:
            True once the request may go; False if the deadline came first.
        """
        queue, clock = self._queue, self._clock
        me = _Waiter()
        queue.append(me)
        self.waiting += 1
        try:
            while not me.granted:
                if queue[0] is not me:
                    me.event = anyio.Event()
                    await me.event.wait()
                    if not me.granted and queue[0] is me and clock.now() >= deadline:
                        return False  # the deadline passed in the queue
                    continue
                want = min(len(queue), self.MAX_BATCH)
                taken, wait_us, server_us = await self._store._take_tokens(self._limit, want)
                # Waiters that left during the call lose their tokens (never too many).
                for _ in range(min(taken, len(queue))):
                    waiter = queue.popleft()
                    waiter.granted = True
                    if waiter.event is not None and waiter is not me:
                        waiter.event.set()
                    if self.grants is not None:
                        self.grants.append(server_us / 1e6)
                if me.granted:
                    break
                at = clock.now() + wait_us / 1e6
                if at >= deadline:
                    await clock.sleep_until(deadline)
                    return False
                await clock.sleep_until(at)
            return True
        finally:
            self.waiting -= 1
            if not me.granted:
                queue.remove(me)
            if queue and queue[0].event is not None:
                queue[0].event.set()  # the next in line becomes the head

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        limit = self._limit
        return (
            f"<RedisLimiter {limit.rate:g}/{limit.per:g}s burst={limit.burst} "
            f"on {self._store.url} waiting={self.waiting}>"
        )
