"""What a client reads from the simulator: scale sets, instances, instance views and paging, through the SDK."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import JAMMY, JAMMY_VERSIONS, ScaleSet, jammy, list_vms, status_codes


async def test_a_scale_set_reads_back_with_its_id_type_quoted_etag_capacity_policy_and_image(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set: ScaleSet = scale_sets(capacity=7, image=jammy())

    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert vmss.id.lower() == scale_set.id.lower()
    assert scale_set.id.endswith(
        f"/resourceGroups/{scale_set.resource_group}/providers/Microsoft.Compute/"
        f"virtualMachineScaleSets/{scale_set.name}"
    )
    assert vmss.name == scale_set.name
    assert vmss.type == "Microsoft.Compute/virtualMachineScaleSets"
    assert vmss.location == "eastus"
    assert re.fullmatch(r'"\d+"', vmss.etag)
    assert vmss.sku.capacity == 7
    assert vmss.properties.upgrade_policy.mode == "Manual"
    assert vmss.properties.orchestration_mode == "Uniform"
    assert vmss.properties.provisioning_state == "Succeeded"
    image = vmss.properties.virtual_machine_profile.storage_profile.image_reference
    assert (image.publisher, image.offer, image.sku, image.version) == (*JAMMY.values(), JAMMY_VERSIONS[0])


async def test_names_and_resource_types_are_case_insensitive(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group.upper(), scale_set.name.upper())

    assert vmss.name.lower() == scale_set.name.lower()


async def test_the_scale_sets_of_a_resource_group_and_of_a_subscription_are_listed(
    compute: ComputeManagementClient, scale_sets
) -> None:
    first, second = scale_sets(), scale_sets()

    in_group = [s.name async for s in compute.virtual_machine_scale_sets.list(first.resource_group)]
    in_subscription = [s.name async for s in compute.virtual_machine_scale_sets.list_all()]

    assert sorted(in_group) == sorted([first.name, second.name])
    assert sorted(in_subscription) == sorted([first.name, second.name])


async def test_instances_are_listed_with_numeric_ids_names_and_the_latest_model(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    vms = await list_vms(compute, scale_set)

    assert [vm.instance_id for vm in vms] == [str(k) for k in range(scale_set.capacity)]
    assert [vm.name for vm in vms] == [f"{scale_set.name}_{k}" for k in range(scale_set.capacity)]
    assert {vm.type for vm in vms} == {"Microsoft.Compute/virtualMachineScaleSets/virtualMachines"}
    assert all(vm.properties.latest_model_applied for vm in vms)
    assert all(vm.properties.provisioning_state == "Succeeded" for vm in vms)
    assert all("PowerState/running" in status_codes(vm) for vm in vms)


async def test_a_regional_scale_set_puts_instance_k_in_update_and_fault_domain_k_mod_5(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(capacity=12)

    vms = await list_vms(compute, scale_set)

    domains = [
        (vm.properties.instance_view.platform_update_domain, vm.properties.instance_view.platform_fault_domain)
        for vm in vms
    ]
    assert domains == [(k % 5, k % 5) for k in range(12)]
    assert all(not vm.zones for vm in vms)


async def test_a_zonal_scale_set_spreads_instances_round_robin_over_zones_in_fault_domain_0(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(capacity=12, zones=["1", "2", "3"])

    vms = await list_vms(compute, scale_set)

    assert [vm.zones for vm in vms] == [[str(k % 3 + 1)] for k in range(12)]
    assert {vm.properties.instance_view.platform_fault_domain for vm in vms} == {0}
    for zone in ("1", "2", "3"):
        in_zone = [vm for vm in vms if vm.zones == [zone]]
        assert [vm.properties.instance_view.platform_update_domain for vm in in_zone] == [0, 1, 2, 3]


async def test_instances_are_listed_across_pages_when_there_are_more_than_a_page(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(capacity=230)

    vms = await list_vms(compute, scale_set)

    assert [vm.instance_id for vm in vms] == [str(k) for k in range(230)]


async def test_one_page_holds_at_most_the_page_size_and_links_to_the_next_with_a_skiptoken(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(capacity=130)

    pages = compute.virtual_machine_scale_set_vms.list(scale_set.resource_group, scale_set.name).by_page()
    first = [vm async for vm in await anext(pages)]

    assert len(first) == 100
    next_link = urlsplit(pages.continuation_token)
    assert next_link.scheme == "https"
    assert {"$skiptoken", "api-version"} <= parse_qs(next_link.query).keys()


async def test_an_instance_reads_back_alone_with_its_instance_view(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    vm = await compute.virtual_machine_scale_set_vms.get(
        scale_set.resource_group, scale_set.name, "3", expand="instanceView"
    )

    assert vm.instance_id == "3"
    assert vm.name == f"{scale_set.name}_3"
    assert vm.id.lower() == f"{scale_set.id}/virtualMachines/3".lower()
    assert vm.properties.instance_view.platform_update_domain == 3
    assert vm.properties.storage_profile.image_reference.version == JAMMY_VERSIONS[0]


async def test_an_instance_view_reports_domains_provisioning_power_and_health(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    view = await compute.virtual_machine_scale_set_vms.get_instance_view(scale_set.resource_group, scale_set.name, "4")

    assert (view.platform_update_domain, view.platform_fault_domain) == (4, 4)
    assert "ProvisioningState/succeeded" in status_codes(view)
    assert "PowerState/running" in status_codes(view)
    assert view.vm_health.status.code == "HealthState/healthy"


async def test_an_unknown_instance_is_not_found(compute: ComputeManagementClient, scale_set: ScaleSet) -> None:
    with pytest.raises(ResourceNotFoundError):
        await compute.virtual_machine_scale_set_vms.get(scale_set.resource_group, scale_set.name, "99")


async def test_a_scale_set_instance_view_summarises_the_provisioning_state_of_every_instance(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(capacity=6)

    view = await compute.virtual_machine_scale_sets.get_instance_view(scale_set.resource_group, scale_set.name)

    summary = Counter({s.code: s.count for s in view.virtual_machine.statuses_summary})
    assert summary["ProvisioningState/succeeded"] == 6


async def test_instances_filtered_on_power_state_carry_only_their_power_state(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    vms = await list_vms(
        compute, scale_set, expand=None, filter="startswith(instanceView/statuses/code, 'PowerState') eq true"
    )

    assert len(vms) == scale_set.capacity
    assert {tuple(status_codes(vm)) for vm in vms} == {("PowerState/running",)}


async def test_the_image_catalogue_lists_publishers_their_offers_and_the_skus_of_an_offer(
    compute: ComputeManagementClient,
) -> None:
    images = compute.virtual_machine_images

    publishers = [p.name for p in await images.list_publishers("westus")]
    offers = [o.name for o in await images.list_offers("westus", JAMMY["publisher"])]
    skus = await images.list_skus("westus", JAMMY["publisher"], JAMMY["offer"])

    assert {"Canonical", "MicrosoftWindowsServer"} <= set(publishers)
    assert {JAMMY["offer"], "ubuntu-24_04-lts"} <= set(offers)
    assert [s.name for s in skus] == [JAMMY["sku"]]
    assert skus[0].location == "westus"
    assert skus[0].id.endswith(
        f"/publishers/{JAMMY['publisher']}/artifacttypes/vmimage/offers/{JAMMY['offer']}/skus/{JAMMY['sku']}"
    )


async def test_the_offers_of_an_unknown_publisher_are_not_found(compute: ComputeManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        await compute.virtual_machine_images.list_offers("westus", "NoSuchPublisher")

    assert missing.value.error.code == "NotFound"
    assert "Artifact: VMImage was not found for publisher 'NoSuchPublisher'" in missing.value.error.message
