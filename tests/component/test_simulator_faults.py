"""Injected faults: failed, stuck and unhealthy upgrades, server errors and dropped connections."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineResponse
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import (
    JAMMY_VERSIONS,
    TIME_SCALE,
    ScaleSet,
    all_vms_eventually,
    health_of,
    image_patch,
    jammy,
    only_this_scale_set,
    simulator_config,
)
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


@pytest.fixture
async def behind(compute: ComputeManagementClient, scale_set: ScaleSet) -> ScaleSet:
    """The default scale set after a model change: every instance is waiting for its upgrade."""
    poller = await compute.virtual_machine_scale_sets.begin_update(
        scale_set.resource_group, scale_set.name, image_patch(jammy(JAMMY_VERSIONS[1]))
    )
    await poller.result()
    return scale_set


async def start_upgrade(compute: ComputeManagementClient, scale_set: ScaleSet, *instance_ids: str):
    return await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": list(instance_ids)}
    )


async def provisioning_state(compute: ComputeManagementClient, scale_set: ScaleSet, instance_id: str) -> str:
    vm = await compute.virtual_machine_scale_set_vms.get(scale_set.resource_group, scale_set.name, instance_id)
    return vm.properties.provisioning_state


async def test_a_failed_instance_upgrade_fails_the_operation_with_the_injected_code(
    compute: ComputeManagementClient, control, behind: ScaleSet
) -> None:
    control.inject_fault(
        kind="fail-upgrade", match={"path": behind.path}, instanceIds=["2"], code="VMExtensionProvisioningError"
    )
    poller = await start_upgrade(compute, behind, "1", "2")

    with pytest.raises(HttpResponseError) as failed:
        await poller.result()

    assert failed.value.error.code == "VMExtensionProvisioningError"
    assert await provisioning_state(compute, behind, "2") == "Failed"
    assert await provisioning_state(compute, behind, "1") == "Succeeded"


async def test_a_failed_upgrade_defaults_to_os_provisioning_timed_out(
    compute: ComputeManagementClient, control, behind: ScaleSet
) -> None:
    control.inject_fault(kind="fail-upgrade", match={"path": behind.path}, instanceIds=["0"])
    poller = await start_upgrade(compute, behind, "0")

    with pytest.raises(HttpResponseError) as failed:
        await poller.result()

    assert failed.value.error.code == "OSProvisioningTimedOut"


async def test_a_failed_instance_can_be_upgraded_again_once_the_fault_is_spent(
    compute: ComputeManagementClient, control, behind: ScaleSet
) -> None:
    control.inject_fault(kind="fail-upgrade", match={"path": behind.path}, instanceIds=["0"])
    with pytest.raises(HttpResponseError):
        await (await start_upgrade(compute, behind, "0")).result()

    await (await start_upgrade(compute, behind, "0")).result()

    assert await provisioning_state(compute, behind, "0") == "Succeeded"


async def test_a_stuck_instance_stays_updating_until_the_faults_are_cleared(
    compute: ComputeManagementClient, control, behind: ScaleSet
) -> None:
    control.inject_fault(kind="stuck", match={"path": behind.path}, instanceIds=["3"])
    poller = await start_upgrade(compute, behind, "3")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(poller.result(), timeout=1.0)  # 30 upgrade times
    assert await provisioning_state(compute, behind, "3") == "Updating"

    control.clear_faults()
    await asyncio.wait_for(poller.result(), timeout=10)
    assert await provisioning_state(compute, behind, "3") == "Succeeded"


async def test_an_unhealthy_fault_brings_the_instance_back_unhealthy(
    compute: ComputeManagementClient, control, behind: ScaleSet
) -> None:
    control.inject_fault(kind="unhealthy", match={"path": behind.path}, instanceIds=["4"])

    await (await start_upgrade(compute, behind, "0", "4")).result()

    def settled(vm) -> bool:
        return health_of(vm) in ("HealthState/healthy", "HealthState/unhealthy")

    vms = await all_vms_eventually(compute, behind, settled)
    assert {vm.instance_id: health_of(vm) for vm in vms}["4"] == "HealthState/unhealthy"
    assert {vm.instance_id: health_of(vm) for vm in vms}["0"] == "HealthState/healthy"


async def test_a_slow_instance_takes_its_injected_upgrade_time(
    compute: ComputeManagementClient, control, behind: ScaleSet
) -> None:
    control.inject_fault(kind="slow", match={"path": behind.path}, instanceIds=["1"], seconds=30)
    loop = asyncio.get_running_loop()

    started = loop.time()
    await (await start_upgrade(compute, behind, "1")).result()

    assert loop.time() - started >= 30 / TIME_SCALE


async def test_an_error_fault_answers_with_its_status_and_cloud_error_code(
    open_compute, control, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="error", match=only_this_scale_set(scale_set))

    async with open_compute(scale_set.subscription_id, retry_total=0) as compute:
        with pytest.raises(HttpResponseError) as failed:
            await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert failed.value.status_code == 500
    assert failed.value.error.code == "InternalServerError"


async def test_an_error_fault_takes_the_injected_status_and_code(open_compute, control, scale_set: ScaleSet) -> None:
    control.inject_fault(kind="error", match=only_this_scale_set(scale_set), status=503, code="ServiceUnavailable")

    async with open_compute(scale_set.subscription_id, retry_total=0) as compute:
        with pytest.raises(HttpResponseError) as failed:
            await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert (failed.value.status_code, failed.value.error.code) == (503, "ServiceUnavailable")


async def test_a_single_server_error_on_a_get_is_retried_by_the_sdk(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="error", match=only_this_scale_set(scale_set))
    responses: list[PipelineResponse] = []

    vmss = await compute.virtual_machine_scale_sets.get(
        scale_set.resource_group, scale_set.name, raw_response_hook=responses.append
    )

    assert vmss.name == scale_set.name
    assert [r.http_response.status_code for r in responses] == [500, 200]


# aiohttp itself resends an idempotent request once when the server drops the connection (RFC 9112 9.3.1),
# so it takes two resets for one GET to fail at the SDK's level.
async def test_a_reset_connection_surfaces_as_a_service_error_without_retries(
    open_compute, control, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="reset", match=only_this_scale_set(scale_set), count=2)

    async with open_compute(scale_set.subscription_id, retry_total=0) as compute:
        with pytest.raises((ServiceResponseError, ServiceRequestError)):
            await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)


async def test_a_reset_connection_is_retried_by_the_sdk(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="reset", match=only_this_scale_set(scale_set), count=2)

    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert vmss.name == scale_set.name
    assert control.faults() == []


async def test_a_reset_manual_upgrade_surfaces_as_a_service_error_without_retries(
    open_compute, control, behind: ScaleSet
) -> None:
    control.inject_fault(kind="reset", match={"method": "POST", "path": f"{behind.path}/manualupgrade"})

    async with open_compute(behind.subscription_id, retry_total=0) as compute:
        with pytest.raises((ServiceResponseError, ServiceRequestError)):
            await start_upgrade(compute, behind, "0")


async def test_faults_fire_as_many_times_as_their_count(open_compute, control, scale_set: ScaleSet) -> None:
    control.inject_fault(kind="error", match=only_this_scale_set(scale_set), count=2)

    async with open_compute(scale_set.subscription_id, retry_total=0) as compute:
        outcomes: list[int] = []
        for _ in range(3):
            try:
                await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
                outcomes.append(200)
            except HttpResponseError as error:
                outcomes.append(error.status_code)

    assert outcomes == [500, 500, 200]


async def test_an_answer_held_by_a_slow_fault_is_dropped_once_its_client_gives_up(open_compute, tmp_path) -> None:
    """A server that never answers: the client's own timeout ends the wait, and nothing is left behind holding the
    simulator; it stops at once instead of after aiohttp's 60 s grace for requests in progress."""
    with SimulatorThread(simulator_config(tmp_path)) as own:
        control, subscription = SimulatorControl(own.url, own.ca_file), str(uuid.uuid4())
        arm_id = control.create_scale_set(subscriptionId=subscription, resourceGroup="rg", name="hung", capacity=1)
        control.inject_fault(kind="slow", match={"method": "GET", "path": f"{re.escape(arm_id)}(\\?|$)"}, seconds=3600)
        async with open_compute(subscription, url=own.url, ca_file=own.ca_file, retry_total=0) as compute:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(compute.virtual_machine_scale_sets.get("rg", "hung"), timeout=0.5)
        began = time.monotonic()

    assert time.monotonic() - began < 5
