"""The facade's side of a store: opening it, resuming its jobs, handles of stored jobs,
resume tokens. ``TaskPoller`` owns one ``Durable`` when it is given ``store=``.

What a store receives and when is the engine's (``_journal``); this module turns stored
rows and tokens back into handles, with the callables a poller registered by name
(``named=``), and checks tokens, which may come from anywhere.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._codec import DOC_VERSION, TOKEN_KIND, Decoded, TokenError, decode
from ._handle import JobHandle
from ._journal import LEASE_MARGIN, Fleet, Journal, handle_doc, owner_id
from ._redact import SECRET_HEADERS, has_url_secrets, printable, quote_url, redact_url
from ._store import JobStore, StoredJob, open_store
from ._urls import origin_of, same_origin

if TYPE_CHECKING:
    from ._engine import Engine
    from ._options import Options

__all__ = [
    "Durable",
    "check_named",
    "decode_job",
    "handle_from",
    "make_token",
    "origin_check",
    "read_token",
]

logger = logging.getLogger("asyncpoll")


def check_named(named: Mapping[str, Any] | None) -> dict[str, Any]:
    """``named=`` as a dict, checked: names are non-empty text."""
    if named is None:
        return {}
    if not isinstance(named, Mapping):
        raise TypeError(f"named must be a mapping of names to callables, got {named!r}")
    for name in named:
        if not isinstance(name, str) or not name:
            raise ValueError(f"named= keys must be non-empty text, got {name!r}")
    return dict(named)


class Durable:
    """A poller's store, its journal and (shared stores) its fleet.

    Args:
        store: a store object or URL (``open_store``).
        named: ``name -> callable or schedule`` for what a store keeps by name.
        retention, flush_interval, lease, claim_interval: the poller's options.
    """

    def __init__(
        self,
        store: Any,
        named: Mapping[str, Any],
        *,
        retention: float | None,
        flush_interval: float,
        lease: float,
        claim_interval: float,
    ) -> None:
        self.store: JobStore = open_store(store)
        self.named = dict(named)
        self.retention = retention
        self.flush_interval = flush_interval
        self.lease = lease
        self.claim_interval = claim_interval
        self.journal: Journal | None = None
        self.fleet: Fleet | None = None
        #: Stored live jobs this poller cannot poll: job id -> why (a name not registered).
        self.unresumed: dict[str, str] = {}
        self._poller: Any = None
        self._scopes: list[anyio.CancelScope] = []
        self._stopped = False
        self._engine: Engine | None = None

    @property
    def shared(self) -> bool:
        return self.store.shared

    # ----------------------------------------------------------------- lifecycle

    async def open(self, poller: Any, engine: Engine, options: Options) -> None:
        """Open the store and hook it to the engine; resume the stored live jobs (a store
        of one poller) or set up the fleet (a shared store)."""
        self._poller, self._engine = poller, engine
        store = self.store
        await store.open()
        journal = self.journal = Journal(
            store, engine.clock, self.named, self.flush_interval, self.retention, owner_id()
        )
        engine.journal = journal
        journal.current = engine.registry.latest
        if store.shared:
            self.fleet = engine.fleet = Fleet(
                engine,
                journal,
                self.rebuild,
                lease=self.lease,
                claim_interval=self.claim_interval,
                capacity=options.max_concurrency,
                request_timeout=options.request_timeout or 0.0,
            )
            if self.lease <= LEASE_MARGIN + (options.request_timeout or 0.0):
                raise ValueError(
                    f"lease ({self.lease:g} s) must be longer than request_timeout "
                    f"({options.request_timeout:g} s) plus {LEASE_MARGIN:g} s: a poll must end "
                    "before its lease does"
                )
            limit = options.poller_limit
            if limit is not None:
                shared = store.limiter(limit, engine.clock)
                if shared is not None:
                    engine.sender.limiter = shared  # type: ignore[assignment]
            return
        resumed = 0
        for row in await store.live():
            handle = self.rebuild(row)
            if handle is not None:
                decoded_due = self._due_of(row)
                engine.track(handle, decoded_due, stored=True)
                resumed += 1
        if resumed or self.unresumed:
            logger.info(
                "resumed %d jobs from %s%s",
                resumed,
                store.url,
                f"; {len(self.unresumed)} cannot be polled here (see poller.unresumed)"
                if self.unresumed
                else "",
            )

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Run the store writer (and the fleet's claims) in ``tg`` until ``stop()``."""
        assert self.journal is not None
        tg.start_soon(self._until_stopped, self.journal.run, name="asyncpoll store writer")
        if self.fleet is not None:
            tg.start_soon(self._until_stopped, self.fleet.run, name="asyncpoll fleet claims")

    async def _until_stopped(self, run: Callable[[], Awaitable[None]]) -> None:
        with anyio.CancelScope() as scope:
            self._scopes.append(scope)
            if self._stopped:
                return  # stopped before this task began
            await run()

    def stop(self) -> None:
        """End the writer and the claims (the poller is closing; ``aclose()`` flushes)."""
        self._stopped = True
        for scope in self._scopes:
            scope.cancel()

    async def aclose(self) -> None:
        """Write what is queued and close the store (shielded: it runs while closing)."""
        with anyio.CancelScope(shield=True):
            if self.fleet is not None:
                self.fleet.release_all()
            if self.journal is not None:
                self.journal.stage()
            await self.store.aclose()

    # ----------------------------------------------------------------- rows -> handles

    def _due_of(self, row: StoredJob) -> float:
        assert self.journal is not None
        return row.due - self.journal.offset()

    def decode(self, doc: Any, where: str) -> Decoded:
        assert self.journal is not None
        return decode_job(doc, self.journal.offset(), self.named, where)

    def handle_from(self, decoded: Decoded, where: str) -> JobHandle:
        assert self._engine is not None
        return handle_from(decoded, self._engine, self._poller, self.named, where)

    def rebuild(self, row: StoredJob) -> JobHandle | None:
        """A handle for a stored row, or None (logged once) if it cannot be polled here."""
        where = f"stored job {row.job_id!r}"
        try:
            return self.handle_from(self.decode(json.loads(row.doc), where), where)
        except (LookupError, ValueError) as exc:
            if row.job_id not in self.unresumed:
                self.unresumed[row.job_id] = why = printable(str(exc))
                logger.error("cannot poll %s: %s", where, why)
            return None

    def lookup(self, job_id: str, row: StoredJob | None = None) -> JobHandle | None:
        """A handle for ``job_id`` from the store (live or finished), or None; ``row``:
        its row, when the caller has just read it (no second read)."""
        if row is None:
            row = self.store.get(job_id)
        if row is None:
            return None
        where = f"stored job {job_id!r}"
        handle = self.handle_from(self.decode(json.loads(row.doc), where), where)
        engine = self._engine
        assert engine is not None
        if row.terminal:
            engine.registry.add(handle)
            engine.finish_from_store(handle, row)
        else:
            # One poller: a job the store holds but this poller does not follow (another
            # process wrote it after this one opened) is polled from now on. A fleet: it
            # is followed, and resolves when a worker finishes it.
            engine.track(handle, self._due_of(row), stored=True)
        return handle


