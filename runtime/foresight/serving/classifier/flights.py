"""Identical concurrent requests for an uncached image share one backend call sequence, success or failure.

Within a process, the first request for a cache key starts a *flight* (an asyncio task that runs
the backend call with its retries) and every request for the same key that arrives while it runs
awaits the same outcome: the answer, or the same error (status, code, ``Retry-After``). Nothing
is retried once per waiting request. The flight is not tied to any one request: a request whose
deadline runs out gets its ``upstream_timeout`` while the flight goes on for the others (and
caches its answer if it is a real one).

Across processes (several workers of a pod, or replicas sharing Redis) a flight first claims the
key in the store (:meth:`~.store.base.ResultStore.claim_flight`, with a time to live of the
deadline plus a margin, so a crashed holder's claim lapses). A process that finds the key claimed
follows instead: it polls the store every :data:`POLL_SECONDS` until the result is cached or the
holder leaves its outcome (an uncached answer or an error, kept :data:`KEEP_SECONDS`) and answers
its requests with that. Single-process services skip the store (``shared=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import anyio

from .errors import ClassifierError, UpstreamTimeout, error_from_dict
from .store.base import ResultStore

__all__ = ["KEEP_SECONDS", "POLL_SECONDS", "Flights", "SharedAnswer"]

POLL_SECONDS = 0.05
"""How often a process following another's flight looks at the store."""
KEEP_SECONDS = 10.0
"""How long a finished flight's outcome stays in the store for followers."""
CLAIM_MARGIN_SECONDS = 5.0
"""A claim outlives its deadline by this much, then lapses (its holder died)."""


@dataclass(frozen=True)
class SharedAnswer:
    """A flight's answer, as every request that shared it returns it."""

    category: str
    confidence: float
    certain: bool
    backend: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SharedAnswer:
        return cls(
            str(data["category"]),
            float(data["confidence"]),
            bool(data["certain"]),
            str(data["backend"]),
            str(data["created_at"]),
        )


Lead = Callable[[], Awaitable[SharedAnswer]]


class Flights:
    """The flights of one process (one event loop). ``shared``: coordinate through ``store`` too."""

    def __init__(self, store: ResultStore, *, shared: bool, owner: str) -> None:
        self.store = store
        self.shared = shared
        self.owner = owner
        self._running: dict[str, asyncio.Future[tuple[SharedAnswer, bool]]] = {}
        self._waiting: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def waiting(self, key: str) -> int:
        """How many requests wait for the flight of ``key`` now."""
        return self._waiting.get(key, 0)

    async def run(self, key: str, lead: Lead, *, deadline: float) -> tuple[SharedAnswer, bool]:
        """The answer for ``key`` and whether it came from another request's backend call.

        ``lead`` makes the call when this request starts the flight; ``deadline`` (monotonic) is
        this request's: past it, :class:`UpstreamTimeout` (the flight itself goes on).
        """
        flight = self._running.get(key)
        joined = flight is not None
        if flight is None:
            loop = asyncio.get_running_loop()
            flight = loop.create_future()
            # Retrieved here so that an error nobody waits for any more is not logged as lost.
            flight.add_done_callback(lambda f: None if f.cancelled() else f.exception())
            self._running[key] = flight
            task = loop.create_task(self._fly(key, flight, lead, deadline))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timeout()
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            with anyio.fail_after(left):
                answer, led_here = await asyncio.shield(flight)
        except TimeoutError:
            raise _timeout() from None
        except ClassifierError as exc:
            # Each waiter raises its own copy of the one error (status, code, Retry-After...).
            err = error_from_dict(exc.to_dict())
            err.shared = joined or exc.shared
            raise err from None
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
        return answer, joined or not led_here

    async def _fly(
        self, key: str, flight: asyncio.Future[tuple[SharedAnswer, bool]], lead: Lead, deadline: float
    ) -> None:
        try:
            flight.set_result(await self._outcome(key, lead, deadline))
        except BaseException as exc:  # every waiter gets the same error, cancellation included
            if not flight.done():
                flight.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._running.pop(key, None)

    async def _outcome(self, key: str, lead: Lead, deadline: float) -> tuple[SharedAnswer, bool]:
        if not self.shared:
            return await lead(), True
        ttl = max(1.0, deadline - time.monotonic()) + CLAIM_MARGIN_SECONDS
        while True:
            if await anyio.to_thread.run_sync(self.store.claim_flight, key, self.owner, ttl):
                return await self._lead_and_publish(key, lead), True
            followed = await self._follow(key, deadline)
            if followed is not None:
                return followed, False
            # The holder let go without an outcome (it died): claim again.

    async def _lead_and_publish(self, key: str, lead: Lead) -> SharedAnswer:
        try:
            answer = await lead()
        except ClassifierError as exc:
            outcome: dict[str, Any] = {"error": exc.to_dict()}
            await anyio.to_thread.run_sync(self.store.finish_flight, key, self.owner, outcome, KEEP_SECONDS)
            raise
        except BaseException:
            # Not a request error (cancelled at shutdown): release the claim, leave no outcome.
            await anyio.to_thread.run_sync(self.store.finish_flight, key, self.owner, {}, 0.001)
            raise
        outcome = {"answer": answer.to_dict()}
        await anyio.to_thread.run_sync(self.store.finish_flight, key, self.owner, outcome, KEEP_SECONDS)
        return answer

    async def _follow(self, key: str, deadline: float) -> SharedAnswer | None:
        """Wait for another process's flight: its answer, its error (raised), or None when it lapsed."""
        while time.monotonic() < deadline:
            state = await anyio.to_thread.run_sync(self.store.flight, key)
            if state.result is not None:
                r = state.result
                return SharedAnswer(r.category, r.confidence, True, r.backend, r.created_at)
            if state.outcome is not None:
                if "error" in state.outcome:
                    err = error_from_dict(state.outcome["error"])
                    err.shared = True
                    raise err
                if "answer" in state.outcome:
                    return SharedAnswer.from_dict(state.outcome["answer"])
                return None
            if not state.running:
                return None
            await asyncio.sleep(POLL_SECONDS)
        raise _timeout()

    async def aclose(self) -> None:
        """Cancel the flights still running (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):  # cancelled or failed: nobody waits any more
                await task


def _timeout() -> UpstreamTimeout:
    return UpstreamTimeout(
        "the backend did not answer within the request's deadline; nothing was cached, retry later"
    )
