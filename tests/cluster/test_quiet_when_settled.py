"""A settled ScaleSetImage costs almost nothing: its steady checks write nothing to Kubernetes (the status is
unchanged) and read only the scale set's model from Azure, listing the instances only every third check or when
the model changed. The operator runs with a 1-second steady interval so that a few seconds hold several checks."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest

from cluster.clusterkit import Kubectl, Reaper, is_ready, new_scale_set, operators_for, scale_set_image, write_manifest
from component.simkit import ScaleSet
from scaleset_image_operator.simulator import SimulatorControl

pytestmark = pytest.mark.cluster

STEADY_SECONDS = 1.0
QUIET_SECONDS = 6.5


STATUS_PATCHES = re.compile(
    r'^apiserver_request_total\{(?=[^}]*resource="scalesetimages")(?=[^}]*subresource="status")'
    r'(?=[^}]*verb="PATCH")[^}]*\} (\S+)$',
    re.MULTILINE,
)


def status_patches(kubectl: Kubectl) -> float:
    """ScaleSetImage status PATCHes the apiserver has served, by anyone (only operators write status)."""
    metrics = kubectl.run("get", "--raw", "/metrics").stdout
    return sum(float(value) for value in STATUS_PATCHES.findall(metrics))


def reads(control: SimulatorControl, scale_set: ScaleSet) -> tuple[int, int]:
    entries = control.audit(scaleSet=scale_set.name, kind="request")
    return (
        sum(1 for e in entries if e["operation"] == "VirtualMachineScaleSets_Get"),
        sum(1 for e in entries if e["operation"] == "VirtualMachineScaleSetVMs_List"),
    )


def test_a_settled_scale_set_image_writes_nothing_and_reads_mostly_the_model(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    session_control: SimulatorControl,
    tmp_path: Path,
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    scale_set = new_scale_set(session_control, capacity=2, update_domains=2, upgradeSeconds=10, healthWarmupSeconds=0)
    kubectl.run("create", "namespace", namespace)
    env = {**azure_env, "SCALESET_IMAGE_STEADY_SECONDS": str(STEADY_SECONDS)}
    try:
        with operators_for(request, reaper, operator_kubeconfig, env, tmp_path) as operators:
            operators.start("quiet")
            kubectl.run(
                "apply",
                "-f",
                str(
                    write_manifest(
                        tmp_path, scale_set_image("quiet", namespace, scale_set, rollout={"pauseBetweenBatches": "1s"})
                    )
                ),
            )
            kubectl.run("wait", "--for=condition=Ready", "ssi/quiet", "-n", namespace, "--timeout=60s", timeout=70)
            time.sleep(2 * STEADY_SECONDS)  # the pass that found it Ready, and the first steady check, are done
            before = kubectl.json("get", "ssi", "quiet", "-n", namespace)
            events_before = len(kubectl.json("get", "events", "-n", namespace)["items"])
            gets_before, lists_before = reads(session_control, scale_set)
            patches_before = status_patches(kubectl)
            time.sleep(QUIET_SECONDS)
            after = kubectl.json("get", "ssi", "quiet", "-n", namespace)
            events_after = len(kubectl.json("get", "events", "-n", namespace)["items"])
            gets_after, lists_after = reads(session_control, scale_set)
            patches_after = status_patches(kubectl)
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)

    assert is_ready(after)
    # What the last passes dropped from the status is gone from the cluster too (a pause between batches is over).
    assert "pauseUntil" not in after["status"]["rollout"]
    assert after["status"].get("currentBatch") is None
    # Checks ran (about one a second) ...
    assert gets_after - gets_before >= 4
    # ... but only every third listed the instances, and none changed the object or posted an Event.
    assert lists_after - lists_before <= (gets_after - gets_before + 2) // 3
    assert patches_after == patches_before, "a steady check that changed nothing still sent a status PATCH"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert events_after == events_before
