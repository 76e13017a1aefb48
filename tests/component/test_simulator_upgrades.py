"""Applying a model to instances: manualupgrade, reimage, rolling and automatic upgrades, and their conflicts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline import PipelineResponse
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import (
    JAMMY_VERSIONS,
    ScaleSet,
    all_vms_eventually,
    eventually,
    exact_version,
    health_of,
    image_patch,
    image_version,
    jammy,
    list_vms,
    most_instances_updating_at_once,
    scale_set_stats,
)


async def change_image(compute: ComputeManagementClient, scale_set: ScaleSet, version: str) -> None:
    poller = await compute.virtual_machine_scale_sets.begin_update(
        scale_set.resource_group, scale_set.name, image_patch(jammy(version))
    )
    await poller.result()


async def upgrade(compute: ComputeManagementClient, scale_set: ScaleSet, *instance_ids: str) -> None:
    poller = await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": list(instance_ids)}
    )
    await poller.result()


async def test_a_manual_upgrade_puts_the_named_instances_on_the_new_model_and_they_turn_healthy(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    counted_before = control.stats()["requests"].get("VirtualMachineScaleSets_UpdateInstances", 0)
    await change_image(compute, scale_set, JAMMY_VERSIONS[2])

    await upgrade(compute, scale_set, "0", "1", "2", "3", "4")

    vms = await all_vms_eventually(compute, scale_set, lambda vm: health_of(vm) == "HealthState/healthy")
    assert all(vm.properties.latest_model_applied for vm in vms)
    assert all(vm.properties.provisioning_state == "Succeeded" for vm in vms)
    assert {image_version(vm) for vm in vms} == {JAMMY_VERSIONS[2]}
    assert {exact_version(vm) for vm in vms} == {JAMMY_VERSIONS[2]}
    counted = control.stats()["requests"]["VirtualMachineScaleSets_UpdateInstances"]
    assert counted >= counted_before + 1


async def test_a_manual_upgrade_answers_202_with_absolute_operation_urls(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])
    responses: list[PipelineResponse] = []

    poller = await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["0"]}, raw_response_hook=responses.append
    )
    await poller.result()

    initial = responses[0].http_response
    assert initial.status_code == 202
    assert initial.text() == ""
    assert initial.headers["Azure-AsyncOperation"].startswith("https://")
    assert "/providers/Microsoft.Compute/locations/eastus/operations/" in initial.headers["Azure-AsyncOperation"]
    assert "monitor=true" in initial.headers["Location"]
    assert initial.headers["Retry-After"].isdigit()


async def test_only_the_named_instances_are_upgraded(compute: ComputeManagementClient, scale_set: ScaleSet) -> None:
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    await upgrade(compute, scale_set, "2")

    vms = await list_vms(compute, scale_set)
    assert [vm.properties.latest_model_applied for vm in vms] == [False, False, True, False, False]
    assert [image_version(vm) for vm in vms] == [JAMMY_VERSIONS[0]] * 2 + [JAMMY_VERSIONS[1]] + [JAMMY_VERSIONS[0]] * 2


async def test_an_upgraded_instance_is_updating_while_its_upgrade_runs(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(upgradeSeconds=200)
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["1"]}
    )
    vm = await compute.virtual_machine_scale_set_vms.get(
        scale_set.resource_group, scale_set.name, "1", expand="instanceView"
    )

    assert vm.properties.provisioning_state == "Updating"
    assert "ProvisioningState/updating" in [s.code for s in vm.properties.instance_view.statuses]


async def test_a_second_upgrade_of_an_instance_with_an_operation_in_flight_is_refused_with_409(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(upgradeSeconds=600)
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])
    await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["0", "1"]}
    )

    with pytest.raises(ResourceExistsError) as refused:
        await compute.virtual_machine_scale_sets.begin_update_instances(
            scale_set.resource_group, scale_set.name, {"instanceIds": ["1", "2"]}
        )

    assert refused.value.status_code == 409
    assert refused.value.error.code == "OperationNotAllowed"


async def test_a_reimage_of_an_instance_with_an_operation_in_flight_is_refused_with_409(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(upgradeSeconds=600)
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])
    await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["3"]}
    )

    with pytest.raises(ResourceExistsError) as refused:
        await compute.virtual_machine_scale_set_vms.begin_reimage(scale_set.resource_group, scale_set.name, "3")

    assert refused.value.error.code == "OperationNotAllowed"


async def test_an_unknown_instance_id_is_refused_with_400_invalid_parameter(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await compute.virtual_machine_scale_sets.begin_update_instances(
            scale_set.resource_group, scale_set.name, {"instanceIds": ["0", "42"]}
        )

    assert refused.value.status_code == 400
    assert refused.value.error.code == "InvalidParameter"


async def test_an_instance_already_on_the_latest_model_is_left_alone(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    before = control.audit(scaleSet=scale_set.name, kind="transition")

    await upgrade(compute, scale_set, "0")

    assert control.audit(scaleSet=scale_set.name, kind="transition") == before


async def test_reimaging_instances_of_a_scale_set_completes(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    before = control.audit(scaleSet=scale_set.name, kind="transition")

    poller = await compute.virtual_machine_scale_sets.begin_reimage(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["0", "1"]}
    )
    await poller.result()

    vms = await list_vms(compute, scale_set)
    assert all(vm.properties.provisioning_state == "Succeeded" for vm in vms)
    after = control.audit(scaleSet=scale_set.name, kind="transition")
    reimaged = {t["instanceId"] for t in after[len(before) :]}
    assert reimaged == {"0", "1"}
    assert control.stats()["requests"]["VirtualMachineScaleSets_Reimage"] >= 1


async def test_reimaging_one_instance_completes(compute: ComputeManagementClient, control, scale_set: ScaleSet) -> None:
    poller = await compute.virtual_machine_scale_set_vms.begin_reimage(scale_set.resource_group, scale_set.name, "4")
    await poller.result()

    vm = await compute.virtual_machine_scale_set_vms.get(scale_set.resource_group, scale_set.name, "4")
    assert vm.properties.provisioning_state == "Succeeded"
    assert control.stats()["requests"]["VirtualMachineScaleSetVMs_Reimage"] >= 1


async def test_there_is_no_latest_rolling_upgrade_before_the_first_one(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    with pytest.raises(ResourceNotFoundError):
        await compute.virtual_machine_scale_set_rolling_upgrades.get_latest(scale_set.resource_group, scale_set.name)


async def test_an_os_rolling_upgrade_is_refused_for_a_pinned_image_version(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    with pytest.raises(ResourceExistsError) as refused:
        await compute.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade(
            scale_set.resource_group, scale_set.name
        )

    assert refused.value.error.code == "OperationNotAllowed"


async def test_an_os_rolling_upgrade_moves_a_latest_scale_set_onto_a_newly_published_version(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    image = {"publisher": "ComponentTests", "offer": f"offer-{uuid.uuid4().hex[:8]}", "sku": "os-upgrade"}
    control.publish_image(**image, versions=["1.0.0"])
    scale_set = scale_sets(capacity=4, image={**image, "version": "latest"})
    control.publish_image(**image, versions=["1.0.0", "2.0.0"])

    poller = await compute.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade(
        scale_set.resource_group, scale_set.name
    )
    await poller.result()

    vms = await list_vms(compute, scale_set)
    assert {exact_version(vm) for vm in vms} == {"2.0.0"}
    latest = await compute.virtual_machine_scale_set_rolling_upgrades.get_latest(
        scale_set.resource_group, scale_set.name
    )
    assert latest.properties.running_status.code == "Completed"
    assert latest.properties.progress.successful_instance_count == 4


async def test_a_rolling_scale_set_upgrades_in_batches_when_its_model_changes(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    scale_set = scale_sets(capacity=10, upgradePolicy="Rolling")

    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    latest = await eventually(
        lambda: compute.virtual_machine_scale_set_rolling_upgrades.get_latest(scale_set.resource_group, scale_set.name),
        lambda status: status.properties.running_status.code == "Completed",
        interval=0.25,
    )
    assert latest.properties.progress.successful_instance_count == 10
    assert latest.properties.policy.max_batch_instance_percent == 20
    vms = await all_vms_eventually(compute, scale_set, lambda vm: vm.properties.latest_model_applied)
    assert {image_version(vm) for vm in vms} == {JAMMY_VERSIONS[1]}
    assert most_instances_updating_at_once(control.audit(scaleSet=scale_set.name, kind="transition")) == 2
    assert scale_set_stats(control.stats(), scale_set)["maxConcurrentDomains"] <= 2


async def test_rolling_policy_without_a_health_extension_is_refused_with_400(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(healthExtension=False)

    with pytest.raises(HttpResponseError) as refused:
        await compute.virtual_machine_scale_sets.begin_update(
            scale_set.resource_group, scale_set.name, {"properties": {"upgradePolicy": {"mode": "Rolling"}}}
        )

    assert refused.value.status_code == 400
    assert refused.value.error.code == "BadRequest"


async def test_an_automatic_scale_set_upgrades_every_domain_at_once_when_its_model_changes(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    scale_set = scale_sets(capacity=10, upgradePolicy="Automatic", upgradeSeconds=20)

    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    vms = await all_vms_eventually(
        compute,
        scale_set,
        lambda vm: vm.properties.latest_model_applied and vm.properties.provisioning_state == "Succeeded",
    )
    assert {image_version(vm) for vm in vms} == {JAMMY_VERSIONS[1]}
    assert most_instances_updating_at_once(control.audit(scaleSet=scale_set.name, kind="transition")) == 10
    assert scale_set_stats(control.stats(), scale_set)["maxConcurrentDomains"] == 5


async def test_upgrading_one_update_domain_at_a_time_never_has_two_domains_upgrading(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    scale_set = scale_sets(capacity=10)
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    for domain in range(5):
        await upgrade(compute, scale_set, str(domain), str(domain + 5))

    vms = await list_vms(compute, scale_set)
    assert all(vm.properties.latest_model_applied for vm in vms)
    stats = scale_set_stats(control.stats(), scale_set)
    assert stats["maxConcurrentDomains"] == 1
    assert stats["doubleUpgrades"] == 0


async def test_concurrent_upgrades_of_disjoint_instances_both_complete(
    compute: ComputeManagementClient, scale_sets
) -> None:
    scale_set = scale_sets(capacity=4)
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    await asyncio.gather(upgrade(compute, scale_set, "0", "1"), upgrade(compute, scale_set, "2", "3"))

    assert all(vm.properties.latest_model_applied for vm in await list_vms(compute, scale_set))
