"""Shared fixtures: every async test runs on asyncio and on trio, in virtual time.

On asyncio the event loop is looptime's, whose clock jumps to the next timer whenever
nothing is ready to run; on trio it is trio's MockClock with autojump. Either way a
test that waits 600 virtual seconds takes milliseconds, and ``anyio.current_time()``
readings are exact figures a test can assert. Each run stops at a virtual time bound,
so no test can loop forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import looptime
import pytest
import trio.testing

#: Virtual seconds after which a test's event loop gives up (asyncio backend).
VIRTUAL_END = 100_000.0


def _virtual_loop() -> Any:
    return looptime.new_event_loop(start=0.0, end=VIRTUAL_END)


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"loop_factory": _virtual_loop}), id="asyncio"),
        pytest.param(("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Run each ``@pytest.mark.anyio`` test on asyncio and on trio, in virtual time."""
    name, options = request.param
    if name == "trio":
        # A fresh MockClock per test, so virtual time starts at zero every time.
        options = {"clock": trio.testing.MockClock(autojump_threshold=0)}
    return name, options


Factory = Callable[..., Any]
