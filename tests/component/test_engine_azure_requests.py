"""How the engine spends Azure's requests: the economy of one rollout (counted from the simulator's audit), what it
changes in the model, and how it reacts to Azure asking it to wait."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import RETRY_AFTER_CAP, TARGET_VERSION, degraded, engine_on, run_until, ssi
from component.simkit import JAMMY_VERSIONS, ScaleSet, jammy, only_this_scale_set, scale_set_stats
from scaleset_image_operator.engine import settled
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


def requests_by_operation(control: SimulatorControl, scale_set: ScaleSet) -> Counter[str]:
    return Counter(e["operation"] for e in control.audit(scaleSet=scale_set.name, kind="request"))


def without_image(model: dict[str, Any]) -> dict[str, Any]:
    """The scale set's model (wire JSON), minus the image and what Azure changes on every write."""
    properties = {k: v for k, v in model["properties"].items() if k != "provisioningState"}
    profile = dict(properties["virtualMachineProfile"])
    profile["storageProfile"] = {k: v for k, v in profile["storageProfile"].items() if k != "imageReference"}
    return {k: v for k, v in model.items() if k != "etag"} | {
        "properties": properties | {"virtualMachineProfile": profile}
    }


def image_version_of(model: dict[str, Any]) -> str:
    return str(model["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"])


async def test_one_rollout_writes_the_model_once_and_sends_one_manual_upgrade_per_batch(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=10, updateDomains=5)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    counted = requests_by_operation(control, scale_set)
    assert counted["VirtualMachineScaleSets_Update"] == 1
    assert counted["VirtualMachineScaleSets_UpdateInstances"] == 5
    assert scale_set_stats(control.stats(), scale_set)["modelWrites"] == 1


async def test_a_rollout_never_reads_an_instance_on_its_own(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=10, updateDomains=5)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, settled)

    counted = requests_by_operation(control, scale_set)
    assert counted["VirtualMachineScaleSetVMs_Get"] == 0
    assert counted["VirtualMachineScaleSetVMs_GetInstanceView"] == 0
    assert counted["VirtualMachineScaleSets_GetInstanceView"] == 0
    assert counted["VirtualMachineScaleSetVMs_List"] == counted["VirtualMachineScaleSets_Get"]
    lists = [e for e in control.audit(scaleSet=scale_set.name, kind="request") if e["operation"].endswith("VMs_List")]
    assert {e["query"].get("$expand") for e in lists} == {"instanceView"}


async def test_the_rollout_changes_nothing_in_the_model_but_the_image(
    simulator: SimulatorThread, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    before = dict(await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name))

    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, settled)

    after = dict(await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name))
    assert without_image(after) == without_image(before)
    assert (image_version_of(before), image_version_of(after)) == (JAMMY_VERSIONS[0], TARGET_VERSION)


async def test_a_long_retry_after_ends_the_pass_at_once_and_asks_to_be_requeued_after_it(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="throttle", match=only_this_scale_set(scale_set), retryAfter=1200)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        started = time.monotonic()
        result = await engine.step()
        took = time.monotonic() - started

    assert took < RETRY_AFTER_CAP
    assert result.result == "transient"
    assert result.requeue_after is not None and result.requeue_after >= 19
    reason, _ = degraded(result)
    assert reason == "AzureThrottled"


async def test_a_throttled_subscription_is_not_called_again_before_the_retry_after(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="throttle", match=only_this_scale_set(scale_set), retryAfter=1200)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        await engine.step()
        asked = len(control.audit(scaleSet=scale_set.name, kind="request"))
        again = await engine.step()

    assert len(control.audit(scaleSet=scale_set.name, kind="request")) == asked
    assert degraded(again)[0] == "AzureThrottled"
    assert again.requeue_after is not None and again.requeue_after >= 15


async def test_a_short_retry_after_is_waited_inside_the_call_and_the_rollout_goes_on(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="throttle", match=only_this_scale_set(scale_set), retryAfter=60)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        first = await engine.step()
        result = await run_until(engine, settled)

    assert first.result == "success"
    assert result.status["phase"] == "Succeeded"
    assert control.stats()["throttled"] >= 1


async def test_while_a_batch_runs_a_pass_reads_only_its_operation(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    # Each batch takes 12 simulated seconds, 0.2 s here: several polls of 0.05 s.
    scale_set = scale_sets(image=jammy(), capacity=10, updateDomains=5, upgradeSeconds=12, healthWarmupSeconds=0)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    entries = sorted(control.audit(), key=lambda e: int(e["seq"]))
    upgrades = {
        e["operationId"]: e
        for e in entries
        if e["kind"] == "operation"
        and e.get("name") == "VirtualMachineScaleSets_UpdateInstances"
        and e["status"] == "InProgress"
        and str(e.get("scaleSet", "")).endswith(scale_set.name)
    }
    assert len(upgrades) == 5
    for op_id, started in upgrades.items():
        ended = next(
            e
            for e in entries
            if e["kind"] == "operation" and e.get("operationId") == op_id and e["status"] != "InProgress"
        )
        during = [e for e in entries if e["kind"] == "request" and started["seq"] < e["seq"] < ended["seq"]]
        scale_set_reads = [e["operation"] for e in during if e["scaleSet"] and e["method"] == "GET"]
        operation_reads = [e for e in during if e["operation"] == "Operations_Get" and op_id in e["path"]]
        assert scale_set_reads == [], f"operation {op_id}: the scale set was read while its batch ran"
        assert operation_reads, f"operation {op_id}: its status was never read while it ran"
    counted = requests_by_operation(control, scale_set)
    operation_reads = sum(1 for e in entries if e["kind"] == "request" and e["operation"] == "Operations_Get")
    # Reads of the scale set: a few before the model write, then about one observation per batch and health check.
    assert counted["VirtualMachineScaleSets_Get"] < operation_reads
