"""The ``ScaleSetImage`` status document (README, "status"), built from one decision, and read back.

Conditions follow ``metav1.Condition``: ``lastTransitionTime`` moves only when a condition's status flips,
and every condition carries the ``observedGeneration`` it was computed for. The planner's memory
(``Progress``) is kept in the same document — ``targetImage``, ``previousImage``, ``currentBatch`` and the
``rollout`` object — so the status written once per pass is also what a restarted operator resumes from.

``status.plan`` is for people (``kubectl describe``): each batch with its instance count and only its first
``PLAN_IDS_SHOWN`` instance ids, so a 1,000-instance scale set's status stays a page, not a thousand lines
(``scaleset-image plan`` lists every instance). Nothing reads the plan back. The batch in flight is the exception:
``currentBatch.instanceIds`` keeps every instance being upgraded, because a restarted operator awaits exactly those.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .images import Image
from .observation import InstanceView, ScaleSetView, Verdict
from .planner import Batch, Decision, InFlight, Outcome, Phase, Progress
from .spec import HealthMode, Strategy

READY, PROGRESSING, DEGRADED = "Ready", "Progressing", "Degraded"
MOVING_PHASES = frozenset({Phase.UPDATING_MODEL, Phase.ROLLING_OUT, Phase.ROLLING_BACK})
PLAN_IDS_SHOWN = 10
"""Instance ids listed per batch of ``status.plan`` (and of a ``currentBatch`` not yet in flight)."""


def rfc3339(epoch_seconds: float, *, precise: bool = False) -> str:
    """RFC 3339 in UTC; ``precise`` keeps microseconds (for deadlines the planner reads back)."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if precise else "%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool
    reason: str
    message: str
    generation: int | None = None
    """The spec generation this condition was computed for (default: the pass's)."""


def merge_conditions(
    existing: Sequence[Mapping[str, Any]], updates: Sequence[ConditionUpdate], generation: int, now: float
) -> list[dict[str, Any]]:
    """New conditions list: a condition keeps its ``lastTransitionTime`` unless its status flips."""
    by_type = {str(c.get("type")): c for c in existing if isinstance(c, Mapping)}
    merged = []
    for update in updates:
        status = "True" if update.status else "False"
        old = by_type.get(update.type)
        transition = (
            str(old["lastTransitionTime"])
            if old and old.get("status") == status and old.get("lastTransitionTime")
            else rfc3339(now)
        )
        merged.append(
            {
                "type": update.type,
                "status": status,
                "reason": update.reason,
                "message": update.message[:32768],
                "lastTransitionTime": transition,
                "observedGeneration": generation if update.generation is None else update.generation,
            }
        )
    return merged


def headline_reason(conditions: Sequence[Mapping[str, Any]]) -> str:
    """The reason of the condition that matters (``status.reason``, the Reason column of ``kubectl get``):
    ``Degraded``'s while it is True, else ``Progressing``'s, which says what a healthy rollout is doing or why
    it stands still (``Paused``, ``AwaitingApproval``, ``RolloutComplete``)."""
    by_type = {c.get("type"): c for c in conditions}
    degraded, progressing = by_type.get(DEGRADED) or {}, by_type.get(PROGRESSING) or {}
    chosen = degraded if degraded.get("status") == "True" else progressing
    return str(chosen.get("reason") or "")


def counts(
    instances: Sequence[InstanceView], target: Image, mode: HealthMode, in_flight: Collection[str] = ()
) -> dict[str, int]:
    tally = {"total": len(instances), "upgraded": 0, "upgrading": 0, "pending": 0, "failed": 0, "unhealthy": 0}
    for instance in instances:
        tally[instance_state(instance, target, mode, in_flight)] += 1
    return tally


def instance_state(instance: InstanceView, target: Image, mode: HealthMode, in_flight: Collection[str] = ()) -> str:
    """One of upgraded, upgrading, pending, failed, unhealthy (the ``instances`` metric's states). An instance of
    the batch in flight (``in_flight``: its instance ids) is upgrading from the moment its upgrade is started."""
    if instance.failed:
        return "failed"
    if instance.busy:
        return "upgrading"
    if not instance.runs(target):
        if instance.instance_id in in_flight:
            return "upgrading"
        return "unhealthy" if instance.health is not None and instance.health.value == "Unhealthy" else "pending"
    verdict = instance.verdict(mode)
    if verdict is Verdict.HEALTHY:
        return "upgraded"
    if verdict is Verdict.UNHEALTHY:
        return "unhealthy"
    return "upgrading"