def origin_check(
    roots: list[str], origins: frozenset[tuple[str, str, int]]
) -> Callable[[str], bool]:
    """Whether a URL is of one of ``roots``' origins, or one of ``origins``."""

    def check(url: str) -> bool:
        if "://" not in url:
            return True  # a path: resolved against the poller's own base URL
        if any(same_origin(url, root) for root in roots):
            return True
        try:
            return origin_of(url) in origins
        except ValueError:
            return False

    return check


def _missing(name: str, what: str, where: str) -> str:
    return (
        f"{where} needs the {what} registered as {name!r}, which this poller does not "
        f"have: pass TaskPoller(named={{{name!r}: ...}})"
    )


def decode_job(doc: Any, offset: float, named: Mapping[str, Any], where: str) -> Decoded:
    """``_codec.decode``, with a schedule name that is not registered said plainly.

    Raises:
        TokenError: a field is wrong (named).
        LookupError: a name that is not registered (the message says which).
    """
    try:
        return decode(doc, offset=offset, named=named, where=where)
    except LookupError as exc:
        raise LookupError(_missing(str(exc.args[0]), "schedule", where)) from None


def handle_from(
    decoded: Decoded, engine: Engine, poller: Any, named: Mapping[str, Any], where: str
) -> JobHandle:
    """A handle over ``decoded``'s record, with its named callables.

    Raises:
        LookupError: a name that is not registered (the message says which).
    """
    found: dict[str, Any] = {}
    for what in ("check", "on_done", "on_progress"):
        name = getattr(decoded, what)
        if name is None:
            found[what] = None
            continue
        obj = named.get(name)
        if obj is None or not callable(obj):
            raise LookupError(_missing(name, what, where))
        found[what] = obj
    return JobHandle(
        engine,
        poller,
        decoded.record,
        check=found["check"],
        on_done=found["on_done"],
        on_progress=found["on_progress"],
        metadata=decoded.metadata,
    )


