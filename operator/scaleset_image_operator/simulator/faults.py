"""Fault injection: what ``POST /_sim/faults`` installs and how requests and upgrades consult it.

Request faults (throttle, error, reset, slow without instances) are matched against each ARM request's
method and path. Instance faults (fail-upgrade, unhealthy, stuck, slow with instances) are taken by the
world model when it starts upgrading an instance of a scale set whose id matches the path pattern.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid_parameter

REQUEST_KINDS = frozenset({"throttle", "error", "reset", "slow"})
INSTANCE_KINDS = frozenset({"fail-upgrade", "unhealthy", "stuck", "slow"})
KINDS = REQUEST_KINDS | INSTANCE_KINDS


@dataclass
class Fault:
    id: str
    kind: str
    method: str | None
    path: re.Pattern[str] | None
    count: int
    status: int
    code: str | None
    retry_after: float
    instance_ids: frozenset[str]
    seconds: float
    fired: int = 0

    @property
    def is_instance_fault(self) -> bool:
        return self.kind in INSTANCE_KINDS and (self.kind != "slow" or bool(self.instance_ids))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "match": {"method": self.method, "path": self.path.pattern if self.path else None},
            "count": self.count,
            "fired": self.fired,
            "status": self.status,
            "code": self.code,
            "retryAfter": self.retry_after,
            "instanceIds": sorted(self.instance_ids),
            "seconds": self.seconds,
        }


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, body: dict[str, Any]) -> Fault:
        kind = body.get("kind")
        if kind not in KINDS:
            raise invalid_parameter(f"Unknown fault kind {kind!r}; expected one of {sorted(KINDS)}.", "kind")
        match = body.get("match") or {}
        if not isinstance(match, dict):
            raise invalid_parameter("'match' must be an object with 'method' and/or 'path'.", "match")
        try:
            path = re.compile(match["path"], re.IGNORECASE) if match.get("path") else None
        except re.error as error:
            raise invalid_parameter(f"'match.path' is not a valid regular expression: {error}", "match.path") from None
        instance_ids = body.get("instanceIds") or []
        if not isinstance(instance_ids, list):
            raise invalid_parameter("'instanceIds' must be a list of instance ids.", "instanceIds")
        try:
            count = int(body.get("count", 1))
            status = int(body.get("status", 429 if kind == "throttle" else 500))
            retry_after = float(body.get("retryAfter", 5))
            seconds = float(body.get("seconds", 0))
        except (TypeError, ValueError):
            raise invalid_parameter("'count', 'status', 'retryAfter' and 'seconds' must be numbers.") from None
        if kind in ("fail-upgrade", "unhealthy", "stuck") and not instance_ids and path is None:
            raise invalid_parameter(f"A '{kind}' fault needs 'instanceIds' or a 'match.path' naming scale sets.")
        fault = Fault(
            id=str(next(self._ids)),
            kind=kind,
            method=str(match["method"]).upper() if match.get("method") else None,
            path=path,
            count=count,
            status=status,
            code=body.get("code"),
            retry_after=retry_after,
            instance_ids=frozenset(str(i) for i in instance_ids),
            seconds=seconds,
        )
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def _fire(self, fault: Fault) -> Fault:
        fault.fired += 1
        if fault.count >= 0 and fault.fired >= fault.count:
            self.faults.remove(fault)
        return fault

    def for_request(self, method: str, path: str) -> Fault | None:
        for fault in list(self.faults):
            if fault.is_instance_fault:
                continue
            if fault.method and fault.method != method.upper():
                continue
            if fault.path and not fault.path.search(path):
                continue
            return self._fire(fault)
        return None

    def for_instance(self, kind: str, scale_set_id: str, instance_id: str) -> Fault | None:
        for fault in list(self.faults):
            if fault.kind != kind or not fault.is_instance_fault:
                continue
            if fault.path and not fault.path.search(scale_set_id):
                continue
            if fault.instance_ids and instance_id not in fault.instance_ids:
                continue
            return self._fire(fault)
        return None
