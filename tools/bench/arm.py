"""Reading the simulator's audit: which ARM requests a rollout made, and how they load Compute's request budgets.

An audit entry of kind ``request`` names the REST operation, method, path, status, simulated time (``simTime``)
and scale set. ``Operations_Get`` requests (the status URL of an Azure-AsyncOperation) name no scale set, so
they are attributed through the ``operation`` entries, which do.

Compute throttles per policy with a per-resource and a per-subscription token bucket refilled every minute
(``learn.microsoft.com/azure/virtual-machines/compute-throttling-limits``);
the simulator enforces the same numbers, which are read here from its table rather than copied.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scaleset_image_operator.simulator.throttling import POLICIES

POLICY_OF_OPERATION = {
    "VirtualMachineScaleSets_Get": "GetVMScaleSet",
    "VirtualMachineScaleSets_GetInstanceView": "HighCostGetVMScaleSet",
    "VirtualMachineScaleSetVMs_List": "HighCostGetVMScaleSet",
    "VirtualMachineScaleSetVMs_Get": "GetVMScaleSetVM",
    "Operations_Get": "GetOperation",
    "VirtualMachineImages_List": "GetImage",
    "VirtualMachineScaleSets_Update": "UpdateVMScaleSet",
    "VirtualMachineScaleSets_CreateOrUpdate": "UpdateVMScaleSet",
    "VirtualMachineScaleSets_UpdateInstances": "VMScaleSetActions",
}
"""The Compute policy each operation the operator and the baseline use is counted against (as in the simulator)."""


@dataclass(frozen=True)
class RequestTally:
    """ARM requests by operation, split into reads (GET) and writes (everything else)."""

    reads: Mapping[str, int] = field(default_factory=dict)
    writes: Mapping[str, int] = field(default_factory=dict)
    throttled: int = 0
    errors: int = 0
    """Answers with a status of 400 or more other than 429."""

    @property
    def read_total(self) -> int:
        return sum(self.reads.values())

    @property
    def write_total(self) -> int:
        return sum(self.writes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "reads": self.read_total,
            "writes": self.write_total,
            "readsByOperation": dict(sorted(self.reads.items())),
            "writesByOperation": dict(sorted(self.writes.items())),
            "throttled": self.throttled,
            "errors": self.errors,
        }


def tally(requests: Iterable[Mapping[str, Any]]) -> RequestTally:
    reads: Counter[str] = Counter()
    writes: Counter[str] = Counter()
    throttled = errors = 0
    for entry in requests:
        operation = str(entry.get("operation"))
        if str(entry.get("method")).upper() == "GET":
            reads[operation] += 1
        else:
            writes[operation] += 1
        status = int(entry.get("status") or 0)
        if status == 429:
            throttled += 1
        elif status >= 400:
            errors += 1
    return RequestTally(dict(reads), dict(writes), throttled, errors)


def operation_ids(entries: Iterable[Mapping[str, Any]], scale_set_id: str) -> set[str]:
    wanted = scale_set_id.lower()
    return {
        str(entry["operationId"]).lower()
        for entry in entries
        if entry.get("kind") == "operation" and str(entry.get("scaleSet") or "").lower() == wanted
    }


def requests_of(entries: Sequence[Mapping[str, Any]], scale_set_id: str) -> list[Mapping[str, Any]]:
    """The ARM requests made about one scale set, its operations' status reads included."""
    wanted = scale_set_id.lower()
    operations = operation_ids(entries, scale_set_id)
    chosen = []
    for entry in entries:
        if entry.get("kind") != "request":
            continue
        if str(entry.get("scaleSet") or "").lower() == wanted or (
            entry.get("operation") == "Operations_Get"
            and str(entry.get("path", "")).rstrip("/").rsplit("/", 1)[-1].lower() in operations
        ):
            chosen.append(entry)
    return chosen


@dataclass(frozen=True)
class PolicyLoad:
    """How hard a set of requests pressed one Compute policy, per simulated minute."""

    policy: str
    requests: int
    mean_per_minute: float
    peak_per_minute: int
    subscription_limit_per_minute: float
    peak_per_resource_minute: int
    resource_limit_per_minute: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "meanPerMinute": round(self.mean_per_minute, 1),
            "peakPerMinute": self.peak_per_minute,
            "subscriptionLimitPerMinute": self.subscription_limit_per_minute,
            "peakShareOfSubscriptionLimit": round(self.peak_per_minute / self.subscription_limit_per_minute, 3),
            "peakPerScaleSetMinute": self.peak_per_resource_minute,
            "resourceLimitPerMinute": self.resource_limit_per_minute,
        }


def policy_loads(
    requests: Sequence[Mapping[str, Any]], start_sim: float, end_sim: float, operation_scale_sets: Mapping[str, str]
) -> list[PolicyLoad]:
    """Requests per simulated minute for each policy: mean over the window, the busiest minute overall and the
    busiest minute of one scale set (Compute's per-resource bucket). ``operation_scale_sets`` maps operation ids to
    their scale sets, for the per-resource figure of ``Operations_Get``."""
    minutes = max(1.0, (end_sim - start_sim) / 60.0)
    per_minute: dict[str, Counter[int]] = defaultdict(Counter)
    per_resource_minute: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for entry in requests:
        policy = POLICY_OF_OPERATION.get(str(entry.get("operation")))
        sim = float(entry.get("simTime") or 0.0)
        if policy is None or not start_sim <= sim <= end_sim:
            continue
        minute = math.floor((sim - start_sim) / 60.0)
        totals[policy] += 1
        per_minute[policy][minute] += 1
        resource = str(entry.get("scaleSet") or "")
        if not resource and entry.get("operation") == "Operations_Get":
            resource = operation_scale_sets.get(str(entry.get("path", "")).rsplit("/", 1)[-1].lower(), "")
        per_resource_minute[policy][(resource.lower(), minute)] += 1
    loads = []
    for policy, count in sorted(totals.items()):
        limits = POLICIES[policy]
        loads.append(
            PolicyLoad(
                policy,
                count,
                count / minutes,
                max(per_minute[policy].values()),
                limits.subscription_refill_per_min,
                max(per_resource_minute[policy].values()),
                limits.resource_refill_per_min,
            )
        )
    return loads


def operation_scale_sets(entries: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Operation id -> the ARM id of the scale set it belongs to."""
    return {
        str(entry["operationId"]).lower(): str(entry.get("scaleSet") or "")
        for entry in entries
        if entry.get("kind") == "operation" and entry.get("operationId")
    }
