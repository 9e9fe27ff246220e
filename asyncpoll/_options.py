"""``Options``: every ``TaskPoller`` setting, validated where it is declared.

Each field carries its validator; a bad value raises an error that names the argument.
The engine reads the validated, normalised values from here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from ._ratelimit import RateLimit
from ._redact import SECRET_HEADERS
from ._schedule import Backoff, Fixed, Schedule, backoff
from ._transport import DEFAULT_MAX_BODY
from ._urls import normalize_origins

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_RESULT_BODY",
    "DEFAULT_RETRY_SCHEDULE",
    "DEFAULT_SCHEDULE",
    "Options",
    "check_callback",
    "check_schedule",
    "check_seconds",
    "job_key",
]

#: How a healthy job is polled unless told otherwise.
DEFAULT_SCHEDULE: Final = backoff(initial=1.0, factor=1.5, max=30.0, jitter=0.1)
#: How a failed status request (a transient error or a 429 without a hint) is retried.
DEFAULT_RETRY_SCHEDULE: Final = backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.1)
#: Largest result document ``fetch_result=True`` reads, in decoded bytes.
DEFAULT_MAX_RESULT_BODY: Final = 64 * 1024 * 1024


# ----------------------------------------------------------------------- checks


def check_seconds(name: str, value: Any, *, allow_none: bool = True) -> float | None:
    """``value`` as float seconds > 0 (or None where allowed), else an error naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds{' or None' * allow_none}, got {value!r}"
        )
    if not (value > 0 and not math.isnan(value)):
        raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
    return float(value)


def check_schedule(name: str, value: object) -> Schedule:
    """``value`` if it is a schedule, else a TypeError naming ``name``."""
    if type(value) in (Fixed, Backoff):
        return value  # type: ignore[return-value]  # the common case, without a Protocol check
    if not isinstance(value, Schedule):
        raise TypeError(
            f"{name} must be a schedule such as asyncpoll.fixed(2.0) or asyncpoll.backoff(), "
            f"got {value!r}"
        )
    return value


def check_callback(name: str, value: object) -> None:
    """A TypeError naming ``name`` unless ``value`` is None or callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable taking the JobHandle, got {value!r}")


def job_key(job_id: object) -> str:
    """A job id as the registry keys it: a non-empty string (an int is turned into one)."""
    if isinstance(job_id, str):
        if not job_id:
            raise ValueError("job_id must be a non-empty string")
        return job_id
    if isinstance(job_id, int) and not isinstance(job_id, bool):
        return str(job_id)
    raise TypeError(f"job_id must be a string (or an int), got {job_id!r}")


# ----------------------------------------------------------------------- validators


def _seconds(allow_none: bool = True) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_seconds(attribute.name, value, allow_none=allow_none)

    return check


def _count(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number >= 1, got {value!r}")


def _schedule(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_schedule(attribute.name, value)


def _callback(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_callback(attribute.name, value)


def _template(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or "{job_id}" not in value):
        raise ValueError(
            f"{attribute.name} must be a URL template containing '{{job_id}}', got {value!r}"
        )


def _min_interval(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"min_interval must be a number of seconds >= 0, got {value!r}")


def _resubmit(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"resubmit must be a whole number >= 0, got {value!r}")


def check_method(name: str, value: Any) -> str:
    """``value`` as an upper-case HTTP method, else an error naming ``name``."""
    if not isinstance(value, str) or not value.isalpha():
        raise ValueError(f"{name} must be an HTTP method such as 'DELETE', got {value!r}")
    return value.upper()


def _method(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_method(attribute.name, value)


def _json_body(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_json(attribute.name, value)


def check_json(name: str, value: Any) -> Any:
    """``value`` if it can be sent as a JSON body, else a TypeError naming ``name``."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be JSON-serialisable ({exc}), got {value!r}") from None
    return value


def _reader(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"reader must be a callable (Response) -> Status, got {value!r}")


def _headers(value: Mapping[str, str] | None) -> dict[str, str]:
    return dict(value or {})