_TOKEN_URLS = ("url", "target", "origin", "fetch_url", "cancel_url")


def _token_urls(record: Any) -> list[tuple[str, str]]:
    """Every URL a job's requests may go to: the status, result and cancel URLs and the
    create request's (a resubmit sends it again, with credentials)."""
    urls = [(name, getattr(record, name)) for name in _TOKEN_URLS]
    if record.create is not None:
        urls.append(("create.url", record.create.url))
    return [(name, url) for name, url in urls if url is not None]


def make_token(
    handle: JobHandle,
    headers: Any,
    secret: frozenset[str],
    *,
    due: float,
    offset: float,
    named: Mapping[str, Any],
) -> str:
    """``handle``'s resume token (see ``JobHandle.resume_token``)."""
    if isinstance(headers, str) or not all(isinstance(h, str) for h in headers):
        raise TypeError(f"headers must be a list of header names, got {headers!r}")
    allowed = {h.lower() for h in headers}
    secrets = {h.lower() for h in (*SECRET_HEADERS, *secret)}
    refused = sorted(allowed & secrets)
    if refused:
        raise ValueError(f"a resume token never carries credentials: {refused} cannot be included")
    record = handle._record
    if record.state.value not in ("pending", "running"):
        raise ValueError(
            f"job {record.job_id!r} is {record.state.value}: a resume token is for a live job"
        )
    for name, url in _token_urls(record):
        if has_url_secrets(url):
            raise ValueError(
                f"job {record.job_id!r}: its {name} carries credentials "
                f"({redact_url(url)}); a resume token never carries credentials"
            )

    def keep(given: Mapping[str, str]) -> Mapping[str, str]:
        return {k: v for k, v in given.items() if k.lower() in allowed}

    names = {id(obj): name for name, obj in named.items()}
    doc = handle_doc(handle, due=due, offset=offset, names=names, headers=keep)
    return json.dumps({"kind": TOKEN_KIND, "version": DOC_VERSION, "job": doc})


def read_token(
    token: Any, origins: Callable[[str], bool], *, offset: float, named: Mapping[str, Any]
) -> Decoded:
    """Check a resume token; ``origins(url)``: whether the poller may poll ``url``.

    Raises:
        TokenError: not a token, a token of another version, a wrong field, or a URL
            of an origin the poller does not trust.
        LookupError: a name the token's job needs is not registered.
    """
    if not isinstance(token, (str, bytes)):
        raise TokenError(f"a resume token is JSON text, got {type(token).__name__}")
    try:
        outer = json.loads(token)
    except ValueError as exc:
        raise TokenError(f"a resume token must be JSON: {exc}") from None
    except RecursionError:
        raise TokenError("a resume token must be JSON nested less deeply") from None
    if not isinstance(outer, dict) or outer.get("kind") != TOKEN_KIND:
        raise TokenError(f"not an asyncpoll resume token (its 'kind' must be {TOKEN_KIND!r})")
    version = outer.get("version")
    if version != DOC_VERSION:
        raise TokenError(
            f"resume token version {version!r} is not known; this asyncpoll reads "
            f"version {DOC_VERSION}"
        )
    decoded = decode_job(outer.get("job"), offset, named, "resume token")
    record = decoded.record
    if record.state.value not in ("pending", "running"):
        raise TokenError(f"resume token: the job is {record.state.value}, not live")
    for name, url in _token_urls(record):
        if has_url_secrets(url):  # make_token() never writes one: not a token of ours
            raise TokenError(
                f"resume token: its {name} {quote_url(url)} carries credentials; a "
                "resume token never carries credentials"
            )
        if not origins(url):
            raise TokenError(
                f"resume token: its {name} {quote_url(url)} is not of an origin "
                "this poller polls (status_url, base_url, allowed_origins); pass "
                "trusted=True for a token from your own system"
            )
    return decoded
