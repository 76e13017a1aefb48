"""Parts 1 and 2: how much longer than ideal one rollout takes, and how many ARM requests it costs.

A 5-update-domain scale set whose instance upgrades take exactly T seconds (real, at the simulator's time scale) is
rolled to a new image twice: by the operator (``kubectl apply`` of a ScaleSetImage, then until the watch reports
``Ready=True``) and by the 2016 script (``baseline.py``), each on a fresh scale set of the same simulator. Both get
the same pause between domains, so both have the same ideal: ``domains x T + (domains - 1) x pause``.

Where the operator's time goes is read from the simulator's audit (request and operation times are wall-clock):
from ``kubectl apply`` to its first request and to the model write, then for each later batch the gap between the
previous batch's operation finishing and the next ``manualupgrade``, less the pause (the time the operator took to
notice and act), and from the last operation finishing to Ready.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import arm
from .baseline import run_baseline
from .environment import BenchError, Cluster, OperatorProcess, ReadyWatcher, SimulatorProcess, audit_time
from .scenario import (
    TARGET_VERSION,
    UPDATE_DOMAINS,
    SimulatedScaleSet,
    create_scale_set,
    namespace,
    scale_set_image,
    subscription,
)

RESOURCE_GROUP = "rg-overhead"


@dataclass(frozen=True)
class Timeline:
    """Where a rollout's time went (seconds, real)."""

    first_request: float
    """From the start (apply returned, or the script started) to the first ARM request."""
    model_write: float
    """From the start to the model write."""
    first_upgrade: float
    """From the start to the first manualupgrade."""
    upgrade_seconds: tuple[float, ...]
    """How long each batch's Azure operation ran."""
    reaction_gaps: tuple[float, ...]
    """For each batch after the first: previous operation finished -> next manualupgrade, less the pause."""
    last_to_ready: float
    """From the last operation finishing to Ready (or the script's end)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "toFirstRequest": round(self.first_request, 3),
            "toModelWrite": round(self.model_write, 3),
            "toFirstUpgrade": round(self.first_upgrade, 3),
            "upgradeSeconds": [round(s, 3) for s in self.upgrade_seconds],
            "reactionGaps": [round(s, 3) for s in self.reaction_gaps],
            "meanReactionGap": round(statistics.fmean(self.reaction_gaps), 3) if self.reaction_gaps else None,
            "lastToReady": round(self.last_to_ready, 3),
        }


@dataclass(frozen=True)
class Rollout:
    """One measured rollout."""

    driver: str
    """``operator`` or ``baseline``."""
    upgrade_seconds: float
    pause_seconds: float
    batches: int
    seconds: float
    requests: arm.RequestTally
    timeline: Timeline
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ideal(self) -> float:
        return self.batches * self.upgrade_seconds + (self.batches - 1) * self.pause_seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.ideal

    def as_dict(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "upgradeSeconds": self.upgrade_seconds,
            "pauseSeconds": round(self.pause_seconds, 3),
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "idealSeconds": round(self.ideal, 3),
            "ratio": round(self.ratio, 4),
            "requests": self.requests.as_dict(),
            "timeline": self.timeline.as_dict(),
            **self.extra,
        }


def _timeline(
    entries: Sequence[Mapping[str, Any]], requests: Sequence[Mapping[str, Any]], start: float, end: float, pause: float
) -> Timeline:
    times = sorted(audit_time(str(r["time"])) for r in requests)
    writes = sorted(
        audit_time(str(r["time"]))
        for r in requests
        if r.get("operation") != "VirtualMachineScaleSets_UpdateInstances" and str(r.get("method")) != "GET"
    )
    upgrades = sorted(
        audit_time(str(r["time"])) for r in requests if r.get("operation") == "VirtualMachineScaleSets_UpdateInstances"
    )
    scale_set = next((str(r["scaleSet"]) for r in requests if r.get("scaleSet")), "")
    finished = sorted(
        audit_time(str(e["time"]))
        for e in entries
        if e.get("kind") == "operation"
        and e.get("name") == "VirtualMachineScaleSets_UpdateInstances"
        and e.get("status") != "InProgress"
        and str(e.get("scaleSet") or "").lower() == scale_set.lower()
    )
    if not times or not upgrades or len(finished) < len(upgrades):
        raise BenchError(f"the simulator's audit does not show a whole rollout of {scale_set or 'the scale set'}")
    return Timeline(
        first_request=times[0] - start,
        model_write=(writes[0] - start) if writes else float("nan"),
        first_upgrade=upgrades[0] - start,
        upgrade_seconds=tuple(done - began for began, done in zip(upgrades, finished, strict=False)),
        reaction_gaps=tuple(nxt - done - pause for done, nxt in zip(finished, upgrades[1:], strict=False)),
        last_to_ready=end - finished[len(upgrades) - 1],
    )


def _passes(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, Any]:
    """Reconcile passes between two scrapes of the operator's metrics, and their mean duration (seconds)."""
    count = after.get("scalesetimage_reconcile_duration_seconds_count", 0.0) - before.get(
        "scalesetimage_reconcile_duration_seconds_count", 0.0
    )
    seconds = after.get("scalesetimage_reconcile_duration_seconds_sum", 0.0) - before.get(
        "scalesetimage_reconcile_duration_seconds_sum", 0.0
    )
    return {"passes": int(count), "meanPassSeconds": round(seconds / count, 4) if count else None}


