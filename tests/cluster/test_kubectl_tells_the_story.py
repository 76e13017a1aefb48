"""What a person learns from kubectl alone, on the real API server with the CRD as deploy/base installs it.

``kubectl explain`` prints a description for every field of the spec and the status; ``kubectl get ssi`` shows the
scale set and the reason of the condition that matters on one line (the target image only with ``-o wide``);
``kubectl describe`` of a 1,000-instance scale set stays a page. The status schema declares every field the operator
writes and preserves unknown ones only in its memory (``status.rollout``), so the API server would silently prune a
field the schema forgot: status documents the operator builds are written to /status as the operator writes them
(a merge patch) and must come back whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.clusterkit import CRD, REPO, Kubectl, Operators, eventually, phase, scale_set_image, until
from component.simkit import ScaleSet
from component.simkit import jammy as sim_jammy
from scaleset_image_operator.core.images import Image
from scaleset_image_operator.core.observation import Health, InstanceView, ScaleSetView
from scaleset_image_operator.core.planner import Batch, Decision, InFlight, Outcome, Phase, Progress
from scaleset_image_operator.core.spec import HealthMode, Strategy
from scaleset_image_operator.core.status import PLAN_IDS_SHOWN, build_status, problem_status, transient_status
from scaleset_image_operator.kube.resources import merged, status_patch

pytestmark = pytest.mark.cluster

Read = Callable[[str], dict[str, Any]]


def the_schema() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / f"{CRD}.yaml").read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def objects(
    node: Mapping[str, Any], path: str, described: Mapping[str, Any] | None = None
) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(path, the node describing it, the node holding its fields) for every object with fields, by the path
    kubectl explain takes: a list of objects is explained by its own path, and its items hold the fields."""
    if node.get("properties"):
        yield path, described or node, node
    for name, child in (node.get("properties") or {}).items():
        yield from objects(child, f"{path}.{name}")
        yield from objects(child.get("items") or {}, f"{path}.{name}", child)


def words(text: str) -> str:
    return " ".join(text.split())


def columns(table: str) -> list[dict[str, str]]:
    """``kubectl get`` output as one dict per row, keyed by the header (cells are separated by 2+ spaces)."""
    lines = table.strip().splitlines()
    starts = [i for i, char in enumerate(lines[0]) if char != " " and (i == 0 or lines[0][i - 1] == " ")]
    names = lines[0].split()
    bounds = [*starts[1:], None]
    return [
        {name: line[start:end].strip() for name, start, end in zip(names, starts, bounds, strict=True)}
        for line in lines[1:]
    ]


# --- kubectl explain -------------------------------------------------------------------------------------------------


def test_kubectl_explain_prints_the_description_of_every_spec_and_status_field(kubectl: Kubectl) -> None:
    schema = the_schema()["properties"]
    # The API server publishes a CRD's OpenAPI (what kubectl explain reads) a moment after it is Established.
    eventually(
        lambda: kubectl.run("explain", "scalesetimage.status.plan", check=False),
        lambda answer: answer.returncode == 0 and "Every batch of the rollout" in answer.stdout,
        timeout=30,
    )
    explained = 0
    for part in ("spec", "status"):
        for path, itself, node in objects(schema[part], f"scalesetimage.{part}"):
            out = words(kubectl.run("explain", path).stdout)
            for name, described in [(path, itself), *node["properties"].items()]:
                text = words(str(described.get("description") or ""))
                assert text and text in out, f"kubectl explain {path}: {name} has no description\n{out}"
                explained += 1
    assert explained >= 70
    health = kubectl.run("explain", "scalesetimage.spec.rollout.healthCheck").stdout
    assert "When an upgraded instance counts as healthy." in health and "<no description>" not in health
    plan = kubectl.run("explain", "scalesetimage.status.plan").stdout
    assert "Every batch of the rollout" in plan and "<no description>" not in plan


# --- the API server keeps every field the operator writes ------------------------------------------------------------

