"""A person steers rollouts with kubectl (apply, patch, annotate, delete); the operator process follows.

Each test has its own namespace, operator replica and simulator scale set of 5 instances in 5 update domains.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from cluster.clusterkit import (
    ABORT_ANNOTATION,
    APPROVE_ANNOTATION,
    JAMMY_VERSIONS,
    Kubectl,
    Operators,
    condition,
    counters,
    is_ready,
    jammy,
    phase,
    scale_set_image,
    until,
    upgraded,
)
from component.simkit import ScaleSet
from component.simkit import jammy as sim_jammy
from scaleset_image_operator.simulator import SimulatorControl

pytestmark = pytest.mark.cluster

Read = Callable[[str], dict[str, Any]]


@pytest.fixture
def small_scale_set(scale_sets: Callable[..., ScaleSet]) -> Callable[..., ScaleSet]:
    """5 instances, one per update domain, on the oldest Ubuntu 22.04; about 0.5 s per batch at time scale 60."""

    def build(**overrides: Any) -> ScaleSet:
        return scale_sets(
            **{
                "capacity": 5,
                "updateDomains": 5,
                "upgradeSeconds": 30,
                "healthWarmupSeconds": 15,
                "image": sim_jammy(),
                **overrides,
            }
        )

    return build


def wait_ready(kubectl: Kubectl, namespace: str, name: str, timeout: int = 60) -> None:
    kubectl.run("wait", "--for=condition=Ready", f"ssi/{name}", "-n", namespace, f"--timeout={timeout}s")


def test_a_dry_run_plans_and_changes_nothing_in_azure_until_it_is_switched_off(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
    control: SimulatorControl,
) -> None:
    scale_set = small_scale_set()
    operators.start()
    apply(scale_set_image("web", namespace, scale_set, dryRun=True))

    planned = until(read_ssi, "web", lambda d: phase(d) == "Planned")
    time.sleep(1.5)

    assert [batch["domains"] for batch in planned["status"]["plan"]] == [[0], [1], [2], [3], [4]]
    assert planned["status"]["instances"]["pending"] == 5
    assert not is_ready(planned)
    assert counters(control, scale_set)["modelWrites"] == 0
    assert counters(control, scale_set)["upgrades"] == 0
    assert phase(read_ssi("web")) == "Planned"

    kubectl.run("patch", "ssi", "web", "-n", namespace, "--type", "merge", "-p", '{"spec":{"dryRun":false}}')
    wait_ready(kubectl, namespace, "web")
    assert counters(control, scale_set) == {
        "modelWrites": 1,
        "upgrades": 5,
        "doubleUpgrades": 0,
        "maxConcurrentDomains": 1,
    }


def test_a_paused_rollout_starts_no_batch_until_it_is_resumed_with_kubectl_patch(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
    control: SimulatorControl,
) -> None:
    scale_set = small_scale_set()
    operators.start()
    apply(scale_set_image("web", namespace, scale_set, rollout={"paused": True}))

    paused = until(read_ssi, "web", lambda d: phase(d) == "Paused")
    time.sleep(1.5)
    assert condition(paused, "Progressing")["reason"] == "Paused"
    assert "spec.rollout.paused" in paused["status"]["message"]
    assert counters(control, scale_set)["upgrades"] == 0
    assert phase(read_ssi("web")) == "Paused"

    kubectl.run(
        "patch", "ssi", "web", "-n", namespace, "--type", "merge", "-p", '{"spec":{"rollout":{"paused":false}}}'
    )
    wait_ready(kubectl, namespace, "web")
    assert counters(control, scale_set)["upgrades"] == 5
    assert counters(control, scale_set)["doubleUpgrades"] == 0


def test_a_canary_holds_after_the_first_batch_until_a_person_approves_the_next(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
    control: SimulatorControl,
) -> None:
    scale_set = small_scale_set()
    operators.start()
    apply(scale_set_image("web", namespace, scale_set, rollout={"approval": "AfterFirstBatch"}))

    held = until(read_ssi, "web", lambda d: phase(d) == "Paused" and upgraded(d) == 1)
    time.sleep(1.5)
    assert condition(held, "Progressing")["reason"] == "AwaitingApproval"
    rollout = held["status"]["rollout"]["id"]
    assert f"{APPROVE_ANNOTATION}={rollout}/1" in held["status"]["message"]
    assert held["status"]["upgraded"] == "1/5"
    assert counters(control, scale_set)["upgrades"] == 1
    assert upgraded(read_ssi("web")) == 1

    kubectl.run("annotate", "ssi", "web", "-n", namespace, f"{APPROVE_ANNOTATION}={rollout}/1")
    wait_ready(kubectl, namespace, "web")
    assert counters(control, scale_set)["upgrades"] == 5
    assert counters(control, scale_set)["maxConcurrentDomains"] == 1


def test_an_approval_left_from_the_last_rollout_does_not_release_the_next_rollouts_canary(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
    control: SimulatorControl,
) -> None:
    scale_set = small_scale_set()
    operators.start()
    apply(
        scale_set_image(
            "web", namespace, scale_set, image=jammy(JAMMY_VERSIONS[1]), rollout={"approval": "AfterFirstBatch"}
        )
    )
    first = until(read_ssi, "web", lambda d: phase(d) == "Paused" and upgraded(d) == 1)["status"]["rollout"]["id"]
    kubectl.run("annotate", "ssi", "web", "-n", namespace, f"{APPROVE_ANNOTATION}={first}/1")
    wait_ready(kubectl, namespace, "web")

    apply(
        scale_set_image(
            "web", namespace, scale_set, image=jammy(JAMMY_VERSIONS[2]), rollout={"approval": "AfterFirstBatch"}
        )
    )
    held = until(
        read_ssi, "web", lambda d: phase(d) == "Paused" and d["status"]["targetImage"].endswith(JAMMY_VERSIONS[2])
    )
    time.sleep(1.5)

    second = read_ssi("web")
    assert condition(second, "Progressing")["reason"] == "AwaitingApproval"
    assert second["status"]["rollout"]["id"] not in ("", first)
    assert held["metadata"]["annotations"][APPROVE_ANNOTATION] == f"{first}/1"
    assert counters(control, scale_set)["upgrades"] == 5 + 1


def test_the_abort_annotation_halts_the_rollout_and_removing_it_resumes(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
    control: SimulatorControl,
) -> None:
    scale_set = small_scale_set(upgradeSeconds=60)
    operators.start()
    apply(scale_set_image("web", namespace, scale_set))
    until(read_ssi, "web", lambda d: phase(d) == "RollingOut" and upgraded(d) >= 1)

    kubectl.run("annotate", "ssi", "web", "-n", namespace, f"{ABORT_ANNOTATION}=true")
    halted = until(read_ssi, "web", lambda d: phase(d) == "Halted")
    assert condition(halted, "Degraded")["status"] == "True"
    assert condition(halted, "Degraded")["reason"] == "Aborted"
    assert not is_ready(halted)
    time.sleep(2)  # longer than a batch takes here (1 s): a batch started after the halt would show
    before = counters(control, scale_set)
    time.sleep(1.5)
    assert counters(control, scale_set) == before
    assert before["upgrades"] < 5
    assert phase(read_ssi("web")) == "Halted"

    kubectl.run("annotate", "ssi", "web", "-n", namespace, f"{ABORT_ANNOTATION}-")
    wait_ready(kubectl, namespace, "web")
    after = counters(control, scale_set)
    assert after["upgrades"] == 5
    assert after["doubleUpgrades"] == 0


def test_a_target_changed_mid_rollout_converges_on_the_new_image_without_double_upgrades(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
    control: SimulatorControl,
) -> None:
    scale_set = small_scale_set(upgradeSeconds=60)
    operators.start()
    apply(scale_set_image("web", namespace, scale_set, image=jammy(JAMMY_VERSIONS[1])))
    midway = until(read_ssi, "web", lambda d: phase(d) == "RollingOut" and 1 <= upgraded(d) < 5)

    patch = json.dumps({"spec": {"image": {"platform": {"version": JAMMY_VERSIONS[2]}}}})
    kubectl.run("patch", "ssi", "web", "-n", namespace, "--type", "merge", "-p", patch)
    wait_ready(kubectl, namespace, "web")

    done = read_ssi("web")
    assert midway["status"]["targetImage"].endswith(JAMMY_VERSIONS[1])
    assert done["status"]["targetImage"].endswith(JAMMY_VERSIONS[2])
    assert done["status"]["modelImage"] == done["status"]["targetImage"]
    assert done["status"]["observedGeneration"] == done["metadata"]["generation"] == 2
    assert done["status"]["instances"]["upgraded"] == 5
    stats = counters(control, scale_set)
    assert stats["doubleUpgrades"] == 0
    assert stats["maxConcurrentDomains"] == 1
    assert stats["modelWrites"] == 2


def test_deleting_a_scale_set_image_returns_promptly_and_stops_every_call_to_its_scale_set(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
    control: SimulatorControl,
) -> None:
    scale_set = small_scale_set(upgradeSeconds=60)
    operator = operators.start()
    apply(scale_set_image("web", namespace, scale_set))
    until(read_ssi, "web", lambda d: phase(d) == "RollingOut" and upgraded(d) >= 1)

    began = time.monotonic()
    kubectl.run("delete", "ssi", "web", "-n", namespace, "--timeout=20s")
    took = time.monotonic() - began
    gone = kubectl.run("get", "ssi", "web", "-n", namespace, check=False)
    time.sleep(1.0)  # a pass already under way when the watch reported the deletion may still finish
    before = counters(control, scale_set)
    last_seq = max((e["seq"] for e in control.audit(scaleSet=scale_set.name)), default=0)
    time.sleep(3.0)

    assert took < 5.0
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
    assert counters(control, scale_set) == before
    assert before["upgrades"] < 5
    later_requests = [e for e in control.audit(scaleSet=scale_set.name, since=last_seq) if e["kind"] == "request"]
    assert later_requests == []
    assert operator.alive
    assert operator.health() == {"status": "ok", "leading": True}


def test_with_no_operator_running_a_deletion_finishes_once_the_finalizer_is_removed_as_documented(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    small_scale_set: Callable[..., ScaleSet],
) -> None:
    """kopf keeps objects with timers under the finalizer scaleset.dev/operator; with the operator gone (e.g.
    uninstalled first), docs/operations.md's kubectl patch releases the deletion, and nothing touches Azure."""
    operator = operators.start()
    apply(scale_set_image("web", namespace, small_scale_set(), dryRun=True))
    managed = until(read_ssi, "web", lambda d: phase(d) == "Planned")
    assert "scaleset.dev/operator" in (managed["metadata"].get("finalizers") or [])
    operator.kill()

    kubectl.run("delete", "ssi", "web", "-n", namespace, "--wait=false")
    kubectl.run(
        "patch",
        "ssi",
        "web",
        "-n",
        namespace,
        "--type",
        "json",
        "-p",
        '[{"op": "remove", "path": "/metadata/finalizers"}]',
    )

    gone = kubectl.run("wait", "--for=delete", "ssi/web", "-n", namespace, "--timeout=20s", check=False, timeout=40)
    assert gone.returncode == 0, gone.stderr
