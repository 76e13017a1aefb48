"""Part 3: one operator and the test control plane rolling a fleet of ScaleSetImages at once, then idle.

``size`` simulated scale sets (``instances`` each, 5 update domains, every upgrade exactly ``upgrade_seconds``
simulated) in ``subscriptions`` subscriptions get one ScaleSetImage each, all applied with one ``kubectl apply``.
Measured: the time until every one is Ready against one rollout's ideal (waiting at most ``timeout_ratio`` ideal
rollouts; past that, how many were Ready), each rollout's own time (first seen by
the watch -> Ready), the operator's peak RSS (``VmHWM``) and CPU time, its Kubernetes API requests (the apiserver's
audit log), its Azure requests per Compute policy per simulated minute against the per-subscription limits,
every ``429``, and, in a quiet window after all are Ready, its Azure reads per scale set per (simulated) hour.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import arm
from .environment import (
    Cluster,
    OperatorProcess,
    ProcessMonitor,
    ProcessSample,
    ReadyWatcher,
    SimulatorProcess,
    audit_time,
    sample_process,
)
from .scenario import UPDATE_DOMAINS, SimulatedScaleSet, create_scale_set, namespace, scale_set_image, subscription

NAMESPACE = "fleet"


@dataclass(frozen=True)
class FleetPlan:
    size: int
    instances: int
    subscriptions: int
    time_scale: float
    upgrade_seconds: float
    """Simulated seconds per instance upgrade."""
    pause_seconds: float
    """Simulated seconds between batches."""
    idle_seconds: float
    """Real seconds of the quiet window after all are Ready."""
    timeout_ratio: float = 4.0
    """Stop waiting for Ready after this many ideal rollouts; the figures then say how many were Ready."""

    @property
    def ideal(self) -> float:
        """One rollout's ideal duration, in real seconds."""
        batches = UPDATE_DOMAINS
        return (batches * self.upgrade_seconds + (batches - 1) * self.pause_seconds) / self.time_scale


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _cpu(before: ProcessSample, after: ProcessSample) -> float:
    return round(after.cpu_seconds - before.cpu_seconds, 2)


def _cpu_of(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: sample_process(pid).cpu_seconds for name, pid in pids.items()}


def _reconcile_figures(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, Any]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    results = {
        key.split('result="', 1)[1].split('"', 1)[0]: int(delta(key))
        for key in after
        if key.startswith("scalesetimage_reconcile_total{")
    }
    passes = delta("scalesetimage_reconcile_duration_seconds_count")
    seconds = delta("scalesetimage_reconcile_duration_seconds_sum")
    return {
        "passes": int(passes),
        "passesByResult": results,
        "meanPassSeconds": round(seconds / passes, 4) if passes else None,
        "azureThrottledTotal": int(delta("scalesetimage_azure_throttled_total")),
    }


