"""The planner's rules (docs/architecture.md) as properties: generated scale sets, policies, faults and crashes,
checked against the planner's own decisions and against the simulated Azure's safety counters."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleset_image_operator.core.observation import Verdict
from scaleset_image_operator.core.planner import Phase, UpdateModel, UpgradeInstances
from scaleset_image_operator.core.quantities import IntOrPercent
from scaleset_image_operator.core.spec import HealthMode, OnFailure, Strategy
from scaleset_image_operator.simulator.faults import FaultBook
from unit.rollout_harness import NEW, OLD, Run, make_run

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def rollouts(draw: st.DrawFn) -> tuple[Run, set[str]]:
    capacity = draw(st.integers(min_value=1, max_value=24))
    zonal = draw(st.booleans())
    strategies = [Strategy.UPDATE_DOMAIN, Strategy.BATCH] + ([Strategy.ZONE] if zonal else [Strategy.FAULT_DOMAIN])
    strategy = draw(st.sampled_from(strategies))
    batch = IntOrPercent(1)
    if strategy is not Strategy.UPDATE_DOMAIN:
        batch = draw(
            st.one_of(
                st.integers(1, 6).map(IntOrPercent), st.integers(1, 100).map(lambda p: IntOrPercent(p, percent=True))
            )
        )
    faults = FaultBook()
    broken: set[str] = set()
    health_mode = draw(st.sampled_from([HealthMode.AUTO, HealthMode.PROVISIONING_STATE]))
    for kind in ("fail-upgrade", "unhealthy"):
        ids = draw(st.sets(st.integers(0, capacity - 1).map(str), max_size=2))
        if ids:
            faults.add({"kind": kind, "instanceIds": sorted(ids), "count": -1})
            if kind == "fail-upgrade" or health_mode is HealthMode.AUTO:
                broken |= ids
    run = make_run(
        capacity=capacity,
        zones=["1", "2", "3"] if zonal else None,
        strategy=strategy,
        max_batch_size=batch,
        pause_seconds=draw(st.sampled_from([0.0, 15.0])),
        on_failure=draw(st.sampled_from(list(OnFailure))),
        max_unhealthy=IntOrPercent(draw(st.integers(0, 2))),
        health_mode=health_mode,
        upgrade_seconds=draw(st.sampled_from([20.0, 60.0])),
        faults=faults,
    )
    return run, broken


def drive(run: Run, crashes: list[bool]) -> Phase:
    for n in range(900):
        decision = run.step(crash=crashes[n % len(crashes)] if crashes else False)
        if (
            decision.phase in (Phase.SUCCEEDED, Phase.HALTED, Phase.FAILED)
            and decision.action is None
            and decision.requeue_after is None
        ):
            return decision.phase
        run.clock.t += 5
    raise AssertionError(f"did not converge: {run.decisions[-1].phase} {run.decisions[-1].message}")


@SETTINGS
@given(rollouts(), st.lists(st.booleans(), max_size=7))
def test_every_rollout_ends_ready_halted_or_rolled_back_without_unsafe_steps(
    generated: tuple[Run, set[str]], crashes: list[bool]
) -> None:
    run, broken = generated
    phase = drive(run, crashes)
    assert run.violations == []
    assert run.world.counters.double_upgrades == 0
    if run.spec.rollout.strategy is Strategy.UPDATE_DOMAIN:
        assert run.vmss.counters.max_concurrent_domains <= 1
    images = {i.image.get("exactVersion") for i in run.vmss.instances.values()}
    if phase is Phase.SUCCEEDED:
        assert images == {NEW.version}
        assert run.decisions[-1].ready == (not broken), "Ready only when no instance is unhealthy"
    if phase is Phase.FAILED:
        assert images == {OLD.version}
        assert run.decisions[-1].reason == "RolledBack"


@SETTINGS
@given(rollouts())
def test_the_model_is_written_only_with_the_target_or_the_previous_image(generated: tuple[Run, set[str]]) -> None:
    run, _ = generated
    drive(run, [])
    written = [a.image for a in run.actions if isinstance(a, UpdateModel)]
    assert written and written[0].same_as(NEW)
    assert all(image.same_as(NEW) or image.same_as(OLD) for image in written)


@SETTINGS
@given(rollouts())
def test_no_batch_starts_while_instances_already_upgraded_are_unhealthy_beyond_the_limit(
    generated: tuple[Run, set[str]],
) -> None:
    run, _ = generated
    limit = run.spec.rollout.max_unhealthy.value
    for _ in range(900):
        observed, _ = run.observe()
        decision = run.step()
        if isinstance(decision.action, UpgradeInstances) and not decision.progress.rolling_back:
            bad = [
                i
                for i in observed.instances
                if i.runs(decision.target) and i.verdict(run.spec.rollout.health_mode) is not Verdict.HEALTHY
            ]
            assert len(bad) <= limit
        if (
            decision.phase in (Phase.SUCCEEDED, Phase.HALTED, Phase.FAILED)
            and decision.action is None
            and decision.requeue_after is None
        ):
            break
        run.clock.t += 5


@SETTINGS
@given(rollouts())
def test_a_dry_run_never_writes(generated: tuple[Run, set[str]]) -> None:
    run, _ = generated
    from dataclasses import replace

    run.spec = replace(run.spec, dry_run=True)
    for _ in range(20):
        assert run.step().action is None
        run.clock.t += 5
    assert run.vmss.counters.model_writes == 0 and run.world.counters.upgrades == 0