@dataclass
class OverheadBench:
    """Runs operator and baseline rollouts on one simulator and one operator."""

    cluster: Cluster
    simulator: SimulatorProcess
    operator: OperatorProcess
    watcher: ReadyWatcher
    capacity: int
    pause_seconds: float
    """Real seconds between batches (both drivers)."""
    baseline_poll_seconds: float
    """Real seconds between the script's instance-view reads (5 s on Azure's clock)."""
    seq: int = 0
    runs: int = 0

    def _scale_set(self, driver: str, upgrade_seconds: float) -> SimulatedScaleSet:
        self.runs += 1
        return create_scale_set(
            self.simulator,
            subscription_id=subscription(0),
            resource_group=RESOURCE_GROUP,
            name=f"vmss-{driver}-{self.runs}",
            capacity=self.capacity,
            upgrade_seconds=upgrade_seconds * self.simulator.time_scale,
        )

    def _audit(self) -> tuple[list[dict[str, Any]], int]:
        entries = self.simulator.audit_since(self.seq)
        newest = max((int(e["seq"]) for e in entries), default=self.seq)
        return entries, newest

    def operator_rollout(self, upgrade_seconds: float) -> Rollout:
        self.seq = self.simulator.newest_seq(self.seq)
        scale_set = self._scale_set("operator", upgrade_seconds)
        space = namespace(self.cluster, f"overhead-{self.runs}")
        sample = self.operator.sample()
        metrics = self.operator.metrics()
        kube = self.cluster.audit.mark()
        self.cluster.apply([scale_set_image("rollout", space, scale_set, self.pause_seconds)])
        start = time.time()
        ready = self.watcher.wait_ready(
            [f"{space}/rollout"],
            timeout=60 + 20 * UPDATE_DOMAINS * (upgrade_seconds + self.pause_seconds),
            operator=self.operator,
        )[f"{space}/rollout"]
        cpu = self.operator.sample().cpu_seconds - sample.cpu_seconds
        passes = _passes(metrics, self.operator.metrics())
        kube_requests = self.cluster.audit.requests_since(kube)
        changes = self.watcher.changes([f"{space}/rollout"])
        self.cluster.kubectl("delete", "scalesetimages", "--all", "-n", space, "--wait=false")
        entries, self.seq = self._audit()
        requests = [r for r in arm.requests_of(entries, scale_set.id) if audit_time(str(r["time"])) <= ready]
        return Rollout(
            "operator",
            upgrade_seconds,
            self.pause_seconds,
            UPDATE_DOMAINS,
            ready - start,
            arm.tally(requests),
            _timeline(entries, requests, start, ready, self.pause_seconds),
            {
                "operatorCpuSeconds": round(cpu, 3),
                **passes,
                "kubernetesRequests": kube_requests.total,
                "kubernetesRequestsByKind": dict(sorted(kube_requests.by_kind.items())),
                "objectChanges": changes,
            },
        )

    def baseline_rollout(self, upgrade_seconds: float) -> Rollout:
        self.seq = self.simulator.newest_seq(self.seq)
        scale_set = self._scale_set("baseline", upgrade_seconds)
        run = asyncio.run(
            run_baseline(
                url=self.simulator.url,
                ca_file=self.simulator.ca_file,
                subscription_id=scale_set.subscription_id,
                resource_group=scale_set.resource_group,
                name=scale_set.name,
                new_version=TARGET_VERSION,
                domains=UPDATE_DOMAINS,
                poll_seconds=self.baseline_poll_seconds,
                pause_seconds=self.pause_seconds,
            )
        )
        entries, self.seq = self._audit()
        requests = arm.requests_of(entries, scale_set.id)
        return Rollout(
            "baseline",
            upgrade_seconds,
            self.pause_seconds,
            UPDATE_DOMAINS,
            run.seconds,
            arm.tally(requests),
            _timeline(entries, requests, run.started, run.finished, self.pause_seconds),
            {"instanceViewPolls": sum(d.polls for d in run.domains)},
        )
