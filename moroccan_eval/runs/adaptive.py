"""``limits.concurrency: auto``: find how many requests an endpoint takes at once.

The number of requests in flight starts low and doubles after each round of answers
(slow start), then grows by one per round; it is halved when a request needed a retry
(a 429, a 5xx, a timeout: the endpoint pushes back) and lowered by one when latency climbs
past twice the fastest answer seen (requests queue inside the server). TCP's congestion
control and the AIMD limiters of API clients work the same way.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..adapters.base import AUTO_MAXIMUM, AUTO_START
from ..io import JSONObject
from .requests import Limiter


class AdaptiveConcurrency:
    """A gate of requests in flight whose size follows the endpoint's answers."""

    def __init__(self, start: int = AUTO_START, maximum: int = AUTO_MAXIMUM):
        self.limit = start
        self.maximum = maximum
        self.active = 0
        self.peak = start
        self.backoffs = 0
        self._slow_start = True
        self._answered = 0  # answers since the limit last changed
        self._fastest_ms: float | None = None
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for a free place among the requests in flight."""
        while self.active >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            await waiter
        self.active += 1

    def release(self, latency_ms: float | None, pushed_back: bool) -> None:
        """A request ended: ``pushed_back`` when it needed a retry or failed."""
        self.active -= 1
        if pushed_back:
            self.limit = max(1, self.limit // 2)
            self.backoffs += 1
            self._slow_start, self._answered = False, 0
        elif latency_ms is not None:
            fastest = self._fastest_ms = min(self._fastest_ms or latency_ms, latency_ms)
            if latency_ms > 2 * fastest and fastest > 0:
                self.limit = max(1, self.limit - 1)
                self._slow_start, self._answered = False, 0
            else:
                self._answered += 1
                if self._answered >= self.limit:
                    grown = self.limit * 2 if self._slow_start else self.limit + 1
                    self.limit = min(self.maximum, grown)
                    self._answered = 0
        self.peak = max(self.peak, self.limit)
        for _ in range(max(0, self.limit - self.active)):
            if not self._waiting:
                break
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def summary(self) -> JSONObject:
        """What the manifest records of the search."""
        return {"final": self.limit, "peak": self.peak, "backoffs": self.backoffs}


class AdaptiveLimiter:
    """A model's limiter with ``concurrency: auto``: its rate limit, then a place in the
    adaptive gate, held for one attempt (a retry queues again behind the others)."""

    def __init__(self, inner: Limiter, gate: AdaptiveConcurrency):
        self.inner, self.gate = inner, gate

    async def wait(self) -> None:
        await self.inner.wait()
        await self.gate.acquire()

    def done(self, latency_ms: float | None, pushed_back: bool) -> None:
        self.inner.done(latency_ms, pushed_back)
        self.gate.release(latency_ms, pushed_back)