def run_fleet(
    plan: FleetPlan,
    cluster: Cluster,
    simulator: SimulatorProcess,
    operator: OperatorProcess,
    watcher: ReadyWatcher,
    log: Any = print,
) -> dict[str, Any]:
    scale = plan.time_scale
    scale_sets: list[SimulatedScaleSet] = [
        create_scale_set(
            simulator,
            subscription_id=subscription(i % plan.subscriptions),
            resource_group="rg-fleet",
            name=f"vmss-{i:04d}",
            capacity=plan.instances,
            upgrade_seconds=plan.upgrade_seconds,
        )
        for i in range(plan.size)
    ]
    space = namespace(cluster, NAMESPACE)
    documents = [scale_set_image(s.name, space, s, plan.pause_seconds / scale) for s in scale_sets]
    keys = [f"{space}/{s.name}" for s in scale_sets]
    seq = simulator.newest_seq()
    with ProcessMonitor(operator.pid) as monitor:
        stats_before = simulator.control.stats()
        metrics_before = operator.metrics()
        kube_start = cluster.audit.mark()
        operator_start, simulator_start = operator.sample(), simulator.sample()
        control_plane_start = _cpu_of(cluster.pids())
        log(f"fleet: applying {plan.size} ScaleSetImages (ideal rollout {plan.ideal:.1f} s)")
        applied_at = time.time()
        cluster.apply(documents)
        apply_seconds = time.time() - applied_at
        ready = watcher.wait_ready(keys, timeout=plan.timeout_ratio * plan.ideal, operator=operator, partial=True)
        all_ready = time.time()
        complete = len(ready) == len(keys)
        changes_ready = watcher.changes(keys)
        kube_ready = cluster.audit.mark()
        operator_ready = operator.sample()
        stats_ready = simulator.control.stats()
        metrics_ready = operator.metrics()
        if complete:
            log(f"fleet: all Ready after {all_ready - applied_at:.1f} s; idle for {plan.idle_seconds:g} s")
        else:
            log(
                f"fleet: only {len(ready)} of {len(keys)} Ready after {all_ready - applied_at:.1f} s "
                f"({plan.timeout_ratio:g} x ideal); {plan.idle_seconds:g} s more, counting the Ready ones as idle"
            )
        idle_end = all_ready + plan.idle_seconds
        while time.time() < idle_end:
            operator.check_alive()
            time.sleep(min(1.0, max(0.0, idle_end - time.time())))
        kube_idle = cluster.audit.mark()
        changes_end = watcher.changes(keys)
        operator_end, simulator_end = operator.sample(), simulator.sample()
        control_plane_end = _cpu_of(cluster.pids())
        stats_end = simulator.control.stats()
        metrics_end = operator.metrics()
    step = max(1, len(monitor.samples) // 60)
    rss_series = [[round(at - applied_at, 1), round(sample.rss_mb, 1)] for at, sample in monitor.samples[::step]]

    entries = simulator.audit_since(seq)
    owners = arm.operation_scale_sets(entries)
    requests = [e for e in entries if e.get("kind") == "request"]
    fleet_ids = {s.id.lower() for s in scale_sets}
    quiet_ids = {s.id.lower() for s, key in zip(scale_sets, keys, strict=True) if key in ready}

    def owner(entry: Mapping[str, Any]) -> str:
        name = str(entry.get("scaleSet") or "")
        if not name and entry.get("operation") == "Operations_Get":
            name = owners.get(str(entry.get("path", "")).rsplit("/", 1)[-1].lower(), "")
        return name.lower()

    def window(start: float, end: float, ids: set[str]) -> list[Mapping[str, Any]]:
        return [r for r in requests if owner(r) in ids and start <= audit_time(str(r["time"])) < end]

    rollout_requests = window(applied_at, all_ready, fleet_ids)
    idle_requests = window(all_ready, idle_end, quiet_ids)
    rollout = arm.tally(rollout_requests)
    idle = arm.tally(idle_requests)
    sim_times = [float(r["simTime"]) for r in rollout_requests]
    loads = arm.policy_loads(rollout_requests, min(sim_times), max(sim_times), owners) if sim_times else []
    idle_hours = plan.idle_seconds * scale / 3600.0
    durations = [ready.get(k, all_ready) - (watcher.seen(k) or applied_at) for k in keys]
    slowest = max(durations)
    kube_rollout = cluster.audit.requests_since(kube_start, kube_ready)
    kube_quiet = cluster.audit.requests_since(kube_ready, kube_idle)
    throttled = int(stats_end["throttled"]) - int(stats_before["throttled"])
    safety = [stats_end["scaleSets"][s.id] for s in scale_sets if s.id in stats_end["scaleSets"]]
    rollout_minutes = (all_ready - applied_at) / 60.0
    return {
        "plan": {
            "scaleSets": plan.size,
            "instancesEach": plan.instances,
            "subscriptions": plan.subscriptions,
            "timeScale": scale,
            "upgradeSecondsSimulated": plan.upgrade_seconds,
            "pauseSecondsSimulated": plan.pause_seconds,
            "idleSeconds": plan.idle_seconds,
            "operatorSettings": operator.settings,
        },
        "applySeconds": round(apply_seconds, 2),
        "watchRestarts": watcher.restarts,
        "complete": complete,
        "readyCount": len(ready),
        "allReadySeconds": round(all_ready - applied_at, 2),
        "idealSeconds": round(plan.ideal, 2),
        "readyRatio": round((all_ready - applied_at) / plan.ideal, 4),
        "rolloutSeconds": {
            "median": round(statistics.median(durations), 2),
            "p90": round(_percentile(durations, 0.9), 2),
            "max": round(slowest, 2),
            "slowestRatio": round(slowest / plan.ideal, 4),
        },
        "operator": {
            "peakRssMb": round(operator_end.peak_rss_mb, 1),
            "rssBeforeApplyMb": round(operator_start.rss_mb, 1),
            "rssAtAllReadyMb": round(monitor.rss_at(all_ready), 1),
            "rssAtEndMb": round(operator_end.rss_mb, 1),
            "rssSeries": rss_series,
            "cpuSecondsRollout": _cpu(operator_start, operator_ready),
            "cpuSecondsIdle": _cpu(operator_ready, operator_end),
            "cpuShareRollout": round(_cpu(operator_start, operator_ready) / (all_ready - applied_at), 3),
            "reconcileRollout": _reconcile_figures(metrics_before, metrics_ready),
            "reconcileIdle": _reconcile_figures(metrics_ready, metrics_end),
        },
        "simulatorCpuSeconds": _cpu(simulator_start, simulator_end),
        "controlPlaneCpuSeconds": {
            name: round(control_plane_end[name] - control_plane_start.get(name, 0.0), 2) for name in control_plane_end
        },
        "kubernetes": {
            "rolloutRequests": kube_rollout.total,
            "rolloutRequestsPerScaleSetImage": round(kube_rollout.total / plan.size, 1),
            "rolloutRequestsPerMinute": round(kube_rollout.total / rollout_minutes, 1),
            "rolloutByKind": dict(sorted(kube_rollout.by_kind.items())),
            "rolloutObjectChanges": changes_ready,
            "idleRequests": kube_quiet.total,
            "idleRequestsPerMinute": round(kube_quiet.total / (plan.idle_seconds / 60.0), 1),
            "idleByKind": dict(sorted(kube_quiet.by_kind.items())),
            "idleObjectChanges": changes_end - changes_ready,
        },
        "azure": {
            "rollout": rollout.as_dict(),
            "readsPerRollout": round(rollout.read_total / plan.size, 1),
            "writesPerRollout": round(rollout.write_total / plan.size, 2),
            "policiesPerSimulatedMinute": {load.policy: load.as_dict() for load in loads},
            "throttled": throttled,
            "throttledDuringRollout": int(stats_ready["throttled"]) - int(stats_before["throttled"]),
            "idle": idle.as_dict(),
            "idleScaleSets": len(quiet_ids),
            "idleReadsPerScaleSetHour": round(idle.read_total / len(quiet_ids) / idle_hours, 2) if quiet_ids else None,
        },
        "safety": {
            "maxConcurrentDomains": max((int(s["maxConcurrentDomains"]) for s in safety), default=0),
            "doubleUpgrades": sum(int(s["doubleUpgrades"]) for s in safety),
            "upgrades": sum(int(s["upgrades"]) for s in safety),
        },
    }
