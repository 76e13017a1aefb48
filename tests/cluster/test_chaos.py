"""Faults at random moments during many rollouts on the real control plane, and the invariants that must survive them.

One operator process (under deploy/ RBAC) and the session's simulator; ``lanes`` rollouts at once, each on a fresh
5-update-domain scale set, while ``CHAOS_FAULTS`` faults (default 100) of every kind in chaoskit.FAULT_WEIGHTS are
injected: operator SIGKILL and restart, kube-apiserver restart, 429 storms with Retry-After up to 1,200 s, 5xx,
connection resets, slow, stuck and failing upgrades, instances back unhealthy, revoked tokens, out-of-band model
edits, the scale set deleted, scale-out and scale-in. The seed is ``CHAOS_SEED`` (else random) and is printed and
written to ``chaos-results.json`` at the repository root with the figures. ``make chaos FAULTS=1000`` is the soak.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential

from cluster.chaoskit import INITIAL, TARGET, ChaosRun, batch_violations
from cluster.clusterkit import REPO, Kubectl, Reaper, operators_for
from component.simkit import ARM_SCOPE
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

DEADLINE = max(420.0, int(os.environ.get("CHAOS_FAULTS", "100")) * 5.0)
"""Seconds the run may take before it stops injecting and reports what never ended as lost."""

pytestmark = [pytest.mark.cluster, pytest.mark.chaos, pytest.mark.timeout(DEADLINE + 600)]

FAULTS = int(os.environ.get("CHAOS_FAULTS", "100"))
ROLLOUTS = int(os.environ.get("CHAOS_ROLLOUTS", str(max(20, FAULTS // 5))))
LANES = int(os.environ.get("CHAOS_LANES", "4"))
SEED = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2**31))
RESULTS = Path(os.environ.get("CHAOS_RESULTS", str(REPO / "chaos-results.json")))


@pytest.fixture(scope="module")
def chaos(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    control_plane: Any,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    simulator: SimulatorThread,
    session_control: SimulatorControl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("chaos")
    namespace = f"chaos-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", namespace)
    env = azure_env | {"SCALESET_IMAGE_RETRY_AFTER_CAP": "2", "SCALESET_IMAGE_MAX_REQUEUE": "5"}

    async def fresh_token() -> str:
        async with ClientSecretCredential(
            env["AZURE_TENANT_ID"],
            env["AZURE_CLIENT_ID"],
            "a-person-with-az-cli",
            authority=simulator.url,
            connection_verify=str(simulator.ca_file),
        ) as credential:
            return (await credential.get_token(ARM_SCOPE)).token

    def arm_token() -> str:
        return asyncio.run(fresh_token())

    print(f"chaos: seed {SEED}, {FAULTS} faults, at least {ROLLOUTS} rollouts, {LANES} at once")
    with operators_for(request, reaper, operator_kubeconfig, env, folder) as operators:
        run = ChaosRun(
            seed=SEED,
            faults=FAULTS,
            rollouts=ROLLOUTS,
            lanes=LANES,
            kubectl=kubectl,
            control=session_control,
            operators=operators,
            control_plane=control_plane,
            namespace=namespace,
            folder=folder,
            arm_token=arm_token,
            arm_url=simulator.url,
            ca_file=str(simulator.ca_file),
            deadline=time.monotonic() + DEADLINE,
        )
        try:
            run.run()
        finally:
            session_control.clear_faults()
            (folder / "chaos.log").write_text("\n".join(run.log))
        violations = run.check()
        results = run.results(violations) | {"command": f"make chaos FAULTS={FAULTS} (CHAOS_SEED={SEED})"}
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        if violations or results["lost"]:
            print("\n".join(run.log[-200:]))
            print(operators.logs())
        yield results
    kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_enough_faults_across_enough_rollouts(chaos: dict[str, Any]) -> None:
    assert chaos["faults"] >= FAULTS
    assert chaos["rollouts"] >= ROLLOUTS
    tried = {kind for kind, figures in chaos["by_kind"].items() if figures["trials"]}
    assert len(tried) >= min(10, FAULTS // 8), f"fault kinds tried: {sorted(tried)}"


def test_no_invariant_is_violated(chaos: dict[str, Any]) -> None:
    assert chaos["violations"] == 0, chaos["violation_list"]
    # The audit checks saw the work: every ready rollout has at least 5 batches and 1 model write on the target.
    assert chaos["checked"].get("batches", 0) >= 5 * chaos["outcomes"].get("ready", 0)
    assert chaos["checked"].get("model_writes", 0) >= chaos["outcomes"].get("ready", 0)


def test_every_rollout_ends_ready_halted_with_a_reason_or_rolled_back(chaos: dict[str, Any]) -> None:
    assert chaos["lost"] == 0, f"rollouts that never ended: {chaos['lost_rollouts']}"
    assert set(chaos["outcomes"]) <= {"ready", "planned", "halted", "rolled-back", "degraded"}, chaos["outcomes"]
    assert chaos["outcomes"].get("ready", 0) >= chaos["rollouts"] // 3


def test_long_throttling_is_capped_and_reported(chaos: dict[str, Any]) -> None:
    if chaos["by_kind"]["throttle-storm"]["trials"] >= 3:
        assert chaos["throttle_reported"], "no rollout ever reported AzureThrottled during 429 storms"


def _transition(sim_time: float, instance: str, what: str, value: str) -> dict[str, Any]:
    return {"kind": "transition", "simTime": sim_time, "instanceId": instance, "field": what, "to": value}


def test_the_batch_check_catches_a_batch_started_before_the_previous_one_is_healthy() -> None:
    """The audit check itself can fail: batch 1 starts while batch 0's instance is still Updating, and then while
    it is back but Unhealthy; a rollback batch (model back on the initial image) is exempt."""
    model = {"kind": "model", "profileChanged": True, "image": TARGET}
    early = [
        model,
        _transition(10, "0", "provisioning", "Updating"),
        _transition(20, "1", "provisioning", "Updating"),
    ]
    unhealthy = [
        model,
        _transition(10, "0", "provisioning", "Updating"),
        _transition(15, "0", "provisioning", "Succeeded"),
        _transition(16, "0", "health", "Unhealthy"),
        _transition(20, "1", "provisioning", "Updating"),
    ]
    healthy = [*unhealthy[:3], _transition(16, "0", "health", "Healthy"), unhealthy[-1]]
    rollback = [*unhealthy[:4], {"kind": "model", "profileChanged": True, "image": INITIAL}, unhealthy[-1]]
    checked: Counter[str] = Counter()
    assert batch_violations("early", early, checked) == ["early: a batch started while ['0'] were not healthy"]
    assert batch_violations("unhealthy", unhealthy, checked) == [
        "unhealthy: a batch started while ['0'] were not healthy"
    ]
    assert batch_violations("healthy", healthy, checked) == []
    assert batch_violations("rollback", rollback, checked) == []
    assert checked["batches"] == 7  # the rollback batch is not a forward batch
