"""A restarted engine resumes from the status it last wrote, exactly where Azure is: the batch in flight is
awaited, not repeated, and no instance is upgraded twice (the simulator's safety counters)."""

from __future__ import annotations

from pathlib import Path

from component.enginekit import count_requests, engine_on, has_started_batch, run_until, ssi
from component.simkit import ScaleSet, scale_set_stats
from scaleset_image_operator.engine import settled
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


async def test_an_engine_restarted_while_a_batch_runs_awaits_it_and_finishes_the_rollout(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet, tmp_path: Path
) -> None:
    status_file = tmp_path / "status.json"
    async with engine_on(simulator, ssi(scale_set), status_file=status_file) as first:
        stopped = await run_until(first, has_started_batch(2))

    async with engine_on(simulator, ssi(scale_set), status_file=status_file) as restarted:
        assert restarted.status == stopped.status
        result = await run_until(restarted, settled)

    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, "VirtualMachineScaleSets_UpdateInstances") == 5
    assert count_requests(control, scale_set, "VirtualMachineScaleSets_Update") == 1
    stats = scale_set_stats(control.stats(), scale_set)
    assert (stats["doubleUpgrades"], stats["maxConcurrentDomains"]) == (0, 1)


async def test_an_engine_restarted_with_no_status_resumes_from_what_azure_shows(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set)) as first:
        await run_until(first, has_started_batch(2))

    async with engine_on(simulator, ssi(scale_set)) as forgetful:
        result = await run_until(forgetful, settled)

    assert result.status["phase"] == "Succeeded"
    assert count_requests(control, scale_set, "VirtualMachineScaleSets_Update") == 1
    stats = scale_set_stats(control.stats(), scale_set)
    assert (stats["doubleUpgrades"], stats["maxConcurrentDomains"]) == (0, 1)
