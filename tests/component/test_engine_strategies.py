"""The engine's rollout strategies against the simulator: which instances go together, in which order, and how
far apart. Order and concurrency are read from the simulator's audit (instance transitions) and safety
counters, never from the engine's own status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import groupby

from azure.mgmt.compute.aio import ComputeManagementClient

from component.enginekit import (
    condition,
    engine_on,
    placement,
    requests_of,
    run_until,
    ssi,
    upgrade_starts,
)
from component.simkit import ScaleSet, jammy, most_instances_updating_at_once, scale_set_stats
from scaleset_image_operator.engine import settled
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


def domain_runs(starts: list[dict], domain_of: Callable[[str], object]) -> list[object]:
    """The domains in the order they were upgraded, one entry per uninterrupted run of the same domain."""
    return [domain for domain, _ in groupby(domain_of(e["instanceId"]) for e in starts)]


def upgrade_calls(control: SimulatorControl, scale_set: ScaleSet) -> list[dict]:
    """The manualUpgrade requests sent for ``scale_set``, oldest first."""
    audit = control.audit(scaleSet=scale_set.name, kind="request")
    return requests_of(audit, "VirtualMachineScaleSets_UpdateInstances")


async def test_the_default_strategy_upgrades_one_update_domain_at_a_time_in_domain_order(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=10)
    where = await placement(compute, scale_set)

    async with engine_on(simulator, ssi(scale_set)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert scale_set_stats(control.stats(), scale_set)["maxConcurrentDomains"] == 1
    starts = upgrade_starts(control, scale_set)
    assert domain_runs(starts, lambda i: where[i].update_domain) == [0, 1, 2, 3, 4]
    assert len(upgrade_calls(control, scale_set)) == 5


async def test_an_explicit_order_is_followed(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(image=jammy())
    where = await placement(compute, scale_set)

    async with engine_on(simulator, ssi(scale_set, order=[3, 1, 4, 0, 2])) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    starts = upgrade_starts(control, scale_set)
    assert domain_runs(starts, lambda i: where[i].update_domain) == [3, 1, 4, 0, 2]
    assert scale_set_stats(control.stats(), scale_set)["maxConcurrentDomains"] == 1


async def test_an_order_naming_only_some_domains_takes_the_rest_in_domain_order_afterwards(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(image=jammy())
    where = await placement(compute, scale_set)

    async with engine_on(simulator, ssi(scale_set, order=[4])) as engine:
        await run_until(engine, settled)

    assert domain_runs(upgrade_starts(control, scale_set), lambda i: where[i].update_domain) == [4, 0, 1, 2, 3]


async def test_the_fault_domain_strategy_upgrades_max_batch_size_fault_domains_at_a_time(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(image=jammy())
    where = await placement(compute, scale_set)

    async with engine_on(simulator, ssi(scale_set, strategy="FaultDomain", maxBatchSize=2)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert [b["domains"] for b in result.status["plan"]] == [[0, 1], [2, 3], [4]]
    calls = upgrade_calls(control, scale_set)
    assert len(calls) == 3
    fault_domains = [where[e["instanceId"]].fault_domain for e in upgrade_starts(control, scale_set)]
    assert [sorted(set(fault_domains[0:2])), sorted(set(fault_domains[2:4])), fault_domains[4:]] == [
        [0, 1],
        [2, 3],
        [4],
    ]
    assert scale_set_stats(control.stats(), scale_set)["maxConcurrentDomains"] <= 2


async def test_the_zone_strategy_upgrades_a_zonal_scale_set_one_zone_at_a_time(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    compute: ComputeManagementClient,
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=6, zones=["1", "2", "3"])
    where = await placement(compute, scale_set)
    assert sorted({p.zone for p in where.values()}) == ["1", "2", "3"]

    async with engine_on(simulator, ssi(scale_set, strategy="Zone")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert [b["domains"] for b in result.status["plan"]] == [["1"], ["2"], ["3"]]
    assert domain_runs(upgrade_starts(control, scale_set), lambda i: where[i].zone) == ["1", "2", "3"]
    assert len(upgrade_calls(control, scale_set)) == 3


async def test_the_zone_strategy_on_a_regional_scale_set_fails_without_upgrading_anything(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set, strategy="Zone")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Failed"
    assert condition(result.status, "Degraded")["reason"] == "StrategyNotApplicable"
    assert upgrade_calls(control, scale_set) == []


async def test_the_batch_strategy_upgrades_max_batch_size_instances_at_a_time(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=7)

    async with engine_on(simulator, ssi(scale_set, strategy="Batch", maxBatchSize=3)) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert [b["instanceIds"] for b in result.status["plan"]] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert len(upgrade_calls(control, scale_set)) == 3
    transitions = control.audit(scaleSet=scale_set.name, kind="transition")
    assert most_instances_updating_at_once([t for t in transitions if t["field"] == "provisioning"]) == 3


async def test_a_percent_batch_size_is_a_share_of_the_instances_rounded_up(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=8)

    async with engine_on(simulator, ssi(scale_set, strategy="Batch", maxBatchSize="25%")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert [len(b["instanceIds"]) for b in result.status["plan"]] == [2, 2, 2, 2]
    assert len(upgrade_calls(control, scale_set)) == 4
    transitions = control.audit(scaleSet=scale_set.name, kind="transition")
    assert most_instances_updating_at_once([t for t in transitions if t["field"] == "provisioning"]) == 2


def seconds_from_first_healthy_to_second_batch(control: SimulatorControl, scale_set: ScaleSet) -> float:
    """From the moment batch 0's instance turned healthy (its end) to batch 1's manualUpgrade, in real seconds."""
    _, second = (datetime.fromisoformat(e["time"]) for e in upgrade_calls(control, scale_set))
    transitions = control.audit(scaleSet=scale_set.name, kind="transition")
    first_healthy = next(
        datetime.fromisoformat(t["time"]) for t in transitions if t["field"] == "health" and t["to"] == "Healthy"
    )
    return (second - first_healthy).total_seconds()


async def test_pause_between_batches_separates_the_batches_in_time(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=2, updateDomains=2)

    async with engine_on(simulator, ssi(scale_set, pauseBetweenBatches="2s")) as engine:
        result = await run_until(engine, settled)

    assert result.status["phase"] == "Succeeded"
    assert seconds_from_first_healthy_to_second_batch(control, scale_set) >= 1.0


async def test_the_pause_between_batches_is_never_shorter_than_asked(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Callable[..., ScaleSet]
) -> None:
    scale_set = scale_sets(image=jammy(), capacity=2, updateDomains=2)

    async with engine_on(simulator, ssi(scale_set, pauseBetweenBatches="1s")) as engine:
        await run_until(engine, settled)

    assert seconds_from_first_healthy_to_second_batch(control, scale_set) >= 1.0
