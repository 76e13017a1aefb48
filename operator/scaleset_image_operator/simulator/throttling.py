"""Compute's request throttling: per-resource and per-subscription token buckets per policy.

Refill rates (tokens per minute) and capacities are Compute's published limits:
https://learn.microsoft.com/en-us/azure/virtual-machines/compute-throttling-limits.
Time is the simulator's clock, so a faster clock refills faster.
The remaining counts are what every ARM answer reports in ``x-ms-ratelimit-remaining-resource``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Policy:
    name: str
    resource_refill_per_min: float
    resource_capacity: int
    subscription_refill_per_min: float
    subscription_capacity: int


POLICIES: dict[str, Policy] = {
    policy.name: policy
    for policy in (
        Policy("GetVMScaleSet", 12, 36, 800, 2400),
        Policy("HighCostGetVMScaleSet", 10, 30, 360, 1080),
        Policy("CreateVMScaleSet", 4, 12, 125, 375),
        Policy("UpdateVMScaleSet", 4, 12, 500, 1500),
        Policy("DeleteVMScaleSet", 4, 12, 175, 525),
        Policy("VMScaleSetActions", 4, 12, 500, 1500),
        Policy("GetVMScaleSetVM", 12, 36, 2000, 6000),
        Policy("VMScaleSetVMActions", 4, 12, 500, 1500),
        Policy("GetOperation", 15, 45, 5000, 15000),
        Policy("GetImage", 12, 36, 2000, 6000),
    )
}


@dataclass
class _Bucket:
    capacity: float
    refill_per_s: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill_per_s)
        self.updated = now

    def seconds_until_token(self) -> float:
        return max(0.0, (1.0 - self.tokens) / self.refill_per_s)


@dataclass
class Verdict:
    allowed: bool
    header: str
    retry_after: float
    exhausted: str


@dataclass
class Throttler:
    enabled: bool = True
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def _bucket(self, key: str, capacity: float, refill_per_min: float, now: float) -> _Bucket:
        bucket = self._buckets.get((key, str(capacity)))
        if bucket is None:
            bucket = _Bucket(capacity, refill_per_min / 60.0, capacity, now)
            self._buckets[(key, str(capacity))] = bucket
        bucket.refill(now)
        return bucket

    def take(self, policy_name: str, subscription: str, resource: str, now: float, *, charge: bool = True) -> Verdict:
        """Spend one request of ``policy_name`` (when ``charge``) and report what is left."""
        policy = POLICIES[policy_name]
        per_resource = self._bucket(
            f"{policy.name}|{resource.lower()}", policy.resource_capacity, policy.resource_refill_per_min, now
        )
        per_subscription = self._bucket(
            f"{policy.name}|{subscription.lower()}",
            policy.subscription_capacity,
            policy.subscription_refill_per_min,
            now,
        )
        allowed = True
        exhausted = ""
        if self.enabled and charge:
            for bucket, label in ((per_resource, "Resource"), (per_subscription, "SubscriptionMaximum")):
                if bucket.tokens < 1.0:
                    allowed = False
                    exhausted = f"{policy.name}{label}"
                    break
            if allowed:
                per_resource.tokens -= 1.0
                per_subscription.tokens -= 1.0
        header = (
            f"Microsoft.Compute/{policy.name}Resource;{max(0, math.floor(per_resource.tokens))},"
            f"Microsoft.Compute/{policy.name}SubscriptionMaximum;{max(0, math.floor(per_subscription.tokens))}"
        )
        retry = 0.0
        if not allowed:
            retry = max(
                per_resource.seconds_until_token() if per_resource.tokens < 1 else 0.0,
                per_subscription.seconds_until_token() if per_subscription.tokens < 1 else 0.0,
            )
        return Verdict(allowed, header, retry, exhausted)
