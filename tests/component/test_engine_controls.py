"""What people control through the spec and annotations: paused, dryRun, approvals and abort. What Azure was
asked to do is read from the simulator's audit and stats."""

from __future__ import annotations

from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import (
    ABORT,
    APPROVE,
    TARGET_VERSION,
    condition,
    count_requests,
    engine_on,
    has_started_batch,
    instance_versions,
    model_version,
    run_until,
    ssi,
)
from component.simkit import JAMMY_VERSIONS, ScaleSet, scale_set_stats
from scaleset_image_operator.engine import LocalEngine, settled
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

UPGRADES = "VirtualMachineScaleSets_UpdateInstances"


def resume(engine: LocalEngine, **rollout: object) -> None:
    """A person edits spec.rollout: a new generation."""
    engine.spec = {**engine.spec, "rollout": {**engine.spec["rollout"], **rollout}}
    engine.generation += 1


async def test_a_paused_rollout_starts_no_batch(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, paused=True)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Paused"
    assert condition(result.status, "Progressing")["reason"] == "Paused"
    assert count_requests(control, scale_set, UPGRADES) == 0
    assert scale_set_stats(control.stats(), scale_set)["upgrades"] == 0


async def test_unpausing_a_paused_rollout_finishes_it(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, paused=True)) as engine:
        await run_until(engine, settled)
        resume(engine, paused=False)
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, UPGRADES) == 5


async def test_a_dry_run_plans_the_batches_and_writes_nothing_to_azure(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    writes_before = control.stats()["writes"]

    async with engine_on(simulator, ssi(scale_set, dry_run=True)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Planned"
    assert [b["domains"] for b in result.status["plan"]] == [[0], [1], [2], [3], [4]]
    assert control.stats()["writes"] == writes_before
    assert scale_set_stats(control.stats(), scale_set)["modelWrites"] == 0
    assert {e["method"] for e in control.audit(scaleSet=scale_set.name, kind="request")} == {"GET"}
    assert await model_version(compute, scale_set) == JAMMY_VERSIONS[0]


async def test_approval_after_first_batch_holds_the_rollout_after_the_canary_batch(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, approval="AfterFirstBatch")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Paused"
    assert condition(result.status, "Progressing")["reason"] == "AwaitingApproval"
    assert f"{APPROVE}={result.status['rollout']['id']}/1" in result.status["message"]
    assert count_requests(control, scale_set, UPGRADES) == 1
    assert result.status["instances"]["upgraded"] == 1


async def test_approving_batch_one_releases_the_rest_of_an_after_first_batch_rollout(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, compute: ComputeManagementClient
) -> None:
    async with engine_on(simulator, ssi(scale_set, approval="AfterFirstBatch")) as engine:
        held = await run_until(engine, settled)
        engine.annotations[APPROVE] = f"{held.status['rollout']['id']}/1"
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, UPGRADES) == 5
    assert set((await instance_versions(compute, scale_set)).values()) == {TARGET_VERSION}


async def test_an_approval_given_in_one_rollout_does_not_release_the_next_rollouts_canary(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, approval="AfterFirstBatch")) as engine:
        first = await run_until(engine, settled)
        engine.annotations[APPROVE] = f"{first.status['rollout']['id']}/1"
        assert (await run_until(engine, settled)).status["phase"] == "Succeeded"
        engine.spec = ssi(scale_set, version=JAMMY_VERSIONS[1], approval="AfterFirstBatch")["spec"]
        engine.generation = 2
        second = await run_until(engine, settled)

    assert (second.status["phase"], second.status["currentBatch"]["index"]) == ("Paused", 1)
    assert condition(second.status, "Progressing")["reason"] == "AwaitingApproval"
    assert second.status["rollout"]["id"] != first.status["rollout"]["id"]
    assert second.status["rollout"]["id"] in second.status["message"]
    assert count_requests(control, scale_set, UPGRADES) == 5 + 1


async def test_approval_each_batch_holds_before_every_batch_after_the_first(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, approval="EachBatch")) as engine:
        first_hold = await run_until(engine, settled)
        rollout = first_hold.status["rollout"]["id"]
        engine.annotations[APPROVE] = f"{rollout}/1"
        second_hold = await run_until(engine, settled)
        engine.annotations[APPROVE] = f"{rollout}/4"
        result = await run_until(engine, settled)

    assert (first_hold.status["phase"], first_hold.status["currentBatch"]["index"]) == ("Paused", 1)
    assert (second_hold.status["phase"], second_hold.status["currentBatch"]["index"]) == ("Paused", 2)
    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, UPGRADES) == 5


async def test_the_abort_annotation_halts_the_rollout_before_the_next_batch(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, has_started_batch(1))
        engine.annotations[ABORT] = "true"
        result = await run_until(engine, settled)
        for _ in range(5):
            await engine.step()

    assert result.status["phase"] == "Halted"
    assert condition(result.status, "Degraded")["reason"] == "Aborted"
    assert count_requests(control, scale_set, UPGRADES) == 2


async def test_removing_the_abort_annotation_resumes_the_rollout(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, annotations={ABORT: "true"})) as engine:
        aborted = await run_until(engine, settled)
        del engine.annotations[ABORT]
        result = await run_until(engine, settled)

    assert aborted.status["phase"] == "Halted"
    assert result.status["phase"] == "Succeeded"
    assert scale_set_stats(control.stats(), scale_set)["doubleUpgrades"] == 0
