"""The status document the engine writes each pass (README, "status"): conditions with metav1.Condition
semantics, instance counts, domains, the plan, and the batch in flight with its Azure operation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from component.enginekit import TARGET_VERSION, condition, engine_on, run_until, ssi
from component.simkit import JAMMY, JAMMY_VERSIONS, ScaleSet, jammy
from scaleset_image_operator.engine import settled
from scaleset_image_operator.reconciler import PassResult
from scaleset_image_operator.simulator import SimulatorThread

CONDITIONS = ("Ready", "Progressing", "Degraded")


def key(version: str) -> str:
    return f"{JAMMY['publisher']}:{JAMMY['offer']}:{JAMMY['sku']}:{version}"


def transitions(passes: list[PassResult], kind: str) -> list[tuple[str, str]]:
    """(status, lastTransitionTime) of one condition over the passes, consecutive repeats folded."""
    seen: list[tuple[str, str]] = []
    for result in passes:
        entry = condition(result.status, kind)
        pair = (entry["status"], entry["lastTransitionTime"])
        if not seen or seen[-1] != pair:
            seen.append(pair)
    return seen


async def rollout(simulator: SimulatorThread, scale_set: ScaleSet) -> list[PassResult]:
    passes: list[PassResult] = []
    async with engine_on(simulator, ssi(scale_set)) as engine:
        await run_until(engine, settled, passes=passes)
    return passes


async def test_every_pass_reports_ready_progressing_and_degraded_for_the_generation_it_saw(
    simulator: SimulatorThread, scale_set: ScaleSet
) -> None:
    passes = await rollout(simulator, scale_set)

    for result in passes:
        conditions = result.status["conditions"]
        assert [c["type"] for c in conditions] == list(CONDITIONS)
        assert {c["observedGeneration"] for c in conditions} == {1}
        assert all(c["lastTransitionTime"].endswith("Z") and c["reason"] and c["message"] for c in conditions)
        assert result.status["observedGeneration"] == 1


async def test_a_condition_keeps_its_last_transition_time_while_its_status_does_not_flip(
    simulator: SimulatorThread, scale_set: ScaleSet
) -> None:
    passes = await rollout(simulator, scale_set)

    assert [status for status, _ in transitions(passes, "Degraded")] == ["False"]
    assert [status for status, _ in transitions(passes, "Progressing")] == ["True", "False"]
    assert [status for status, _ in transitions(passes, "Ready")] == ["False", "True"]


async def test_a_settled_status_keeps_its_transition_times_on_later_passes_and_a_new_generation(
    simulator: SimulatorThread, scale_set: ScaleSet
) -> None:
    async with engine_on(simulator, ssi(scale_set)) as engine:
        done = await run_until(engine, settled)
        await asyncio.sleep(1.1)
        engine.generation = 2
        later = await engine.step()

    for kind in CONDITIONS:
        before, after = condition(done.status, kind), condition(later.status, kind)
        assert (after["status"], after["lastTransitionTime"]) == (before["status"], before["lastTransitionTime"])
        assert after["observedGeneration"] == 2


async def test_the_batch_in_flight_is_reported_with_its_azure_operation(
    simulator: SimulatorThread, scale_set: ScaleSet
) -> None:
    passes = await rollout(simulator, scale_set)

    running = [r.status["currentBatch"] for r in passes if (r.status.get("currentBatch") or {}).get("operation")]
    assert {b["index"] for b in running} == {0, 1, 2, 3, 4}
    batch = next(b for b in running if b["index"] == 2)
    assert batch["domains"] == [2]
    assert batch["instanceIds"] == ["2"]
    assert batch["operation"].startswith(f"{simulator.url}/subscriptions/{scale_set.subscription_id}/")
    assert "/operations/" in batch["operation"]
    assert batch["startedAt"].endswith("Z")


async def test_instance_counts_always_add_up_to_the_scale_set(simulator: SimulatorThread, scale_set: ScaleSet) -> None:
    passes = await rollout(simulator, scale_set)

    for result in passes:
        counts: dict[str, Any] = result.status["instances"]
        assert set(counts) == {"total", "upgraded", "upgrading", "pending", "failed", "unhealthy"}
        assert counts["total"] == 5
        assert sum(v for k, v in counts.items() if k != "total") == 5
    upgraded = [r.status["instances"]["upgraded"] for r in passes]
    assert upgraded == sorted(upgraded)


async def test_a_finished_rollout_reports_the_whole_status_document(
    simulator: SimulatorThread, scale_set: ScaleSet
) -> None:
    passes = await rollout(simulator, scale_set)
    status = passes[-1].status

    assert status["phase"] == "Succeeded"
    assert (status["targetImage"], status["modelImage"]) == (key(TARGET_VERSION), key(TARGET_VERSION))
    assert status["previousImage"] == key(JAMMY_VERSIONS[0])
    assert status["instances"] == {"total": 5, "upgraded": 5, "upgrading": 0, "pending": 0, "failed": 0, "unhealthy": 0}
    assert status["domains"] == [{"domain": d, "instances": 1, "upgraded": 1, "state": "Succeeded"} for d in range(5)]
    assert status["plan"] == [{"index": d, "domains": [d], "instances": 1, "instanceIds": [str(d)]} for d in range(5)]
    assert status["currentBatch"] is None
    assert status["startedAt"] <= status["completedAt"]
    assert condition(status, "Ready") | {"lastTransitionTime": ""} == {
        "type": "Ready",
        "status": "True",
        "reason": "RolloutComplete",
        "message": status["message"],
        "lastTransitionTime": "",
        "observedGeneration": 1,
    }


async def test_domains_report_their_progress_while_the_rollout_runs(
    simulator: SimulatorThread, scale_sets: Callable[..., ScaleSet]
) -> None:
    slow_enough_to_be_seen_upgrading = scale_sets(image=jammy(), capacity=3, updateDomains=3, upgradeSeconds=15)

    passes = await rollout(simulator, slow_enough_to_be_seen_upgrading)

    states = [tuple(d["state"] for d in r.status["domains"]) for r in passes]
    assert ("Succeeded", "Upgrading", "Pending") in states
    assert ("Succeeded", "Succeeded", "Upgrading") in states
    # A domain is Upgrading from the pass that starts its batch (passes then read only the operation), never before.
    assert all(
        states.index(later) > states.index(earlier)
        for earlier, later in [
            (("Upgrading", "Pending", "Pending"), ("Succeeded", "Upgrading", "Pending")),
            (("Succeeded", "Upgrading", "Pending"), ("Succeeded", "Succeeded", "Upgrading")),
        ]
    )
    assert states[-1] == ("Succeeded", "Succeeded", "Succeeded")
