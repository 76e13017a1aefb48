"""The planner driving the simulated Azure through whole rollouts: one behaviour per test."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from scaleset_image_operator.core.planner import Controls, Phase, UpdateModel, UpgradeInstances
from scaleset_image_operator.core.quantities import IntOrPercent
from scaleset_image_operator.core.spec import Approval, HealthMode, OnFailure, Strategy, UpgradePolicyRule
from scaleset_image_operator.simulator.faults import FaultBook
from unit.rollout_harness import NEW, OLD, make_run


def upgrades(run: object) -> list[UpgradeInstances]:
    return [a for a in run.actions if isinstance(a, UpgradeInstances)]  # type: ignore[attr-defined]


def test_a_rollout_changes_the_model_first_then_one_update_domain_at_a_time_until_ready() -> None:
    run = make_run(capacity=10)
    final = run.until_settled()
    assert final.phase is Phase.SUCCEEDED
    assert isinstance(run.actions[0], UpdateModel)
    assert [a.instance_ids for a in upgrades(run)] == [("0", "5"), ("1", "6"), ("2", "7"), ("3", "8"), ("4", "9")]
    assert run.vmss.counters.max_concurrent_domains == 1
    assert run.world.counters.double_upgrades == 0
    assert run.violations == []


def test_a_finished_rollout_plans_nothing_more() -> None:
    run = make_run(capacity=5)
    run.until_settled()
    for _ in range(3):
        run.clock.t += 60
        decision = run.step()
        assert (decision.phase, decision.action) == (Phase.SUCCEEDED, None)


def test_planning_twice_on_the_same_observation_gives_the_same_decision() -> None:
    run = make_run(capacity=10)
    for _ in range(12):
        observed, operation = run.observe()
        from scaleset_image_operator.core.planner import plan

        first = plan(run.spec, run.desired, observed, operation, run.progress, run.controls, run.clock.t)
        second = plan(run.spec, run.desired, observed, operation, run.progress, run.controls, run.clock.t)
        assert first == second
        run.step()
        run.clock.t += 20


def test_an_explicit_order_is_followed_and_missing_domains_come_after_it() -> None:
    run = make_run(capacity=10, order=(3, 1))
    run.until_settled()
    first_domains = [int(a.instance_ids[0]) % 5 for a in upgrades(run)]
    assert first_domains == [3, 1, 0, 2, 4]


def test_the_batch_strategy_upgrades_fixed_size_batches_in_instance_order() -> None:
    run = make_run(capacity=7, strategy=Strategy.BATCH, max_batch_size=IntOrPercent(3))
    run.until_settled()
    assert [a.instance_ids for a in upgrades(run)] == [("0", "1", "2"), ("3", "4", "5"), ("6",)]


def test_a_percentage_batch_size_rounds_up() -> None:
    run = make_run(capacity=10, strategy=Strategy.BATCH, max_batch_size=IntOrPercent(25, percent=True))
    run.until_settled()
    assert [len(a.instance_ids) for a in upgrades(run)] == [3, 3, 3, 1]


def test_the_zone_strategy_takes_one_zone_per_batch() -> None:
    run = make_run(capacity=9, zones=["1", "2", "3"], strategy=Strategy.ZONE)
    run.until_settled()
    assert [a.instance_ids for a in upgrades(run)] == [("0", "3", "6"), ("1", "4", "7"), ("2", "5", "8")]


def test_the_zone_strategy_on_a_regional_scale_set_is_refused_without_touching_azure() -> None:
    run = make_run(capacity=5, strategy=Strategy.ZONE)
    final = run.until_settled()
    assert (final.phase, final.degraded) == (Phase.FAILED, "StrategyNotApplicable")
    assert run.actions == []


def test_a_pause_separates_batches() -> None:
    run = make_run(capacity=10, pause_seconds=120.0)
    run.until_settled(max_passes=800)
    started = [d for d in run.decisions if isinstance(d.action, UpgradeInstances)]
    gaps = [
        b.progress.in_flight.started_at - a.progress.in_flight.started_at  # type: ignore[union-attr]
        for a, b in itertools.pairwise(started)
    ]
    assert all(gap >= 120 + 60 for gap in gaps)


def test_a_failed_instance_halts_the_rollout_before_the_next_domain_and_names_it() -> None:
    faults = FaultBook()
    faults.add({"kind": "fail-upgrade", "instanceIds": ["6"]})
    run = make_run(capacity=10, faults=faults)
    final = run.until_settled()
    assert (final.phase, final.degraded) == (Phase.HALTED, "UpgradeFailed")
    assert "web_6" in final.message and "OSProvisioningTimedOut" in final.message
    assert [a.instance_ids for a in upgrades(run)] == [("0", "5"), ("1", "6")]


def test_rollback_returns_every_instance_to_the_previous_image_in_reverse_order() -> None:
    faults = FaultBook()
    faults.add({"kind": "unhealthy", "instanceIds": ["7"]})
    run = make_run(capacity=10, on_failure=OnFailure.ROLLBACK)
    run.world.faults = faults
    final = run.until_settled(max_passes=800)
    assert (final.phase, final.degraded) == (Phase.FAILED, "RolledBack")
    assert all(i.image["exactVersion"] == OLD.version for i in run.vmss.instances.values())
    forward, back = upgrades(run)[:3], upgrades(run)[3:]
    assert [a.instance_ids for a in forward] == [("0", "5"), ("1", "6"), ("2", "7")]
    assert [a.instance_ids for a in back] == [("2", "7"), ("1", "6"), ("0", "5")]
    assert run.vmss.counters.max_concurrent_domains == 1


def test_unhealthy_instances_within_the_limit_do_not_stop_the_rollout() -> None:
    faults = FaultBook()
    faults.add({"kind": "unhealthy", "instanceIds": ["2"]})
    run = make_run(capacity=10, faults=faults, max_unhealthy=IntOrPercent(1))
    assert run.until_settled().phase is not Phase.HALTED
    assert len(upgrades(run)) == 5


def test_an_instance_that_never_gets_healthy_fails_at_the_health_timeout() -> None:
    run = make_run(
        capacity=5, health_extension=True, health_mode=HealthMode.APPLICATION_HEALTH, health_timeout_seconds=300.0
    )
    run.world.faults.add({"kind": "stuck", "instanceIds": ["0"], "seconds": 10_000})
    final = run.until_settled(max_passes=800)
    assert final.phase is Phase.HALTED


def test_an_out_of_band_model_edit_during_the_rollout_halts_instead_of_overwriting() -> None:
    run = make_run(capacity=10)
    for _ in range(8):
        run.step()
        run.clock.t += 5
    other = {
        "properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": "22.04.202410020"}}}}
    }
    run.world.update(run.vmss, other, if_match=None)
    final = run.until_settled()
    assert (final.phase, final.degraded) == (Phase.HALTED, "ModelChangedOutOfBand")
    assert run.vmss.profile["storageProfile"]["imageReference"]["version"] == "22.04.202410020"


def test_a_target_changed_mid_rollout_restarts_from_the_model_and_keeps_upgraded_instances() -> None:
    run = make_run(capacity=10)
    for _ in range(30):
        run.step()
        run.clock.t += 5
    done_before = {i.instance_id for i in run.vmss.instances.values() if i.image["exactVersion"] == NEW.version}
    assert done_before
    newer = OLD.with_version("22.04.202410020")
    run.desired = newer
    run.spec = replace(run.spec, image=newer)
    final = run.until_settled()
    assert final.phase is Phase.SUCCEEDED
    assert all(i.image["exactVersion"] == newer.version for i in run.vmss.instances.values())
    assert run.world.counters.double_upgrades == 0


def test_scale_out_during_the_rollout_needs_no_upgrade_and_scale_in_is_dropped() -> None:
    run = make_run(capacity=10)
    for _ in range(20):
        run.step()
        run.clock.t += 5
    run.world.update(run.vmss, {"sku": {"capacity": 13}}, if_match=None)
    final = run.until_settled()
    assert final.phase is Phase.SUCCEEDED
    assert len(run.vmss.instances) == 13
    run.world.update(run.vmss, {"sku": {"capacity": 8}}, if_match=None)
    assert run.until_settled().phase is Phase.SUCCEEDED


def test_a_scale_set_not_in_manual_mode_is_refused_unless_enforced() -> None:
    refused = make_run(capacity=5, upgrade_policy="Automatic")
    final = refused.until_settled()
    assert (final.phase, final.degraded) == (Phase.HALTED, "UpgradePolicyNotManual")
    assert refused.actions == []
    enforced = make_run(capacity=5, upgrade_policy="Automatic")
    enforced.spec = replace(enforced.spec, upgrade_policy=UpgradePolicyRule.ENFORCE)
    assert enforced.until_settled().phase is Phase.SUCCEEDED
    assert enforced.vmss.counters.max_concurrent_domains == 1


def test_a_dry_run_writes_nothing() -> None:
    run = make_run(capacity=10, dry_run=True)
    final = run.until_settled()
    assert final.phase is Phase.PLANNED
    assert run.actions == [] and run.vmss.counters.model_writes == 0
    assert len(final.batches) == 5


def test_paused_finishes_nothing_new() -> None:
    run = make_run(capacity=10, paused=True)
    final = run.until_settled()
    assert final.phase is Phase.PAUSED
    assert upgrades(run) == []


def test_a_canary_holds_after_the_first_batch_until_approved() -> None:
    run = make_run(capacity=10, approval=Approval.AFTER_FIRST_BATCH)
    held = run.until_settled()
    assert (held.phase, held.reason) == (Phase.PAUSED, "AwaitingApproval")
    assert len(upgrades(run)) == 1
    run.controls = Controls(approved=(held.progress.rollout_id, 1))
    assert run.until_settled().phase is Phase.SUCCEEDED
    assert len(upgrades(run)) == 5


def test_an_approval_naming_another_rollout_releases_nothing() -> None:
    run = make_run(capacity=10, approval=Approval.AFTER_FIRST_BATCH)
    held = run.until_settled()
    other = "0" * 6 if held.progress.rollout_id != "0" * 6 else "1" * 6
    run.controls = Controls(approved=(other, 1))
    again = run.until_settled()
    assert (again.phase, again.reason) == (Phase.PAUSED, "AwaitingApproval")
    assert held.progress.rollout_id in again.message
    assert len(upgrades(run)) == 1


def test_each_batch_approval_holds_before_every_later_batch() -> None:
    run = make_run(capacity=10, approval=Approval.EACH_BATCH)
    for expected in range(1, 5):
        held = run.until_settled()
        assert held.reason == "AwaitingApproval"
        run.controls = Controls(approved=(held.progress.rollout_id, expected))
    assert run.until_settled().phase is Phase.SUCCEEDED


def test_abort_halts_and_removing_it_resumes() -> None:
    run = make_run(capacity=10)
    for _ in range(6):
        run.step()
        run.clock.t += 5
    run.controls = Controls(abort=True)
    aborted = run.until_settled()
    assert (aborted.phase, aborted.degraded) == (Phase.HALTED, "Aborted")
    run.controls = Controls()
    assert run.until_settled().phase is Phase.SUCCEEDED


def test_a_halt_is_sticky_until_the_spec_generation_changes() -> None:
    faults = FaultBook()
    faults.add({"kind": "fail-upgrade", "instanceIds": ["0"]})
    run = make_run(capacity=5, faults=faults)
    assert run.until_settled().phase is Phase.HALTED
    run.clock.t += 600
    assert run.step().phase is Phase.HALTED
    run.controls = Controls(generation=2)
    assert run.until_settled().phase is Phase.SUCCEEDED


@pytest.mark.parametrize("kill_every", [2, 3, 5, 7])
def test_losing_every_nth_status_write_never_upgrades_an_instance_twice(kill_every: int) -> None:
    run = make_run(capacity=15, pause_seconds=30.0)
    for n in range(600):
        decision = run.step(crash=n % kill_every == 0)
        if decision.phase is Phase.SUCCEEDED:
            break
        run.clock.t += 5
    assert decision.phase is Phase.SUCCEEDED
    assert run.world.counters.double_upgrades == 0
    assert run.vmss.counters.max_concurrent_domains == 1
