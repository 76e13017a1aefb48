"""Scale: a thousand instances and fifty scale sets at once, through the real SDK."""

from __future__ import annotations

import asyncio

import pytest
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import JAMMY_VERSIONS, image_patch, image_version, jammy, list_vms, scale_set_stats


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_thousand_instance_scale_set_lists_across_pages_and_upgrades_domain_by_domain(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    scale_set = scale_sets(capacity=1000)

    vms = await list_vms(compute, scale_set)
    assert [vm.instance_id for vm in vms] == [str(k) for k in range(1000)]

    poller = await compute.virtual_machine_scale_sets.begin_update(
        scale_set.resource_group, scale_set.name, image_patch(jammy(JAMMY_VERSIONS[2]))
    )
    await poller.result()
    for domain in range(5):
        batch = [vm.instance_id for vm in vms if vm.properties.instance_view.platform_update_domain == domain]
        assert len(batch) == 200
        poller = await compute.virtual_machine_scale_sets.begin_update_instances(
            scale_set.resource_group, scale_set.name, {"instanceIds": batch}
        )
        await poller.result()

    behind = await list_vms(compute, scale_set, filter="properties/latestModelApplied eq false")
    assert behind == []
    upgraded = await list_vms(compute, scale_set)
    assert {image_version(vm) for vm in upgraded} == {JAMMY_VERSIONS[2]}
    stats = scale_set_stats(control.stats(), scale_set)
    assert (stats["maxConcurrentDomains"], stats["doubleUpgrades"]) == (1, 0)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_fifty_scale_sets_are_created_and_read_concurrently(compute: ComputeManagementClient, scale_sets) -> None:
    created = await asyncio.gather(*(asyncio.to_thread(scale_sets, capacity=3) for _ in range(50)))

    read = await asyncio.gather(*(compute.virtual_machine_scale_sets.get(s.resource_group, s.name) for s in created))
    instances = await asyncio.gather(*(list_vms(compute, s) for s in created))

    assert [vmss.name for vmss in read] == [s.name for s in created]
    assert len({s.id.lower() for s in created}) == 50
    assert [len(vms) for vms in instances] == [3] * 50
