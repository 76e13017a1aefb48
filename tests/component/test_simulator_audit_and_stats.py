"""The simulator's record of what clients did: audit entries, request counts and the safety counters."""

from __future__ import annotations

from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import (
    JAMMY_VERSIONS,
    TIME_SCALE,
    ScaleSet,
    image_patch,
    jammy,
    requests_about,
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


async def test_the_audit_records_every_arm_request_with_its_operation_and_status(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    entries = control.audit(scaleSet=scale_set.name, kind="request")

    assert [(e["method"], e["operation"], e["status"]) for e in entries] == [
        ("GET", "VirtualMachineScaleSets_Get", 200)
    ]
    assert entries[0]["path"].lower().startswith(scale_set.id.lower())
    assert {"time", "simTime", "scaleSet"} <= entries[0].keys()


async def test_the_audit_records_instance_transitions_of_an_upgrade_in_order(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    await upgrade(compute, scale_set, "2")

    changes = [
        (t["from"], t["to"])
        for t in control.audit(scaleSet=scale_set.name, kind="transition")
        if t["instanceId"] == "2"
    ]
    assert ("Succeeded", "Updating") in changes
    assert ("Updating", "Succeeded") in changes[changes.index(("Succeeded", "Updating")) :]


async def test_the_audit_can_be_read_from_a_sequence_number_on(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    first = control.audit(scaleSet=scale_set.name)
    await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    later = control.audit(scaleSet=scale_set.name, since=first[-1]["seq"])

    assert len(later) == 1
    assert later[0]["operation"] == "VirtualMachineScaleSets_Get"


async def test_requests_are_counted_per_operation_and_writes_are_counted(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    before = control.stats()

    await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    after = control.stats()
    assert (
        after["requests"]["VirtualMachineScaleSets_Get"] >= before["requests"].get("VirtualMachineScaleSets_Get", 0) + 1
    )
    assert after["requests"]["VirtualMachineScaleSets_Update"] >= 1
    assert after["writes"] >= before["writes"] + 1
    assert scale_set_stats(after, scale_set)["modelWrites"] == 1


async def test_requests_are_counted_per_scale_set_with_the_status_reads_of_its_operations(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    changed, read = scale_sets(), scale_sets()
    since = control.audit()[-1]["seq"]

    await change_image(compute, changed, JAMMY_VERSIONS[1])
    await compute.virtual_machine_scale_sets.get(read.resource_group, read.name)

    stats, entries = control.stats(), control.audit(since=since)
    counted = scale_set_stats(stats, changed)["requests"]
    assert counted["VirtualMachineScaleSets_Update"] == 1
    assert counted["Operations_Get"] >= 1
    assert counted == requests_about(entries, changed.id)
    assert scale_set_stats(stats, read)["requests"] == {"VirtualMachineScaleSets_Get": 1}


async def test_a_domain_by_domain_rollout_has_no_double_upgrades(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    scale_set = scale_sets(capacity=10)
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])

    for domain in range(5):
        await upgrade(compute, scale_set, str(domain), str(domain + 5))

    stats = scale_set_stats(control.stats(), scale_set)
    assert stats["doubleUpgrades"] == 0
    assert stats["upgrades"] == 10


async def test_upgrading_an_instance_twice_for_the_same_model_counts_one_double_upgrade(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])
    await upgrade(compute, scale_set, "0")

    poller = await compute.virtual_machine_scale_set_vms.begin_reimage(scale_set.resource_group, scale_set.name, "0")
    await poller.result()

    stats = control.stats()
    assert scale_set_stats(stats, scale_set)["doubleUpgrades"] == 1
    assert stats["doubleUpgrades"] >= 1


async def test_an_upgrade_for_a_new_model_is_not_a_double_upgrade(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    await change_image(compute, scale_set, JAMMY_VERSIONS[1])
    await upgrade(compute, scale_set, "0")
    await change_image(compute, scale_set, JAMMY_VERSIONS[2])

    await upgrade(compute, scale_set, "0")

    assert scale_set_stats(control.stats(), scale_set)["doubleUpgrades"] == 0


def test_the_clock_can_be_read_and_set(control) -> None:
    answer = control.set_clock(TIME_SCALE)

    assert answer["timeScale"] == TIME_SCALE
    assert answer["simTime"] > 0
    assert control.clock()["simTime"] >= answer["simTime"]
