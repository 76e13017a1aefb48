"""kube-apiserver restarts in the middle of a rollout driven by two replicas (a leader and a standby).

The scenario runs once for the module: the rollout is under way, kube-apiserver is stopped and started again on
the same port and etcd (an outage of about 7 s, below the Lease renew deadline of 10 s), then the tests read
what happened: did the operator reconnect and finish, and does exactly one replica still lead afterwards?
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.clusterkit import (
    OPERATOR_NAMESPACE,
    Kubectl,
    OperatorProcess,
    Reaper,
    batch_in_flight,
    counters,
    eventually,
    is_ready,
    new_scale_set,
    operators_for,
    restart_apiserver,
    scale_set_image,
    summary,
    write_manifest,
)
from scaleset_image_operator.simulator import SimulatorControl

pytestmark = pytest.mark.cluster

LEASE_SECONDS = 15
"""kube/leader.py: a standby takes a Lease this long after the holder's last renewal (it retries every 2 s)."""


@dataclass(frozen=True)
class AfterRestart:
    outage: dict[str, float]
    waited: Any
    leader: OperatorProcess
    standby: OperatorProcess
    renewals: list[dict[str, Any]]
    """The Lease's spec read three times, 2.5 s apart, once the rollout was Ready."""
    leading: dict[str, Any]
    """Each replica's /healthz answer once the rollout was Ready and the Lease read."""
    takeover: float | None
    """Seconds from SIGKILL of the leader (after all of the above) until the standby led; None: not within 25 s."""
    stats: dict[str, Any]
    document: dict[str, Any]


@pytest.fixture(scope="module")
def restarted(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    session_control: SimulatorControl,
    control_plane: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AfterRestart]:
    folder = tmp_path_factory.mktemp("apiserver-restart")
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    scale_set = new_scale_set(session_control, capacity=6, update_domains=3, upgradeSeconds=240, healthWarmupSeconds=15)
    kubectl.run("create", "namespace", namespace)
    with operators_for(request, reaper, operator_kubeconfig, azure_env, folder) as operators:
        leader = operators.start("replica-a")
        eventually(leader.health, lambda h: bool(h and h["leading"]), timeout=15, interval=0.2)
        standby = operators.start("replica-b")
        kubectl.run("apply", "-f", str(write_manifest(folder, scale_set_image("web", namespace, scale_set))))

        def read() -> dict[str, Any]:
            return kubectl.json("get", "ssi", "web", "-n", namespace)

        eventually(read, lambda d: batch_in_flight(d, 0), timeout=30, interval=0.3)
        outage = restart_apiserver(control_plane, kubectl)
        waited = kubectl.run(
            "wait", "--for=condition=Ready", "ssi/web", "-n", namespace, "--timeout=60s", check=False, timeout=70
        )
        renewals = []
        for _ in range(3):
            renewals.append(kubectl.json("get", "lease", leader.lease_name, "-n", OPERATOR_NAMESPACE)["spec"])
            time.sleep(2.5)
        leading = {p.identity: p.health() for p in (leader, standby)}
        stats = counters(session_control, scale_set)
        document = read()
        leader.kill()
        killed = time.monotonic()
        try:
            eventually(standby.health, lambda h: bool(h and h["leading"]), timeout=LEASE_SECONDS + 10, interval=0.5)
            takeover: float | None = time.monotonic() - killed
        except AssertionError:
            takeover = None
        yield AfterRestart(outage, waited, leader, standby, renewals, leading, takeover, stats, document)
    kubectl.run("delete", "ssi", "--all", "-n", namespace, "--wait=false", check=False)
    kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_operator_reconnects_after_the_restart_and_finishes_the_rollout(restarted: AfterRestart) -> None:
    assert restarted.outage["outage"] < 10, restarted.outage
    assert restarted.waited.returncode == 0, f"{restarted.waited.stderr} {summary(restarted.document)}"
    assert is_ready(restarted.document)
    assert restarted.document["status"]["instances"]["upgraded"] == 6
    assert restarted.leading == {
        "replica-a": {"status": "ok", "leading": True},
        "replica-b": {"status": "ok", "leading": False},
    }
    assert restarted.stats["doubleUpgrades"] == 0
    assert restarted.stats["maxConcurrentDomains"] == 1
    assert restarted.stats["upgrades"] == 6


def test_the_leader_keeps_renewing_its_lease_after_the_restart(restarted: AfterRestart) -> None:
    holders = {spec["holderIdentity"] for spec in restarted.renewals}
    renew_times = [spec["renewTime"] for spec in restarted.renewals]
    assert holders == {"replica-a"}
    assert len(set(renew_times)) == 3, f"the Lease was not renewed after the restart: renewTime {renew_times}"


def test_the_standby_still_takes_over_when_the_leader_dies_after_the_restart(restarted: AfterRestart) -> None:
    crashed = "Exception in thread leader-election" in restarted.standby.log()
    assert restarted.takeover is not None, (
        f"the standby did not lead within {LEASE_SECONDS + 10} s of the leader's death"
        + (" (its leader-election thread died during the outage)" if crashed else "")
    )
