"""Changes while a rollout is under way: a new target, scale-out, scale-in, and someone else editing the model.
Each change is made the way a person would make it (spec edit, or a PATCH through a real Azure SDK client)
right after the engine started batch 1."""

from __future__ import annotations

from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import (
    TARGET_VERSION,
    condition,
    count_requests,
    degraded,
    engine_on,
    has_started_batch,
    instance_versions,
    model_version,
    run_until,
    ssi,
)
from component.simkit import JAMMY_VERSIONS, ScaleSet, image_patch, jammy, scale_set_stats
from scaleset_image_operator.engine import LocalEngine, settled
from scaleset_image_operator.settings import Settings
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


def retarget(engine: LocalEngine, version: str) -> None:
    engine.spec = {**engine.spec, "image": {"platform": jammy(version)}}
    engine.generation += 1


async def patch(compute: ComputeManagementClient, scale_set: ScaleSet, body: dict) -> None:
    poller = await compute.virtual_machine_scale_sets.begin_update(scale_set.resource_group, scale_set.name, body)
    await poller.result()


async def test_a_target_changed_mid_rollout_converges_on_the_new_target_without_upgrading_anyone_twice(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set, version=JAMMY_VERSIONS[1])) as engine:
        await run_until(engine, has_started_batch(1))
        retarget(engine, JAMMY_VERSIONS[2])
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert result.status["targetImage"].endswith(JAMMY_VERSIONS[2])
    assert condition(result.status, "Ready")["observedGeneration"] == 2
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[2]
    assert set((await instance_versions(compute, scale_set)).values()) == {JAMMY_VERSIONS[2]}
    stats = scale_set_stats(control.stats(), scale_set)
    assert stats["doubleUpgrades"] == 0
    assert stats["modelWrites"] == 2
    assert stats["maxConcurrentDomains"] == 1


async def test_instances_added_by_scale_out_during_a_rollout_come_up_on_the_target_and_need_no_upgrade(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, has_started_batch(1))
        await patch(compute, scale_set, {"sku": {"capacity": 8}})
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert result.status["instances"]["total"] == 8
    assert result.status["instances"]["upgraded"] == 8
    versions = await instance_versions(compute, scale_set)
    assert len(versions) == 8
    assert set(versions.values()) == {TARGET_VERSION}
    stats = scale_set_stats(control.stats(), scale_set)
    assert stats["upgrades"] == 5
    assert stats["doubleUpgrades"] == 0
    assert stats["maxConcurrentDomains"] == 1


async def test_a_rollout_converges_after_scale_in_removed_instances_it_had_not_reached(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, has_started_batch(1))
        await patch(compute, scale_set, {"sku": {"capacity": 3}})
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert result.status["instances"]["total"] == 3
    assert [b["domains"] for b in result.status["plan"]] == [[0], [1], [2]]
    versions = await instance_versions(compute, scale_set)
    assert versions == {"0": TARGET_VERSION, "1": TARGET_VERSION, "2": TARGET_VERSION}
    assert scale_set_stats(control.stats(), scale_set)["doubleUpgrades"] == 0


async def test_an_out_of_band_model_edit_during_a_rollout_halts_it_and_is_not_overwritten(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, has_started_batch(1))
        await patch(compute, scale_set, image_patch(jammy(JAMMY_VERSIONS[1])))
        result = await run_until(engine, settled)
        later = [await engine.step() for _ in range(3)]

    assert result.status["phase"] == "Halted"
    reason, message = degraded(result)
    assert reason == "ModelChangedOutOfBand"
    assert JAMMY_VERSIONS[1] in message
    assert {r.status["phase"] for r in later} == {"Halted"}
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[1]
    assert scale_set_stats(control.stats(), scale_set)["modelWrites"] == 2
    assert count_requests(control, scale_set, "VirtualMachineScaleSets_UpdateInstances") == 2


async def test_a_settled_check_reads_only_the_model_until_the_model_changes(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set)) as engine:
        done = await run_until(engine, settled)
        reads = (
            count_requests(control, scale_set, "VirtualMachineScaleSets_Get"),
            count_requests(control, scale_set, "VirtualMachineScaleSetVMs_List"),
        )
        quiet = [await engine.step() for _ in range(2)]
        after_quiet = (
            count_requests(control, scale_set, "VirtualMachineScaleSets_Get"),
            count_requests(control, scale_set, "VirtualMachineScaleSetVMs_List"),
        )
        # Someone scales out: the model (its capacity) changes, so the next check lists the instances again.
        await patch(compute, scale_set, {"sku": {"capacity": 8}})
        changed = await engine.step()
        listed = count_requests(control, scale_set, "VirtualMachineScaleSetVMs_List")

    assert [q.status for q in quiet] == [done.status, done.status]
    assert all(q.requeue_after == Settings().steady_seconds for q in quiet)
    assert after_quiet == (reads[0] + 2, reads[1])
    assert listed == reads[1] + 1
    assert changed.status["instances"]["total"] == 8
