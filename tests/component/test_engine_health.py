"""Health gating and failures: health-check modes, maxUnhealthyInstances, a failed instance halting the rollout
before the next domain, and onFailure: Rollback returning every instance to the previous image. Faults are
injected in the simulator (``fail-upgrade``, ``unhealthy``); the outcome is read back from Azure."""

from __future__ import annotations

from collections.abc import Callable

from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import (
    count_requests,
    degraded,
    engine_on,
    instance_versions,
    model_version,
    run_until,
    ssi,
)
from component.simkit import JAMMY_VERSIONS, ScaleSet, jammy
from scaleset_image_operator.engine import settled
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

UPGRADES = "VirtualMachineScaleSets_UpdateInstances"


def fail_upgrade_of(control: SimulatorControl, scale_set: ScaleSet, *instance_ids: str) -> None:
    control.inject_fault(kind="fail-upgrade", match={"path": scale_set.path}, instanceIds=list(instance_ids))


def unhealthy_after_upgrade(control: SimulatorControl, scale_set: ScaleSet, *instance_ids: str) -> None:
    control.inject_fault(kind="unhealthy", match={"path": scale_set.path}, instanceIds=list(instance_ids))


async def test_an_instance_unhealthy_after_its_upgrade_halts_the_rollout_and_is_named(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    unhealthy_after_upgrade(control, scale_set, "1")

    async with engine_on(simulator, ssi(scale_set, healthCheck={"mode": "ApplicationHealth"})) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Halted"
    reason, message = degraded(result)
    assert reason == "UnhealthyInstances"
    assert f"{scale_set.name}_1" in message
    assert count_requests(control, scale_set, UPGRADES) == 2


async def test_the_provisioning_state_mode_ignores_the_application_health_signal(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    unhealthy_after_upgrade(control, scale_set, "1")

    async with engine_on(simulator, ssi(scale_set, healthCheck={"mode": "ProvisioningState"})) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, UPGRADES) == 5


async def test_the_none_mode_goes_on_as_soon_as_instances_run_the_target(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    unhealthy_after_upgrade(control, scale_set, "1")

    async with engine_on(simulator, ssi(scale_set, healthCheck={"mode": "None"})) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, UPGRADES) == 5


async def test_the_auto_mode_uses_provisioning_state_on_a_scale_set_without_a_health_extension(
    simulator: SimulatorThread, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), healthExtension=False)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"


async def test_application_health_without_a_health_signal_fails_the_batch_at_the_health_timeout(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), healthExtension=False)
    rollout = {"healthCheck": {"mode": "ApplicationHealth", "timeout": "1s"}}

    async with engine_on(simulator, ssi(scale_set, **rollout)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Halted"
    reason, message = degraded(result)
    assert reason == "UnhealthyInstances"
    assert f"{scale_set.name}_0" in message
    assert "health timeout" in message
    assert count_requests(control, scale_set, UPGRADES) == 1


async def test_unhealthy_instances_within_max_unhealthy_instances_do_not_stop_the_rollout(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    unhealthy_after_upgrade(control, scale_set, "1")

    async with engine_on(simulator, ssi(scale_set, maxUnhealthyInstances=1)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, UPGRADES) == 5
    reason, message = degraded(result)
    assert reason == "UnhealthyInstances"
    assert f"{scale_set.name}_1" in message
    assert result.status["instances"]["unhealthy"] == 1


async def test_a_failed_instance_halts_the_rollout_before_the_next_domain_and_is_named(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    fail_upgrade_of(control, scale_set, "1")

    async with engine_on(simulator, ssi(scale_set)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Halted"
    reason, message = degraded(result)
    assert reason == "UpgradeFailed"
    assert f"{scale_set.name}_1" in message
    assert f"{scale_set.name}_1" in result.status["message"]
    assert count_requests(control, scale_set, UPGRADES) == 2
    versions = await instance_versions(compute, scale_set)
    assert [versions[i] for i in ("2", "3", "4")] == [JAMMY_VERSIONS[0]] * 3
    assert result.status["instances"]["failed"] == 1


async def test_a_halted_rollout_stays_halted_on_later_passes(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    fail_upgrade_of(control, scale_set, "1")

    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, settled)
        later = [await engine.step() for _ in range(3)]

    assert {r.status["phase"] for r in later} == {"Halted"}
    assert count_requests(control, scale_set, UPGRADES) == 2


async def test_rollback_after_a_failed_instance_returns_every_instance_and_the_model_to_the_previous_image(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    fail_upgrade_of(control, scale_set, "2")

    async with engine_on(simulator, ssi(scale_set, onFailure="Rollback")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Failed"
    reason, message = degraded(result)
    assert reason == "RolledBack"
    assert f"{scale_set.name}_2" in message
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[0]
    assert set((await instance_versions(compute, scale_set)).values()) == {JAMMY_VERSIONS[0]}


async def test_rollback_after_an_unhealthy_instance_returns_every_instance_to_the_previous_image(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    unhealthy_after_upgrade(control, scale_set, "2")

    async with engine_on(simulator, ssi(scale_set, onFailure="Rollback")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Failed"
    reason, message = degraded(result)
    assert reason == "RolledBack"
    assert f"{scale_set.name}_2" in message
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[0]
    assert set((await instance_versions(compute, scale_set)).values()) == {JAMMY_VERSIONS[0]}


async def test_rollback_rolls_the_upgraded_domains_back_in_reverse_order(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    unhealthy_after_upgrade(control, scale_set, "2")

    async with engine_on(simulator, ssi(scale_set, onFailure="Rollback")) as engine:
        await run_until(engine, settled)

    starts = [
        e["instanceId"]
        for e in control.audit(scaleSet=scale_set.name, kind="transition")
        if e["field"] == "provisioning" and e["to"] == "Updating"
    ]
    assert starts == ["0", "1", "2", "2", "1", "0"]
