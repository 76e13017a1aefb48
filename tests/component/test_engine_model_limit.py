"""Azure's limit of 10 models referenced by the instances of a Uniform scale set: the model change it refuses is a
Degraded condition of its own (ModelLimitReached) that says what to do, the model is left as it was, and the change is
not sent again pass after pass. Driven through the real engine and gateway against the simulator."""

from __future__ import annotations

from collections.abc import Callable

from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import degraded, engine_on, model_version, requests_of, run_until, ssi
from component.simkit import JAMMY_VERSIONS, ScaleSet, image_patch, jammy
from scaleset_image_operator.engine import settled
from scaleset_image_operator.settings import Settings
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


async def into_the_model_limit(compute: ComputeManagementClient, scale_set: ScaleSet) -> str:
    """Nine model changes, each followed by the upgrade of one more instance: the ten instances then reference ten
    distinct models (the first, untouched, instance the original one). Returns the version the model names."""
    version = JAMMY_VERSIONS[0]
    for k in range(9):
        version = JAMMY_VERSIONS[(k + 1) % 2]
        await compute.virtual_machine_scale_sets.begin_update(
            scale_set.resource_group, scale_set.name, image_patch(jammy(version)), polling=False
        )
        poller = await compute.virtual_machine_scale_sets.begin_update_instances(
            scale_set.resource_group, scale_set.name, {"instanceIds": [str(k)]}
        )
        await poller.result()
    return version


async def test_the_model_limit_is_degraded_as_model_limit_reached_sent_once_and_the_model_kept(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(capacity=10, image=jammy(JAMMY_VERSIONS[0]))
    model = await into_the_model_limit(compute, scale_set)
    since = control.audit(scaleSet=scale_set.name)[-1]["seq"]

    async with engine_on(simulator, ssi(scale_set, version=JAMMY_VERSIONS[2])) as engine:
        result = await run_until(engine, settled)
        later = [await engine.step() for _ in range(3)]

    reason, message = degraded(result)
    assert reason == "ModelLimitReached"
    assert "reached its limit of 10 models" in message
    assert "finish upgrading the remaining instances to the current model, then" in message
    assert {degraded(r)[0] for r in later} == {"ModelLimitReached"}
    assert result.requeue_after == Settings().steady_seconds
    assert await model_version(compute, scale_set) == model
    patches = requests_of(control.audit(since=since, scaleSet=scale_set.name), "VirtualMachineScaleSets_Update")
    assert [p["status"] for p in patches] == [400], "one PATCH, refused; not sent again pass after pass"
