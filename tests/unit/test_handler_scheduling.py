"""When a pass runs and what it writes, as ``handlers.run_pass`` decides it (kopf's timer and change handlers call it).

A fake reconciler stands in for Azure: these tests are about the timing of passes and the status PATCH only."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf

from scaleset_image_operator.handlers import OperatorState, run_pass
from scaleset_image_operator.reconciler import PassResult, Resource

TICK = 0.2


class Recorder:
    """Answers every pass with ``status`` and ``requeue``, and remembers when it was called."""

    def __init__(self, status: dict[str, Any], requeue: float) -> None:
        self.status = status
        self.requeue = requeue
        self.calls: list[float] = []

    async def reconcile(self, resource: Resource) -> PassResult:
        self.calls.append(time.monotonic())
        return PassResult(dict(self.status), self.requeue)


def body(status: dict[str, Any] | None = None) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {"namespace": "ns", "name": "web", "generation": 1},
        "spec": {},
    }
    if status is not None:
        raw["status"] = status
    return kopf.Body(raw)


def state_for(recorder: Recorder) -> OperatorState:
    return OperatorState(recorder, tick=TICK)  # type: ignore[arg-type]


async def test_a_timer_tick_shortly_before_the_due_time_runs_the_pass_at_that_time_not_a_tick_later() -> None:
    recorder = Recorder({"phase": "RollingOut"}, requeue=0.1)
    state = state_for(recorder)
    await run_pass(body(), kopf.Patch(), state, trigger="create")
    due = state.due[("ns", "web")]

    await run_pass(body(), kopf.Patch(), state, trigger="timer")

    assert len(recorder.calls) == 2
    assert due - 0.011 <= recorder.calls[1] < due + 0.05


async def test_a_timer_tick_more_than_a_tick_before_the_due_time_does_nothing() -> None:
    recorder = Recorder({"phase": "RollingOut"}, requeue=5 * TICK)
    state = state_for(recorder)
    await run_pass(body(), kopf.Patch(), state, trigger="create")
    started = time.monotonic()

    await run_pass(body(), kopf.Patch(), state, trigger="timer")

    assert len(recorder.calls) == 1
    assert time.monotonic() - started < TICK / 2


async def test_a_new_object_is_reconciled_once_by_the_first_tick_or_the_create_handler() -> None:
    recorder = Recorder({"phase": "RollingOut"}, requeue=10.0)
    state = state_for(recorder)

    await asyncio.gather(
        run_pass(body(), kopf.Patch(), state, trigger="timer"),
        run_pass(body(), kopf.Patch(), state, trigger="create"),
    )

    assert len(recorder.calls) == 1


async def test_a_change_always_runs_a_pass_even_before_the_due_time() -> None:
    recorder = Recorder({"phase": "RollingOut"}, requeue=10.0)
    state = state_for(recorder)
    await run_pass(body(), kopf.Patch(), state, trigger="create")

    await run_pass(body(), kopf.Patch(), state, trigger="update")

    assert len(recorder.calls) == 2


async def test_a_pass_that_changes_nothing_the_cluster_holds_sends_no_status_patch() -> None:
    status = {"phase": "Succeeded", "currentBatch": None, "rollout": {"operation": None, "batchesStarted": 5}}
    stored = {"phase": "Succeeded", "rollout": {"batchesStarted": 5}}  # nulls are absent after a merge patch
    recorder = Recorder(status, requeue=600.0)
    state = state_for(recorder)
    state.statuses[("ns", "web")] = dict(status)
    patch = kopf.Patch()

    await run_pass(body(stored), patch, state, trigger="update")

    assert len(recorder.calls) == 1
    assert not patch


async def test_a_pass_writes_the_status_when_the_cluster_does_not_hold_it_yet() -> None:
    status = {"phase": "Succeeded", "message": "done"}
    recorder = Recorder(status, requeue=600.0)
    state = state_for(recorder)
    state.statuses[("ns", "web")] = dict(status)  # written by the last pass, but the watch has not shown it yet
    patch = kopf.Patch()

    await run_pass(body({"phase": "RollingOut", "message": "upgrading"}), patch, state, trigger="update")

    assert patch["status"] == {"phase": "Succeeded", "message": "done"}


async def test_a_key_the_new_status_dropped_at_any_depth_is_removed_from_the_cluster() -> None:
    # A pause between batches is over: the planner's memory no longer has pauseUntil. A merge patch that only sent
    # the new rollout object would leave the old pauseUntil in place, and a restarted operator would read it back.
    known = {"phase": "RollingOut", "rollout": {"batchesStarted": 2, "pauseUntil": "2026-11-26T04:14:12Z"}}
    new = {"phase": "RollingOut", "rollout": {"batchesStarted": 2}}
    recorder = Recorder(new, requeue=10.0)
    state = state_for(recorder)
    state.statuses[("ns", "web")] = known
    patch = kopf.Patch()

    await run_pass(body(known), patch, state, trigger="update")

    assert patch["status"] == {"phase": "RollingOut", "rollout": {"batchesStarted": 2, "pauseUntil": None}}


async def test_a_stale_key_left_in_the_cluster_is_removed_even_when_the_operator_never_knew_it() -> None:
    stored = {"phase": "Succeeded", "rollout": {"batchesStarted": 5, "pauseUntil": "2026-11-26T04:14:12Z"}}
    new = {"phase": "Succeeded", "rollout": {"batchesStarted": 5}}
    recorder = Recorder(new, requeue=600.0)
    state = state_for(recorder)
    state.statuses[("ns", "web")] = dict(new)
    patch = kopf.Patch()

    await run_pass(body(stored), patch, state, trigger="timer")

    assert patch["status"]["rollout"] == {"batchesStarted": 5, "pauseUntil": None}
