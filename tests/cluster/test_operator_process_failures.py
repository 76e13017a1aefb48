"""The operator process dies, is stopped, runs as two replicas, or loses the API server, in the middle of rollouts.

Azure's truth (the simulator's safety counters) decides: no instance upgraded twice for one target, never two
update domains upgrading at once. The scale sets here are slower (3 update domains, 4 s per batch at time scale
60) so that the failure lands while a batch is in flight.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from cluster.clusterkit import (
    OPERATOR_NAMESPACE,
    Kubectl,
    Operators,
    batch_in_flight,
    counters,
    eventually,
    scale_set_image,
    until,
)
from component.simkit import ScaleSet
from component.simkit import jammy as sim_jammy
from scaleset_image_operator.simulator import SimulatorControl

pytestmark = pytest.mark.cluster

Read = Callable[[str], dict[str, Any]]

LEASE_SECONDS = 15
"""The Lease duration of kube/leader.py: a standby takes over this long after the leader's last renewal."""


@pytest.fixture
def slow_scale_set(scale_sets: Callable[..., ScaleSet]) -> ScaleSet:
    """6 instances in 3 update domains; an upgrade takes 240 simulated seconds, 4 s real."""
    return scale_sets(capacity=6, updateDomains=3, upgradeSeconds=240, healthWarmupSeconds=15, image=sim_jammy())


def lease(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return dict(kubectl.json("get", "lease", name, "-n", OPERATOR_NAMESPACE)["spec"])


SAFE_AND_DONE = {"upgrades": 6, "doubleUpgrades": 0, "maxConcurrentDomains": 1, "modelWrites": 1}


def test_an_operator_killed_mid_batch_and_restarted_resumes_without_upgrading_anything_twice(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    slow_scale_set: ScaleSet,
    control: SimulatorControl,
) -> None:
    first = operators.start("replica-a")
    apply(scale_set_image("web", namespace, slow_scale_set))
    until(read_ssi, "web", lambda d: batch_in_flight(d, 1))

    first.kill()
    in_flight_at_kill = counters(control, slow_scale_set)
    # The container restarts in the same pod: same identity, so it takes its own Lease back at once.
    operators.start("replica-a")
    kubectl.run("wait", "--for=condition=Ready", "ssi/web", "-n", namespace, "--timeout=60s")

    assert first.popen.returncode == -9
    assert in_flight_at_kill["upgrades"] == 4
    assert counters(control, slow_scale_set) == SAFE_AND_DONE


def test_sigterm_stops_the_operator_cleanly_within_the_grace_period(
    operators: Operators, apply: Callable[..., Any], read_ssi: Read, namespace: str, slow_scale_set: ScaleSet
) -> None:
    operator = operators.start()
    apply(scale_set_image("web", namespace, slow_scale_set))
    until(read_ssi, "web", lambda d: batch_in_flight(d, 0))

    began = time.monotonic()
    code = operator.stop(grace=30)  # the Deployment's terminationGracePeriodSeconds

    assert code == 0, operator.log()
    assert time.monotonic() - began < 15
    assert "Traceback" not in operator.log()


def test_of_two_replicas_only_the_leader_drives_and_the_standby_finishes_when_it_dies(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    slow_scale_set: ScaleSet,
    control: SimulatorControl,
) -> None:
    leader = operators.start("replica-a")
    eventually(leader.health, lambda h: bool(h and h["leading"]), timeout=15, interval=0.2)
    standby = operators.start("replica-b")
    apply(scale_set_image("web", namespace, slow_scale_set))
    until(read_ssi, "web", lambda d: batch_in_flight(d, 1))

    holder_before = lease(kubectl, leader.lease_name)["holderIdentity"]
    standby_health = standby.health()
    standby_log = standby.log()
    leader.kill()
    killed_at = time.monotonic()
    until(read_ssi, "web", lambda d: (d.get("status") or {}).get("instances", {}).get("upgraded") == 6, timeout=60)
    took_over_in = time.monotonic() - killed_at
    kubectl.run("wait", "--for=condition=Ready", "ssi/web", "-n", namespace, "--timeout=30s")

    assert holder_before == "replica-a"
    assert standby_health == {"status": "ok", "leading": False}
    assert "now leads" not in standby_log
    assert "Initial authentication" not in standby_log  # kopf never started on the standby
    assert "now leads" in leader.log()
    assert lease(kubectl, leader.lease_name)["holderIdentity"] == "replica-b"
    assert standby.health() == {"status": "ok", "leading": True}
    assert took_over_in > 5  # the Lease had to expire first
    assert counters(control, slow_scale_set) == SAFE_AND_DONE


def test_sigterm_hands_the_lease_over_in_seconds_and_sigkill_only_once_the_lease_expires(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    slow_scale_set: ScaleSet,
    control: SimulatorControl,
) -> None:
    """A rolling update of the Deployment sends the leader SIGTERM: it stops, hands the Lease back, and the standby
    leads at its next attempt (every 2 s). A killed leader cannot: the standby waits out the Lease (15 s)."""
    first = operators.start("replica-a")
    eventually(first.health, leads, timeout=15, interval=0.2)
    second = operators.start("replica-b")
    apply(scale_set_image("web", namespace, slow_scale_set))
    until(read_ssi, "web", lambda d: batch_in_flight(d, 1))

    first.popen.send_signal(signal.SIGTERM)
    terminated_at = time.monotonic()
    eventually(second.health, leads, timeout=LEASE_SECONDS + 10, interval=0.1)
    after_sigterm = time.monotonic() - terminated_at
    first_exit = first.popen.wait(30)
    holder_after_sigterm = lease(kubectl, first.lease_name)["holderIdentity"]
    kubectl.run("wait", "--for=condition=Ready", "ssi/web", "-n", namespace, "--timeout=60s")

    third = operators.start("replica-c")
    second.kill()
    killed_at = time.monotonic()
    eventually(third.health, leads, timeout=LEASE_SECONDS + 15, interval=0.1)
    after_sigkill = time.monotonic() - killed_at
    print(f"\nthe standby led {after_sigterm:.1f} s after SIGTERM of the leader, {after_sigkill:.1f} s after SIGKILL")

    assert first_exit == 0, first.log()
    assert "handed Lease" in first.log() and "Traceback" not in first.log()
    assert holder_after_sigterm == "replica-b"  # and no renewal of replica-a's came after its release
    assert after_sigterm < 5
    assert LEASE_SECONDS - 5 < after_sigkill < LEASE_SECONDS + 10
    assert lease(kubectl, first.lease_name)["holderIdentity"] == "replica-c"
    assert counters(control, slow_scale_set) == SAFE_AND_DONE


def leads(health: dict[str, Any] | None) -> bool:
    return bool(health and health["leading"])