def _names(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("hint_headers must be a list of header names, not one string")
    return tuple(str(name).lower() for name in value)


def _origins(value: Iterable[str] | str) -> frozenset[tuple[str, str, int]]:
    return normalize_origins([value] if isinstance(value, str) else value)


def _secrets(value: Iterable[str]) -> frozenset[str]:
    return frozenset(SECRET_HEADERS | {str(name).lower() for name in value})


def _limits(
    value: RateLimit | float | Mapping[str, RateLimit | float] | None,
) -> RateLimit | Mapping[str, RateLimit] | None:
    if isinstance(value, Mapping):
        limits: dict[str, RateLimit] = {}
        for host, limit in value.items():
            coerced = RateLimit.coerce(limit)
            if coerced is None:
                raise TypeError(f"rate_limit[{host!r}] must be a RateLimit or a number, not None")
            limits[str(host).lower()] = coerced
        return limits
    return RateLimit.coerce(value)


# ----------------------------------------------------------------------- options


@attrs.frozen(kw_only=True)
class Options:
    """A poller's settings; ``TaskPoller``'s docstring says what each one means."""

    status_url: str | None = attrs.field(default=None, validator=_template)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    rate_limit: RateLimit | Mapping[str, RateLimit] | None = attrs.field(
        default=None, converter=_limits
    )
    max_concurrency: int = attrs.field(default=64, validator=_count)
    schedule: Schedule = attrs.field(default=DEFAULT_SCHEDULE, validator=_schedule)
    retry_schedule: Schedule = attrs.field(default=DEFAULT_RETRY_SCHEDULE, validator=_schedule)
    timeout: float | None = attrs.field(default=3600.0, validator=_seconds())
    on_done: Any = attrs.field(default=None, validator=_callback)
    on_progress: Any = attrs.field(default=None, validator=_callback)
    on_stall: Any = attrs.field(default=None, validator=_callback)
    reader: Any = attrs.field(default=None, validator=_reader)
    max_errors: int = attrs.field(default=5, validator=_count)
    request_timeout: float | None = attrs.field(default=30.0, validator=_seconds())
    min_interval: float = attrs.field(default=0.0, validator=_min_interval)
    max_interval: float | None = attrs.field(default=None, validator=_seconds())
    max_retry_after: float = attrs.field(default=300.0, validator=_seconds(allow_none=False))
    hint_headers: tuple[str, ...] = attrs.field(default=(), converter=_names)
    allowed_origins: frozenset[tuple[str, str, int]] = attrs.field(default=(), converter=_origins)
    secret_headers: frozenset[str] = attrs.field(default=(), converter=_secrets)
    fetch_result: bool = attrs.field(default=False, converter=bool)
    max_body: int = attrs.field(default=DEFAULT_MAX_BODY, validator=_count)
    max_result_body: int = attrs.field(default=DEFAULT_MAX_RESULT_BODY, validator=_count)
    resubmit: int = attrs.field(default=0, validator=_resubmit)
    stall_timeout: float | None = attrs.field(default=None, validator=_seconds())
    fail_on_stall: bool = attrs.field(default=False, converter=bool)
    cancel_method: str = attrs.field(default="DELETE", validator=_method)
    cancel_url: str | None = attrs.field(default=None, validator=_template)
    cancel_json: Any = attrs.field(default=None, validator=_json_body)
    create_timeout: float | None = attrs.field(default=None, validator=_seconds())
    idempotency_key: bool = attrs.field(default=False, converter=bool)
    transport: str = "auto"
    base_url: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.max_interval is not None and self.max_interval < self.min_interval:
            raise ValueError(
                f"max_interval ({self.max_interval!r}) must be >= min_interval "
                f"({self.min_interval!r})"
            )

    @property
    def poller_limit(self) -> RateLimit | None:
        """The poller-wide limit (None when none, or when limits are per host)."""
        return self.rate_limit if isinstance(self.rate_limit, RateLimit) else None

    @property
    def host_limits(self) -> Mapping[str, RateLimit] | None:
        """Per-host limits (``"*"``: every other host), or None."""
        limit = self.rate_limit
        return None if limit is None or isinstance(limit, RateLimit) else limit