OLD = Image.platform("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "22.04.202409110")
NEW = OLD.with_version("22.04.202411010")
T0 = 1_735_689_600.0
OPERATION = "https://management.azure.com/subscriptions/s/providers/Microsoft.Compute/locations/eastus/operations/o1"


def instances(count: int, *, zoned: bool = False, upgraded: int = 0) -> tuple[InstanceView, ...]:
    """``count`` instances in 5 update domains (or 3 zones); the first ``upgraded`` on NEW and healthy."""
    return tuple(
        InstanceView(
            instance_id=str(n),
            update_domain=n % 5,
            fault_domain=n % 3,
            zone=str(n % 3 + 1) if zoned else None,
            latest_model_applied=n < upgraded,
            image=NEW if n < upgraded else OLD,
            provisioning_state="Succeeded" if n != count - 1 else "Failed",
            power_state="running",
            health=Health.HEALTHY if n < upgraded else Health.UNHEALTHY,
        )
        for n in range(count)
    )


def scale_set_view(members: tuple[InstanceView, ...]) -> ScaleSetView:
    return ScaleSetView(
        id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web",
        name="vmss-web",
        location="eastus",
        etag='"3"',
        upgrade_mode="Manual",
        orchestration_mode="Uniform",
        model_image=NEW,
        capacity=len(members),
        provisioning_state="Succeeded",
        instances=members,
    )


def statuses() -> Iterator[tuple[str, dict[str, Any]]]:
    """Status documents as the operator writes them, one after the other, covering every field it ever writes."""
    members = instances(40, upgraded=8)
    batches = tuple(Batch(d, (d,), tuple(str(n) for n in range(d, 40, 5))) for d in range(5))
    in_flight = Progress(
        target=NEW,
        rollout_id="3f9c2a",
        previous=OLD,
        model_written=True,
        in_flight=InFlight(1, batches[1].instance_ids, T0 + 60.25, OPERATION),
        batches_started=2,
        started_at=T0,
    )
    decision = Decision(None, in_flight, Phase.ROLLING_OUT, "AwaitingOperation", "batch 1", NEW, batches, batches[1])
    rolling = build_status(
        decision,
        scale_set_view(members),
        strategy=Strategy.UPDATE_DOMAIN,
        mode=HealthMode.AUTO,
        generation=2,
        now=T0 + 90,
    )
    yield "a batch in flight", rolling
    yield (
        "Azure throttling",
        transient_status("AzureThrottled", "retry in 30s", generation=2, now=T0 + 95, previous=rolling),
    )
    remembering = Progress(
        target=NEW,
        rollout_id="3f9c2a",
        previous=OLD,
        model_written=True,
        batches_started=3,
        pause_until=T0 + 120.5,
        rolling_back=True,
        failure="UpgradeFailed: batch 2: vmss-web_2 (provisioning failed)",
        given_up=("2", "7"),
        retry_failed=True,
        rollback_started_at=T0 + 100.125,
        outcome=Outcome(Phase.HALTED, "UnhealthyInstances", "batch 2: vmss-web_2 (unhealthy)", 2),
        started_at=T0,
    )
    decision = Decision(
        None,
        remembering,
        Phase.HALTED,
        "UnhealthyInstances",
        "halted",
        NEW,
        batches,
        batches[3],
        degraded="UnhealthyInstances",
    )
    halted = build_status(
        decision,
        scale_set_view(members),
        strategy=Strategy.UPDATE_DOMAIN,
        mode=HealthMode.AUTO,
        generation=2,
        now=T0 + 130,
    )
    yield "halted, with every piece of the operator's memory", halted
    yield (
        "a problem",
        problem_status("ScaleSetNotFound", "vmss-web: not found", generation=3, now=T0 + 140, previous=halted),
    )
    zoned = instances(12, zoned=True, upgraded=12)
    zone_batches = tuple(Batch(z - 1, (str(z),), tuple(str(n) for n in range(z - 1, 12, 3))) for z in (1, 2, 3))
    done = Progress(target=NEW, rollout_id="77aa01", previous=OLD, started_at=T0, completed_at=T0 + 600)
    decision = Decision(None, done, Phase.SUCCEEDED, "RolloutComplete", "all 12 run it", NEW, zone_batches)
    yield (
        "done, by zone",
        build_status(
            decision, scale_set_view(zoned), strategy=Strategy.ZONE, mode=HealthMode.AUTO, generation=4, now=T0 + 600
        ),
    )


def test_the_api_server_keeps_every_field_of_the_status_documents_the_operator_writes(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    nowhere = ScaleSet("", "vmss-web", "rg-web", "00000000-0000-0000-0000-0000000000aa", 40)
    manifest = tmp_path / "ssi.json"
    manifest.write_text(json.dumps(scale_set_image("web", namespace, nowhere)))
    kubectl.run("create", "-f", str(manifest))
    stored: dict[str, Any] = {}
    for moment, status in statuses():
        patch = json.dumps({"status": status_patch(status, stored)})
        kubectl.run("patch", "ssi", "web", "-n", namespace, "--subresource=status", "--type", "merge", "-p", patch)
        stored = kubectl.json("get", "ssi", "web", "-n", namespace)["status"]
        assert stored == merged(status), f"{moment}: the API server changed or pruned the status"


# --- kubectl get and kubectl describe, with the operator running -----------------------------------------------------


def test_kubectl_get_shows_the_scale_set_and_the_reason_and_wide_adds_the_target(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    scale_sets: Callable[..., ScaleSet],
) -> None:
    planned, canary = (scale_sets(capacity=5, updateDomains=5, image=sim_jammy()) for _ in range(2))
    missing = ScaleSet("", "vmss-missing", planned.resource_group, planned.subscription_id, 0)
    operators.start()
    apply(scale_set_image("dry", namespace, planned, dryRun=True))
    apply(scale_set_image("canary", namespace, canary, rollout={"approval": "AfterFirstBatch"}))
    apply(scale_set_image("gone", namespace, missing))
    until(read_ssi, "dry", lambda d: phase(d) == "Planned")
    until(read_ssi, "canary", lambda d: phase(d) == "Paused")
    until(read_ssi, "gone", lambda d: phase(d) == "Failed")

    table = kubectl.run("get", "ssi", "-n", namespace).stdout
    wide = kubectl.run("get", "ssi", "-n", namespace, "-o", "wide").stdout

    print(table, wide, sep="\n")
    assert table.splitlines()[0].split() == [
        "NAME",
        "SCALESET",
        "PHASE",
        "UPGRADED",
        "DOMAIN",
        "REASON",
        "READY",
        "AGE",
    ]
    rows = {row["NAME"]: row for row in columns(table)}
    assert {name: (row["SCALESET"], row["PHASE"], row["REASON"]) for name, row in rows.items()} == {
        "canary": (canary.name, "Paused", "AwaitingApproval"),
        "dry": (planned.name, "Planned", "DryRun"),
        "gone": ("vmss-missing", "Failed", "ScaleSetNotFound"),
    }
    assert (rows["canary"]["UPGRADED"], rows["canary"]["DOMAIN"], rows["canary"]["READY"]) == ("1/5", "1", "False")
    assert "TARGET" not in table
    wide_rows = {row["NAME"]: row for row in columns(wide)}
    assert wide.splitlines()[0].split()[-2:] == ["TARGET", "AGE"]
    assert wide_rows["canary"]["TARGET"] == "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:22.04.202411010"


def test_kubectl_describe_of_a_thousand_instance_scale_set_stays_a_page(
    operators: Operators,
    apply: Callable[..., Any],
    read_ssi: Read,
    kubectl: Kubectl,
    namespace: str,
    scale_sets: Callable[..., ScaleSet],
) -> None:
    big = scale_sets(capacity=1000, updateDomains=5, image=sim_jammy())
    operators.start()
    apply(scale_set_image("big", namespace, big, dryRun=True))
    planned = until(read_ssi, "big", lambda d: phase(d) == "Planned", timeout=120)

    described = kubectl.run("describe", "ssi", "big", "-n", namespace).stdout

    status_lines = described[described.index("\nStatus:") : described.index("\nEvents:")].splitlines()
    size = len(json.dumps(planned["status"]))
    # Measured: 141 status lines and 2.6 KB of JSON; 1,085 lines and 9.1 KB when the plan listed every instance id.
    assert len(status_lines) < 150 and size < 4_000, f"{len(status_lines)} lines, {size} bytes:\n{described}"
    plan = planned["status"]["plan"]
    assert [(b["index"], b["domains"], b["instances"], len(b["instanceIds"])) for b in plan] == [
        (d, [d], 200, PLAN_IDS_SHOWN) for d in range(5)
    ]
