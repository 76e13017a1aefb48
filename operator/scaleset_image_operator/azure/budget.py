"""A per-subscription request budget and throttle memory.

Compute limits requests per subscription (and per scale set); when several ScaleSetImages share a
subscription the operator must spend that budget deliberately. Each subscription gets a token bucket
(``per_minute`` refill, burst of the same size); a call waits for a token up to ``max_wait`` seconds and
otherwise fails as throttled. After Azure answers 429, the subscription is blocked until the
``Retry-After`` moment, so no other call spends requests (or acts on a read) while Azure says wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import Throttled


@dataclass
class _Bucket:
    tokens: float
    updated: float
    blocked_until: float = 0.0


@dataclass
class RequestBudget:
    per_minute: float = 600.0
    max_wait: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def _bucket(self, subscription: str) -> _Bucket:
        key = subscription.lower()
        bucket = self._buckets.get(key)
        now = self.clock()
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.per_minute, now)
        bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.updated) * self.per_minute / 60.0)
        bucket.updated = now
        return bucket

    def blocked_for(self, subscription: str) -> float:
        return max(0.0, self._bucket(subscription).blocked_until - self.clock())

    def block(self, subscription: str, seconds: float) -> None:
        bucket = self._bucket(subscription)
        bucket.blocked_until = max(bucket.blocked_until, self.clock() + seconds)

    async def spend(self, subscription: str) -> None:
        blocked = self.blocked_for(subscription)
        if blocked > 0:
            raise Throttled(
                f"subscription {subscription} is throttled by Azure for {blocked:.0f}s more", retry_after=blocked
            )
        bucket = self._bucket(subscription)
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) * 60.0 / self.per_minute
            if wait > self.max_wait:
                raise Throttled(
                    f"subscription {subscription}: the operator's request budget of {self.per_minute:g}"
                    f"/min is spent; next request in {wait:.0f}s",
                    retry_after=wait,
                )
            await asyncio.sleep(wait)
            bucket = self._bucket(subscription)
        bucket.tokens -= 1.0
