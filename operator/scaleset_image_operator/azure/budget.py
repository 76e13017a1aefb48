"""The operator's own request budget per subscription and Compute policy, and Azure's throttle memory.

Compute limits requests per subscription (and per resource) separately for each policy: 800 scale-set GETs,
360 VM lists ("high-cost" GETs), 5,000 operation reads per minute, and so on (``COMPUTE_LIMITS_PER_MINUTE``;
https://learn.microsoft.com/en-us/azure/virtual-machines/compute-throttling-limits).
The operator allows itself ``share`` of each, so that it never meets a ``429`` on its own and leaves the rest of
the subscription's budget to everything else that runs there.

Each (subscription, policy) pair is a token bucket holding one minute of its budget. ``spend`` reserves its
tokens at once, before it waits, so concurrent callers queue one behind the other instead of all waking at the
same moment; a wait longer than ``max_wait`` gives the tokens back and raises ``BudgetSpent``, which ends only
that pass: the operator's budget being spent says nothing about Azure. Only Azure's own ``429`` blocks the
subscription (``block``) until its ``Retry-After`` moment, so that no call spends requests while Azure says wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import BudgetSpent, Throttled

COMPUTE_LIMITS_PER_MINUTE: dict[str, float] = {
    "GetVMScaleSet": 800.0,
    "HighCostGetVMScaleSet": 360.0,
    "GetOperation": 5000.0,
    "UpdateVMScaleSet": 500.0,
    "VMScaleSetActions": 500.0,
    "GetImage": 2000.0,
}
"""Compute's per-subscription refill per minute for the policies the operator's requests are counted under."""

SCALE_SET_GET = "GetVMScaleSet"
VM_LIST = "HighCostGetVMScaleSet"
OPERATION_GET = "GetOperation"
MODEL_WRITE = "UpdateVMScaleSet"
UPGRADE = "VMScaleSetActions"
IMAGE_LIST = "GetImage"


@dataclass
class _Bucket:
    capacity: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.capacity / 60.0)
        self.updated = now


@dataclass
class RequestBudget:
    share: float = 0.5
    """Fraction of Compute's per-subscription limit of every policy the operator allows itself (above 1 only
    against a simulator whose clock runs faster than Azure's)."""
    max_wait: float = 5.0
    """Longest a call waits for its tokens before the pass is ended and requeued."""
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    _blocked_until: dict[str, float] = field(default_factory=dict)

    def per_minute(self, policy: str) -> float:
        return COMPUTE_LIMITS_PER_MINUTE[policy] * self.share

    def _bucket(self, subscription: str, policy: str) -> _Bucket:
        key = (subscription.lower(), policy)
        bucket = self._buckets.get(key)
        now = self.clock()
        if bucket is None:
            capacity = self.per_minute(policy)
            bucket = self._buckets[key] = _Bucket(capacity, capacity, now)
        bucket.refill(now)
        return bucket

    def available(self, subscription: str, policy: str) -> float:
        return self._bucket(subscription, policy).tokens

    def blocked_for(self, subscription: str) -> float:
        return max(0.0, self._blocked_until.get(subscription.lower(), 0.0) - self.clock())

    def block(self, subscription: str, seconds: float) -> None:
        """Azure answered ``429``: no request to this subscription until ``seconds`` from now."""
        key = subscription.lower()
        self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), self.clock() + seconds)

    def debit(self, subscription: str, policy: str, count: float) -> None:
        """Requests already made (further pages of a list): later callers wait for them."""
        self._bucket(subscription, policy).tokens -= count

    async def spend(self, subscription: str, *needs: tuple[str, float]) -> None:
        """Take the tokens a step needs, all at once: ``needs`` pairs a policy with a request count."""
        blocked = self.blocked_for(subscription)
        if blocked > 0:
            raise Throttled(
                f"subscription {subscription}: Azure answered 429 Too Many Requests and asked to wait; "
                "no request is sent until then",
                retry_after=blocked,
            )
        wait = 0.0
        taken: list[tuple[_Bucket, float]] = []
        for policy, count in needs:
            bucket = self._bucket(subscription, policy)
            bucket.tokens -= count
            taken.append((bucket, count))
            if bucket.tokens < 0:
                wait = max(wait, -bucket.tokens * 60.0 / bucket.capacity)
        if wait > self.max_wait:
            for bucket, count in taken:
                bucket.tokens += count
            spent = ", ".join(f"{policy} {self.per_minute(policy):g}/min" for policy, _ in needs)
            raise BudgetSpent(
                f"subscription {subscription}: the operator's own request budget ({spent}, "
                f"{self.share:g} of Compute's limits) is spent for now; Azure has not throttled",
                retry_after=wait,
            )
        if wait > 0:
            await asyncio.sleep(wait)
