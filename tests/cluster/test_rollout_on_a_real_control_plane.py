"""The sample ScaleSetImage, applied with kubectl, rolled out by the operator process, read back as a user would.

The rollout runs once for the module (a 10-instance, 5-update-domain scale set, about 20 s); each test reads
one aspect of the result.
"""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.clusterkit import (
    JAMMY,
    JAMMY_VERSIONS,
    Kubectl,
    OperatorProcess,
    Reaper,
    condition,
    counters,
    new_scale_set,
    operators_for,
)
from component.simkit import ScaleSet
from scaleset_image_operator.simulator import SimulatorControl

pytestmark = pytest.mark.cluster

SAMPLE = """\
apiVersion: scaleset.dev/v1alpha1
kind: ScaleSetImage
metadata:
  name: web
  namespace: {namespace}
spec:
  scaleSet: {{subscriptionId: {subscription}, resourceGroup: rg-cluster-tests, name: {name}}}
  image:
    platform: {{publisher: Canonical, offer: 0001-com-ubuntu-server-jammy, sku: 22_04-lts-gen2, version: latest}}
  rollout:
    strategy: UpdateDomain
    pauseBetweenBatches: 0s
    healthCheck: {{mode: Auto, timeout: 10m}}
"""

TARGET = ":".join((*JAMMY.values(), JAMMY_VERSIONS[-1]))
ORIGINAL = ":".join((*JAMMY.values(), JAMMY_VERSIONS[0]))


@dataclass(frozen=True)
class RolledOut:
    namespace: str
    waited: subprocess.CompletedProcess[str]
    operator: OperatorProcess
    scale_set: ScaleSet
    document: dict[str, Any]


@pytest.fixture(scope="module")
def sample(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    session_control: SimulatorControl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RolledOut]:
    """The sample applied with ``kubectl apply -f`` and awaited with ``kubectl wait --for=condition=Ready``."""
    folder = tmp_path_factory.mktemp("sample")
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    scale_set = new_scale_set(session_control, capacity=10, update_domains=5, upgradeSeconds=60, healthWarmupSeconds=15)
    kubectl.run("create", "namespace", namespace)
    manifest = folder / "sample.yaml"
    manifest.write_text(SAMPLE.format(namespace=namespace, subscription=scale_set.subscription_id, name=scale_set.name))
    with operators_for(request, reaper, operator_kubeconfig, azure_env, folder) as operators:
        operator = operators.start("sample")
        kubectl.run("apply", "-f", str(manifest))
        waited = kubectl.run(
            "wait", "--for=condition=Ready", "ssi/web", "-n", namespace, "--timeout=90s", check=False, timeout=100
        )
        yield RolledOut(
            namespace,
            waited,
            operator,
            scale_set,
            kubectl.json("get", "ssi", "web", "-n", namespace),
        )
        kubectl.run("delete", "ssi", "--all", "-n", namespace, "--wait=false", check=False)
    kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_kubectl_wait_for_ready_succeeds_once_every_instance_runs_the_target(sample: RolledOut) -> None:
    assert sample.waited.returncode == 0, sample.waited.stderr + sample.waited.stdout
    assert "condition met" in sample.waited.stdout
    status = sample.document["status"]
    assert status["phase"] == "Succeeded"
    assert status["targetImage"] == status["modelImage"] == TARGET
    assert status["instances"]["upgraded"] == 10


def test_kubectl_get_ssi_shows_the_printer_columns(sample: RolledOut, kubectl: Kubectl) -> None:
    table = kubectl.run("get", "ssi", "-n", sample.namespace).stdout.splitlines()
    long_name = kubectl.run("get", "scalesetimages.scaleset.dev", "web", "-n", sample.namespace).stdout
    wide = kubectl.run("get", "ssi", "-n", sample.namespace, "-o", "wide").stdout.splitlines()
    assert table[0].split() == ["NAME", "SCALESET", "PHASE", "UPGRADED", "DOMAIN", "REASON", "READY", "AGE"]
    row = table[1].split()  # DOMAIN is empty once every batch is done
    assert row[:4] == ["web", sample.scale_set.name, "Succeeded", "10/10"]
    assert row[-3:-1] == ["RolloutComplete", "True"]
    assert wide[0].split()[-2:] == ["TARGET", "AGE"] and wide[1].split()[-2] == TARGET
    assert [line.split()[:-1] for line in long_name.splitlines()] == [line.split()[:-1] for line in table], (
        "the same table by the long name (AGE may tick between the two calls)"
    )


def test_the_status_carries_every_field_of_the_contract(sample: RolledOut) -> None:
    document = sample.document
    status = document["status"]
    generation = document["metadata"]["generation"]
    assert status["observedGeneration"] == generation
    assert status["phase"] == "Succeeded"
    assert status["targetImage"] == TARGET
    assert status["modelImage"] == TARGET
    assert status["previousImage"] == ORIGINAL
    assert status["instances"] == {
        "total": 10,
        "upgraded": 10,
        "upgrading": 0,
        "pending": 0,
        "failed": 0,
        "unhealthy": 0,
    }
    assert [(d["domain"], d["instances"], d["upgraded"], d["state"]) for d in status["domains"]] == [
        (domain, 2, 2, "Succeeded") for domain in range(5)
    ]
    assert status.get("currentBatch") is None
    assert [(b["index"], b["domains"], len(b["instanceIds"])) for b in status["plan"]] == [
        (index, [index], 2) for index in range(5)
    ]
    assert status["startedAt"] <= status["completedAt"]
    assert status["message"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert {kind: conditions[kind]["status"] for kind in ("Ready", "Progressing", "Degraded")} == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
    }
    for kind in ("Ready", "Progressing", "Degraded"):
        assert conditions[kind]["observedGeneration"] == generation
        assert conditions[kind]["lastTransitionTime"]
        assert conditions[kind]["reason"]
    assert condition(document, "Ready")["lastTransitionTime"] >= status["startedAt"]


def test_events_tell_the_story_of_the_rollout(sample: RolledOut, kubectl: Kubectl) -> None:
    events = kubectl.json("get", "events", "-n", sample.namespace, "--field-selector", "involvedObject.name=web")
    ordered = sorted(events["items"], key=lambda e: e.get("firstTimestamp") or e["metadata"]["creationTimestamp"])
    reasons = Counter(e["reason"] for e in ordered for _ in range(e.get("count") or 1))
    assert reasons["ModelUpdated"] == 1
    assert reasons["BatchStarted"] == 5
    assert reasons["BatchSucceeded"] == 5
    assert reasons["RolloutSucceeded"] == 1
    assert {e["involvedObject"]["kind"] for e in ordered} == {"ScaleSetImage"}
    assert not [e for e in ordered if e["type"] == "Warning"]
    story = [e["reason"] for e in ordered if e["reason"] in ("ModelUpdated", "RolloutSucceeded")]
    assert story == ["ModelUpdated", "RolloutSucceeded"]


def test_the_rollout_upgraded_one_update_domain_at_a_time_and_each_instance_once(
    sample: RolledOut, session_control: SimulatorControl
) -> None:
    assert counters(session_control, sample.scale_set) == {
        "upgrades": 10,
        "doubleUpgrades": 0,
        "maxConcurrentDomains": 1,
        "modelWrites": 1,
    }


def test_the_operator_reports_itself_live_and_leading(sample: RolledOut) -> None:
    assert sample.operator.health() == {"status": "ok", "leading": True}
