"""What the benchmarks roll: simulated scale sets with a fixed upgrade time, and the ScaleSetImages that target them.

Every instance upgrade takes exactly the configured time (a ``slow`` instance fault with a fixed duration replaces
the simulator's +/-15 % jitter) and instances are healthy as soon as they run (no health warm-up), so a rollout's
ideal duration is exactly ``domains x upgrade time + (domains - 1) x pause``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from .environment import Cluster, OperatorProcess, ReadyWatcher, SimulatorProcess

JAMMY = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"}
FROM_VERSION = "22.04.202409110"
TARGET_VERSION = "22.04.202411010"
"""Both published by default in the simulator; scale sets start on the first and roll to the second."""
UPDATE_DOMAINS = 5


@dataclass(frozen=True)
class SimulatedScaleSet:
    id: str
    subscription_id: str
    resource_group: str
    name: str
    capacity: int


def subscription(index: int) -> str:
    return f"00000000-0000-0000-0000-{index + 1:012d}"


def create_scale_set(
    simulator: SimulatorProcess,
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    capacity: int,
    upgrade_seconds: float,
    exact: bool = True,
) -> SimulatedScaleSet:
    """A Manual-policy, 5-update-domain scale set on ``FROM_VERSION``; with ``exact``, each of its instance upgrades
    takes exactly ``upgrade_seconds`` (simulated)."""
    arm_id = simulator.control.create_scale_set(
        subscriptionId=subscription_id,
        resourceGroup=resource_group,
        name=name,
        capacity=capacity,
        updateDomains=UPDATE_DOMAINS,
        image={**JAMMY, "version": FROM_VERSION},
        upgradeSeconds=upgrade_seconds,
        healthWarmupSeconds=0,
    )
    if exact:
        simulator.control.inject_fault(
            kind="slow",
            match={"path": f"{re.escape(arm_id)}$"},
            instanceIds=[str(i) for i in range(capacity)],
            seconds=upgrade_seconds,
            count=-1,
        )
    return SimulatedScaleSet(arm_id, subscription_id, resource_group, name, capacity)


def scale_set_image(name: str, namespace: str, scale_set: SimulatedScaleSet, pause_seconds: float) -> dict[str, Any]:
    """A ScaleSetImage rolling ``scale_set`` to ``TARGET_VERSION`` by update domain, ``pause_seconds`` (real) apart."""
    return {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleSet": {
                "subscriptionId": scale_set.subscription_id,
                "resourceGroup": scale_set.resource_group,
                "name": scale_set.name,
            },
            "image": {"platform": {**JAMMY, "version": TARGET_VERSION}},
            "rollout": {
                "strategy": "UpdateDomain",
                "pauseBetweenBatches": f"{round(pause_seconds * 1000)}ms",
                "healthCheck": {"mode": "Auto", "timeout": "10m"},
            },
        },
    }


def namespace(cluster: Cluster, name: str) -> str:
    cluster.kubectl("create", "namespace", name)
    return name


def warm_up(cluster: Cluster, simulator: SimulatorProcess, operator: OperatorProcess, watcher: ReadyWatcher) -> float:
    """One small rollout before measuring, so that the operator's watch, Azure token and HTTP connections are up,
    as in a long-running operator; returns how long it took (seconds)."""
    scale_set = create_scale_set(
        simulator,
        subscription_id=subscription(99),
        resource_group="rg-warm-up",
        name=f"vmss-warm-up-{time.monotonic_ns()}",
        capacity=2,
        upgrade_seconds=1.0,
    )
    space = namespace(cluster, f"warm-up-{time.monotonic_ns() % 10**9}")
    started = time.time()
    cluster.apply([scale_set_image("warm-up", space, scale_set, 0.0)])
    watcher.wait_ready([f"{space}/warm-up"], timeout=120, operator=operator)
    cluster.kubectl("delete", "scalesetimages", "--all", "-n", space, "--wait=false")
    return time.time() - started
