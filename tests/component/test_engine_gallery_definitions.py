"""A ScaleSetImage whose ``spec.image.id`` names a gallery image definition (no ``/versions/``) rolls out the version
Azure would deploy in the scale set's region, pinned in the model, and a definition with no such version is refused
before anything is written. Driven through the real engine and gateway; read back through a real SDK client."""

from __future__ import annotations

from collections.abc import Callable

from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import degraded, engine_on, run_until, ssi
from component.simkit import ScaleSet, gallery_image, list_vms, scale_set_stats
from scaleset_image_operator.engine import settled
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


async def test_a_gallery_definition_rolls_out_its_newest_version_replicated_to_the_region_and_pins_it(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
    subscription_id: str,
) -> None:
    definition = gallery_image(subscription_id)
    control.publish_image(id=f"{definition}/versions/1.0.0", targetRegions=["East US"])
    control.publish_image(id=f"{definition}/versions/1.9.0", targetRegions=["East US", "West Europe"])
    control.publish_image(id=f"{definition}/versions/1.10.0", targetRegions=["West Europe"])
    control.publish_image(id=f"{definition}/versions/1.11.0", targetRegions=["East US"], excludeFromLatest=True)
    control.publish_image(
        id=f"{definition}/versions/1.12.0", targetRegions=[{"name": "East US", "excludeFromLatest": True}]
    )
    scale_set = scale_sets(location="eastus", image={"id": f"{definition}/versions/1.0.0"})
    pinned = f"{definition}/versions/1.9.0"

    async with engine_on(simulator, ssi(scale_set, image={"id": definition})) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert result.status["targetImage"] == pinned
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert vmss.virtual_machine_profile.storage_profile.image_reference.id == pinned
    vms = await list_vms(compute, scale_set)
    assert {vm.properties.storage_profile.image_reference.id for vm in vms} == {pinned}
    assert scale_set_stats(control.stats(), scale_set)["doubleUpgrades"] == 0


async def test_a_settled_definition_rolls_out_a_version_published_later_on_the_next_check(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
    subscription_id: str,
) -> None:
    definition = gallery_image(subscription_id)
    control.publish_image(id=f"{definition}/versions/1.0.0")
    scale_set = scale_sets(capacity=2, image={"id": f"{definition}/versions/1.0.0"})

    async with engine_on(simulator, ssi(scale_set, image={"id": definition}), image_cache_seconds=0) as engine:
        first = await run_until(engine, settled)
        control.publish_image(id=f"{definition}/versions/1.1.0")
        later = await run_until(engine, lambda r: settled(r) and r.status.get("targetImage", "").endswith("1.1.0"))

    assert first.status["targetImage"] == f"{definition}/versions/1.0.0"
    assert later.status["phase"] == "Succeeded"
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert vmss.virtual_machine_profile.storage_profile.image_reference.id == f"{definition}/versions/1.1.0"


async def test_a_definition_with_no_version_for_the_region_is_degraded_as_image_not_found_and_nothing_written(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
    subscription_id: str,
) -> None:
    current = gallery_image(subscription_id, "current")
    control.publish_image(id=f"{current}/versions/1.0.0")
    definition = gallery_image(subscription_id)
    control.publish_image(id=f"{definition}/versions/2.0.0", targetRegions=["West Europe"])
    control.publish_image(id=f"{definition}/versions/1.0.0", excludeFromLatest=True)
    scale_set = scale_sets(image={"id": f"{current}/versions/1.0.0"})

    async with engine_on(simulator, ssi(scale_set, image={"id": definition})) as engine:
        result = await run_until(engine, settled)

    reason, message = degraded(result)
    assert reason == "ImageNotFound"
    assert definition in message and "eastus" in message and "excluded from latest" in message
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert vmss.virtual_machine_profile.storage_profile.image_reference.id == f"{current}/versions/1.0.0"
    writes = [e for e in control.audit(scaleSet=scale_set.name, kind="request") if e["method"] != "GET"]
    assert writes == [], "refused before anything is sent to Azure"