def domains(
    instances: Sequence[InstanceView],
    target: Image,
    strategy: Strategy,
    mode: HealthMode,
    in_flight: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Per-domain summary; the Batch strategy is summarised by update domain (the heat map's rows)."""
    group_by = Strategy.UPDATE_DOMAIN if strategy is Strategy.BATCH else strategy
    groups: dict[Any, list[tuple[str, bool]]] = {}
    for instance in instances:
        entry = (instance_state(instance, target, mode, in_flight), instance.runs(target))
        groups.setdefault(instance.domain(group_by), []).append(entry)
    summary = []
    for domain in sorted(groups, key=lambda d: (isinstance(d, str), d if d is not None else -1)):
        states = [state for state, _ in groups[domain]]
        upgraded = states.count("upgraded")
        if upgraded == len(states):
            state = "Succeeded"
        elif "upgrading" in states:
            state = "Upgrading"
        elif "failed" in states or any(s == "unhealthy" and on_target for s, on_target in groups[domain]):
            state = "Failed"
        else:
            state = "Pending"
        summary.append(
            {
                "domain": domain if domain is not None else "",
                "instances": len(states),
                "upgraded": upgraded,
                "state": state,
            }
        )
    return summary


def _conditions(decision: Decision) -> list[ConditionUpdate]:
    moving = decision.phase in MOVING_PHASES
    ready_message = decision.message if decision.ready else f"not ready: {decision.message}"
    progressing_reason = (
        decision.reason
        if moving
        else {
            Phase.SUCCEEDED: "RolloutComplete",
            Phase.PLANNED: "DryRun",
            Phase.PAUSED: decision.reason,
        }.get(decision.phase, "Stopped")
    )
    degraded = bool(decision.degraded)
    return [
        ConditionUpdate(READY, decision.ready, "RolloutComplete" if decision.ready else decision.reason, ready_message),
        ConditionUpdate(PROGRESSING, moving, progressing_reason, decision.message),
        ConditionUpdate(
            DEGRADED,
            degraded,
            decision.degraded if degraded else "AsExpected",
            decision.message if degraded else "no problems",
        ),
    ]


def _batch(batch: Batch) -> dict[str, Any]:
    return {
        "index": batch.index,
        "domains": list(batch.domains),
        "instances": len(batch.instance_ids),
        "instanceIds": list(batch.instance_ids[:PLAN_IDS_SHOWN]),
    }


def _rollout_memory(progress: Progress) -> dict[str, Any]:
    memory: dict[str, Any] = {
        "target": progress.target.key() if progress.target else "",
        "id": progress.rollout_id,
        "modelWritten": progress.model_written,
        "batchesStarted": progress.batches_started,
        "rollingBack": progress.rolling_back,
    }
    if progress.pause_until is not None:
        memory["pauseUntil"] = rfc3339(progress.pause_until, precise=True)
    if progress.failure:
        memory["failure"] = progress.failure
    if progress.given_up:
        memory["givenUp"] = list(progress.given_up)
    if progress.retry_failed:
        memory["retryFailed"] = True
    if progress.rollback_started_at is not None:
        memory["rollbackStartedAt"] = rfc3339(progress.rollback_started_at, precise=True)
    if progress.outcome is not None:
        outcome = progress.outcome
        memory["outcome"] = {
            "phase": outcome.phase.value,
            "reason": outcome.reason,
            "message": outcome.message,
            "generation": outcome.generation,
        }
    return memory


def build_status(
    decision: Decision,
    observed: ScaleSetView,
    *,
    strategy: Strategy,
    mode: HealthMode,
    generation: int,
    now: float,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole status document for one pass (written once, as one patch)."""
    previous = previous or {}
    progress = decision.progress
    # While a batch runs, passes read only its operation: its instances are shown upgrading from its start.
    in_flight_ids = frozenset(progress.in_flight.instance_ids) if progress.in_flight else frozenset()
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": decision.phase.value,
        "targetImage": decision.progress.target.key() if decision.progress.target else decision.target.key(),
        "modelImage": observed.model_image.key() if observed.model_image else "",
        "previousImage": progress.previous.key() if progress.previous else "",
        "instances": counts(observed.instances, decision.target, mode, in_flight_ids),
        "domain": "",
        "domains": domains(observed.instances, decision.target, strategy, mode, in_flight_ids),
        "plan": [_batch(b) for b in decision.batches],
        "currentBatch": None,
        "message": decision.message,
        "startedAt": rfc3339(progress.started_at) if progress.started_at is not None else None,
        "completedAt": rfc3339(progress.completed_at) if progress.completed_at is not None else None,
        "rollout": _rollout_memory(progress),
        "conditions": merge_conditions(previous.get("conditions") or [], _conditions(decision), generation, now),
    }
    current = decision.current
    if current is not None:
        batch = _batch(current)
        in_flight = progress.in_flight
        if in_flight is not None and in_flight.batch_index == current.index:
            batch["instances"] = len(in_flight.instance_ids)
            batch["instanceIds"] = list(in_flight.instance_ids)
            batch["operation"] = in_flight.operation or None
            batch["startedAt"] = rfc3339(in_flight.started_at, precise=True)
        status["currentBatch"] = batch
        status["domain"] = ",".join(str(d) for d in current.domains) or f"batch {current.index}"
    elif progress.in_flight is not None:
        status["currentBatch"] = {
            "index": progress.in_flight.batch_index,
            "domains": [],
            "instances": len(progress.in_flight.instance_ids),
            "instanceIds": list(progress.in_flight.instance_ids),
            "operation": progress.in_flight.operation or None,
            "startedAt": rfc3339(progress.in_flight.started_at, precise=True),
        }
    tally = status["instances"]
    status["upgraded"] = f"{tally['upgraded']}/{tally['total']}"
    status["reason"] = headline_reason(status["conditions"])
    return status


def problem_status(
    reason: str,
    message: str,
    *,
    generation: int,
    now: float,
    previous: Mapping[str, Any] | None = None,
    phase: Phase = Phase.FAILED,
) -> dict[str, Any]:
    """Status for a pass that could not plan (invalid spec, scale set not found, Azure refusing): the planner's
    memory is carried over untouched, so nothing already under way is forgotten."""
    previous = previous or {}
    updates = [
        ConditionUpdate(READY, False, reason, f"not ready: {message}"),
        ConditionUpdate(PROGRESSING, False, reason, message),
        ConditionUpdate(DEGRADED, True, reason, message),
    ]
    carried = {
        key: previous[key]
        for key in (
            "targetImage",
            "previousImage",
            "modelImage",
            "currentBatch",
            "rollout",
            "startedAt",
            "completedAt",
            "instances",
            "domains",
            "plan",
            "upgraded",
            "domain",
        )
        if key in previous
    }
    conditions = merge_conditions(previous.get("conditions") or [], updates, generation, now)
    return {
        **carried,
        "observedGeneration": generation,
        "phase": phase.value,
        "reason": headline_reason(conditions),
        "message": message,
        "conditions": conditions,
    }


def transient_status(
    reason: str, message: str, *, generation: int, now: float, previous: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Status for a pass cut short by a passing Azure problem (throttling, 5xx): phase and progress stay as they
    were, ``Degraded`` says why nothing moved."""
    previous = previous or {}
    kept = [c for c in previous.get("conditions") or [] if c.get("type") in (READY, PROGRESSING)]
    updates = [
        ConditionUpdate(
            str(c["type"]),
            c.get("status") == "True",
            str(c.get("reason", "")),
            str(c.get("message", "")),
            generation=int(c["observedGeneration"]) if isinstance(c.get("observedGeneration"), int) else None,
        )
        for c in kept
    ]
    updates.append(ConditionUpdate(DEGRADED, True, reason, message))
    conditions = merge_conditions(previous.get("conditions") or [], updates, generation, now)
    return {
        **dict(previous),
        "observedGeneration": previous.get("observedGeneration", generation),
        "reason": headline_reason(conditions),
        "message": message,
        "conditions": conditions,
    }


def progress_from_status(status: Mapping[str, Any] | None) -> Progress:
    """The planner's memory as the last pass wrote it (an empty status gives a fresh rollout)."""
    if not status:
        return Progress()
    memory = status.get("rollout") or {}
    current = status.get("currentBatch") or None
    in_flight = None
    if isinstance(current, Mapping) and current.get("startedAt"):
        started = parse_rfc3339(current.get("startedAt"))
        if started is not None:
            in_flight = InFlight(
                int(current.get("index", 0)),
                tuple(str(i) for i in current.get("instanceIds") or []),
                started,
                str(current.get("operation") or ""),
            )
    outcome = None
    raw_outcome = memory.get("outcome")
    if isinstance(raw_outcome, Mapping):
        outcome = Outcome(
            Phase(raw_outcome.get("phase", Phase.HALTED.value)),
            str(raw_outcome.get("reason", "")),
            str(raw_outcome.get("message", "")),
            int(raw_outcome.get("generation", 0)),
        )
    return Progress(
        target=Image.parse_key(str(memory.get("target") or "")),
        rollout_id=str(memory.get("id") or ""),
        previous=Image.parse_key(str(status.get("previousImage") or "")),
        model_written=bool(memory.get("modelWritten", False)),
        in_flight=in_flight,
        batches_started=int(memory.get("batchesStarted", 0)),
        pause_until=parse_rfc3339(memory.get("pauseUntil")),
        rolling_back=bool(memory.get("rollingBack", False)),
        failure=str(memory.get("failure", "")),
        given_up=tuple(str(i) for i in memory.get("givenUp") or []),
        retry_failed=bool(memory.get("retryFailed", False)),
        rollback_started_at=parse_rfc3339(memory.get("rollbackStartedAt")),
        outcome=outcome,
        started_at=parse_rfc3339(status.get("startedAt")),
        completed_at=parse_rfc3339(status.get("completedAt")),
    )
