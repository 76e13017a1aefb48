"""Bad input never reaches Azure as a change: every spec problem, every image Azure refuses, a missing scale set
and an unsafe upgrade policy end as a Degraded condition with a specific reason and a message a person can act
on, and the scale set's model is left as it was (read back through a real Azure SDK client)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import condition, degraded, engine_on, model_version, run_until, ssi
from component.simkit import JAMMY_VERSIONS, NOBLE, RESOURCE_GROUP, ScaleSet, jammy, scale_set_stats
from scaleset_image_operator.engine import settled
from scaleset_image_operator.settings import Settings
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

GALLERY_IMAGE = "/subscriptions/0/resourceGroups/g/providers/Microsoft.Compute/galleries/g/images/web/versions/1.0.0"
WINDOWS = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter-azure-edition",
    "version": "20348.2700.241004",
}


def writes_to(control: SimulatorControl, scale_set: ScaleSet) -> list[dict[str, Any]]:
    return [e for e in control.audit(scaleSet=scale_set.name, kind="request") if e["method"] != "GET"]


@pytest.mark.parametrize(
    ("spec_change", "field", "hint"),
    [
        ({"image": {}}, "spec.image", "found: none"),
        ({"image": {"platform": jammy(), "id": GALLERY_IMAGE}}, "spec.image", "found: platform, id"),
        ({"image": {"platform": jammy("newest")}}, "spec.image.platform.version", "latest"),
        ({"rollout": {"strategy": "Batch", "maxBatchSize": "lots"}}, "spec.rollout.maxBatchSize", ""),
        ({"rollout": {"maxBatchSize": 2}}, "spec.rollout.maxBatchSize", "must be 1 with the UpdateDomain strategy"),
        ({"rollout": {"strategy": "Random"}}, "spec.rollout.strategy", "UpdateDomain"),
        ({"rollout": {"pauseBetweenBatches": "soon"}}, "spec.rollout.pauseBetweenBatches", ""),
        ({"upgradePolicy": "Sometimes"}, "spec.upgradePolicy", "Enforce"),
    ],
    ids=[
        "no-image",
        "two-images",
        "bad-version",
        "bad-batch-size",
        "batch-size-with-update-domains",
        "unknown-strategy",
        "bad-pause",
        "unknown-upgrade-policy",
    ],
)
async def test_an_invalid_spec_is_degraded_as_invalid_spec_naming_the_field_and_never_reaches_azure(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_set: ScaleSet,
    spec_change: dict[str, Any],
    field: str,
    hint: str,
) -> None:
    manifest = ssi(scale_set)
    manifest["spec"] |= spec_change

    async with engine_on(simulator, manifest) as engine:
        result = await run_until(engine, lambda r: True)

    assert result.status["phase"] == "Failed"
    assert result.result == "degraded"
    reason, message = degraded(result)
    assert reason == "InvalidSpec"
    assert field in message
    assert hint in message
    assert condition(result.status, "Ready")["status"] == "False"
    assert control.audit(scaleSet=scale_set.name, kind="request") == []


async def test_an_unpublished_image_version_is_degraded_as_image_not_found_with_azures_message(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set, version="22.04.209912310")) as engine:
        result = await run_until(engine, settled)

    reason, message = degraded(result)
    assert reason == "ImageNotFound"
    assert "PlatformImageNotFound" in message
    assert "22.04.209912310" in message
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[0]
    assert scale_set_stats(control.stats(), scale_set)["modelWrites"] == 0
    assert scale_set_stats(control.stats(), scale_set)["upgrades"] == 0


async def test_an_image_azure_refused_is_not_tried_again_until_the_spec_changes(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, version="22.04.209912310")) as engine:
        result = await run_until(engine, settled)
        later = [await engine.step() for _ in range(3)]

    assert result.requeue_after == Settings().steady_seconds, "looked at again only on the slow, steady cadence"
    assert {degraded(r)[0] for r in later} == {"ImageNotFound"}
    assert len(writes_to(control, scale_set)) == 1


async def test_version_latest_is_resolved_and_the_concrete_version_pinned_in_the_model(
    simulator: SimulatorThread, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set, version="latest")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert result.status["targetImage"].endswith(JAMMY_VERSIONS[2])
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[2]


@pytest.mark.parametrize("image", [WINDOWS, {**NOBLE, "version": "24.04.202411030"}], ids=["publisher", "offer"])
async def test_a_publisher_or_offer_change_is_degraded_as_image_change_not_allowed_and_the_model_kept(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_set: ScaleSet,
    compute: ComputeManagementClient,
    image: dict[str, str],
) -> None:
    async with engine_on(simulator, ssi(scale_set, image={"platform": image})) as engine:
        result = await run_until(engine, settled)

    reason, message = degraded(result)
    assert reason == "ImageChangeNotAllowed"
    assert image["offer"] in message
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[0]
    assert writes_to(control, scale_set) == []


async def test_a_missing_scale_set_is_degraded_as_scale_set_not_found(
    simulator: SimulatorThread, subscription_id: str
) -> None:
    name = f"vmss-{uuid.uuid4().hex[:10]}"
    missing = ScaleSet(id="", name=name, resource_group=RESOURCE_GROUP, subscription_id=subscription_id, capacity=0)

    async with engine_on(simulator, ssi(missing)) as engine:
        result = await engine.step()

    reason, message = degraded(result)
    assert reason == "ScaleSetNotFound"
    assert missing.name in message


async def test_an_automatic_upgrade_policy_halts_a_require_rollout_without_writing(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(image=jammy(), upgradePolicy="Automatic")

    async with engine_on(simulator, ssi(scale_set, upgrade_policy="Require")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Halted"
    reason, message = degraded(result)
    assert reason == "UpgradePolicyNotManual"
    assert "Enforce" in message
    assert writes_to(control, scale_set) == []
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[0]


async def test_enforce_sets_the_upgrade_policy_to_manual_first_and_rolls_out_one_domain_at_a_time(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(image=jammy(), upgradePolicy="Automatic")

    async with engine_on(simulator, ssi(scale_set, upgrade_policy="Enforce")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    stats = scale_set_stats(control.stats(), scale_set)
    assert stats["maxConcurrentDomains"] == 1
    assert stats["doubleUpgrades"] == 0
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert vmss.upgrade_policy.mode == "Manual"
