"""One reconcile pass of one ScaleSetImage: observe -> plan -> execute at most one action -> outcome.

Every driver calls ``Reconciler.reconcile`` the same way: the kopf handlers (create, update, resume, timer),
the local engine used by ``make demo`` and the crash tests, and ``scaleset-image plan``. The pass returns the
whole new status (written once by the caller), the Kubernetes Events worth posting, and when to look again.
Azure problems are classified by the adapter; here they become a ``Degraded`` condition (permanent ones) or a
requeue after the time Azure asked for (transient ones). Nothing here knows about kopf.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .azure.credentials import RENEW_INTERVAL_SECONDS
from .azure.errors import AuthFailed, AzureProblem, ImageRejected, PreconditionFailed, Transient
from .core.planner import (
    Controls,
    Decision,
    EnforceManualUpgradePolicy,
    Phase,
    UpdateModel,
    UpgradeInstances,
    plan,
)
from .core.spec import ScaleSetImageSpec, parse_spec
from .core.status import build_status, problem_status, progress_from_status, transient_status
from .ports import Observation, ScaleSetGateway
from .settings import Settings

APPROVE_ANNOTATION = "scaleset.dev/approve-batch"
ABORT_ANNOTATION = "scaleset.dev/abort"


@dataclass(frozen=True)
class Resource:
    """The parts of a ScaleSetImage a pass reads."""

    namespace: str
    name: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str
    batch: int | None = None
    """The batch the event is about (BatchStarted, BatchSucceeded), for logs; Kubernetes Events carry the message."""
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class PassResult:
    status: dict[str, Any]
    requeue_after: float | None
    events: tuple[Event, ...] = ()
    decision: Decision | None = None
    observation: Observation | None = None
    result: str = "success"
    """``success``, ``transient`` (Azure asked to wait), ``degraded`` (a problem a person must fix)."""


def read_controls(resource: Resource) -> tuple[Controls, list[str]]:
    """Approval and abort from annotations; malformed values are ignored and reported, never guessed at."""
    notes: list[str] = []
    approved: int | None = None
    raw = resource.annotations.get(APPROVE_ANNOTATION)
    if raw is not None:
        text = str(raw).strip()
        if (
            text.isascii() and text.isdigit() and len(text) <= 6
        ):  # ASCII only: superscript, Arabic-Indic or fullwidth digits pass isdigit()
            approved = int(text)
        else:
            notes.append(f'ignoring annotation {APPROVE_ANNOTATION}={raw!r}: expected a batch index such as "1"')
    abort_raw = resource.annotations.get(ABORT_ANNOTATION)
    abort = False
    if abort_raw is not None:
        lowered = str(abort_raw).strip().lower()
        if lowered in ("true", "false"):
            abort = lowered == "true"
        else:
            notes.append(f'ignoring annotation {ABORT_ANNOTATION}={abort_raw!r}: expected "true" or "false"')
    return Controls(generation=resource.generation, approved_batch=approved, abort=abort), notes


class Reconciler:
    def __init__(self, gateway: ScaleSetGateway, settings: Settings, clock: Callable[[], float]) -> None:
        self._gateway = gateway
        self._settings = settings
        self._clock = clock

    def _requeue(self, seconds: float | None) -> float:
        return min(
            self._settings.max_requeue, max(0.5, seconds if seconds is not None else self._settings.poll_seconds)
        )

    async def reconcile(self, resource: Resource) -> PassResult:
        now = self._clock()
        spec, problems = parse_spec(resource.spec)
        if spec is None:
            message = "; ".join(str(p) for p in problems)
            return self._problem(resource, "InvalidSpec", f"invalid spec: {message}", now, requeue=None)
        controls, notes = read_controls(resource)
        progress = progress_from_status(resource.status)
        operation_url = progress.in_flight.operation if progress.in_flight and progress.in_flight.operation else None
        try:
            observation = await self._gateway.observe(spec.scale_set, operation_url)
            desired = await self._gateway.resolve_image(spec.scale_set, spec.image, observation.scale_set.location)
        except AzureProblem as problem:
            return self._azure_problem(resource, problem, now)
        decision = plan(
            spec,
            desired,
            observation.scale_set,
            observation.operation,
            progress,
            controls,
            now,
            poll_seconds=self._settings.poll_seconds,
        )
        if notes:
            decision = dataclasses.replace(decision, message=f"{decision.message} ({'; '.join(notes)})")
        try:
            refusal = self._recent_refusal(resource, decision, now)
            if refusal is not None:
                return self._problem(
                    resource,
                    refusal["reason"],
                    refusal["message"],
                    now,
                    requeue=self._settings.steady_seconds,
                    observation=observation,
                )
            decision = await self._execute(spec, decision)
        except PreconditionFailed:
            decision = dataclasses.replace(decision, progress=progress, action=None, requeue_after=0.0)
        except ImageRejected as problem:
            assert isinstance(decision.action, UpdateModel)
            message = f"Azure refused the image: {problem.message}"
            result = self._problem(
                resource, problem.reason, message, now, requeue=self._settings.steady_seconds, observation=observation
            )
            refused = {
                "image": decision.action.image.key(),
                "generation": resource.generation,
                "at": now,
                "reason": problem.reason,
                "message": message,
            }
            result.status["rollout"] = {**(result.status.get("rollout") or {}), "refused": refused}
            return result
        except AzureProblem as problem:
            return self._azure_problem(resource, problem, now, observation=observation)
        status = build_status(
            decision,
            observation.scale_set,
            strategy=spec.rollout.strategy,
            mode=spec.rollout.health_mode,
            generation=resource.generation,
            now=now,
            previous=resource.status,
        )
        requeue = decision.requeue_after
        if requeue is None:
            requeue = self._settings.steady_seconds
        events = tuple(_events(resource.status, status, decision, notes))
        kind = "degraded" if decision.degraded and decision.phase in (Phase.HALTED, Phase.FAILED) else "success"
        return PassResult(status, self._requeue(requeue), events, decision, observation, kind)

    def _recent_refusal(self, resource: Resource, decision: Decision, now: float) -> dict[str, Any] | None:
        """An image Azure refused for this generation is not sent again until the spec changes or
        ``steady_seconds`` pass (a gallery image may finish replicating meanwhile)."""
        action = decision.action
        refused = (resource.status.get("rollout") or {}).get("refused")
        if not isinstance(action, UpdateModel) or not isinstance(refused, Mapping):
            return None
        same = refused.get("image") == action.image.key() and refused.get("generation") == resource.generation
        at = refused.get("at")
        if same and isinstance(at, int | float) and now - at < self._settings.steady_seconds:
            return dict(refused)
        return None

    async def _execute(self, spec: ScaleSetImageSpec, decision: Decision) -> Decision:
        action, ref = decision.action, spec.scale_set
        if isinstance(action, UpdateModel):
            await self._gateway.update_model_image(ref, action.image, action.etag)
        elif isinstance(action, EnforceManualUpgradePolicy):
            await self._gateway.set_manual_upgrade_mode(ref, action.etag)
        elif isinstance(action, UpgradeInstances):
            url = await self._gateway.upgrade_instances(ref, action.instance_ids)
            in_flight = decision.progress.in_flight
            if in_flight is not None:
                progress = dataclasses.replace(
                    decision.progress, in_flight=dataclasses.replace(in_flight, operation=url)
                )
                decision = dataclasses.replace(decision, progress=progress)
        return decision

    def _problem(
        self,
        resource: Resource,
        reason: str,
        message: str,
        now: float,
        *,
        requeue: float | None,
        observation: Observation | None = None,
    ) -> PassResult:
        status = problem_status(reason, message, generation=resource.generation, now=now, previous=resource.status)
        events = tuple(_events(resource.status, status, None, []))
        return PassResult(
            status, self._requeue(requeue) if requeue is not None else None, events, None, observation, "degraded"
        )

    def _azure_problem(
        self, resource: Resource, problem: AzureProblem, now: float, observation: Observation | None = None
    ) -> PassResult:
        if isinstance(problem, Transient | AuthFailed):
            # A refused credential is a person's problem (Degraded) but says nothing about the rollout: its phase
            # and progress stay as they were, and the pass is tried again (a fixed role assignment is picked up).
            status = transient_status(
                problem.reason, problem.message, generation=resource.generation, now=now, previous=resource.status
            )
            events = tuple(_events(resource.status, status, None, []))
            if isinstance(problem, AuthFailed):
                # Again after the credential may be renewed (a minute), or sooner when settled passes are.
                requeue = self._requeue(min(self._settings.steady_seconds, RENEW_INTERVAL_SECONDS))
                return PassResult(status, requeue, events, None, observation, "degraded")
            return PassResult(status, self._requeue(problem.retry_after), events, None, observation, "transient")
        requeue = self._settings.steady_seconds
        return self._problem(resource, problem.reason, problem.message, now, requeue=requeue, observation=observation)


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _batch_fields(batch: Mapping[str, Any]) -> tuple[int | None, tuple[str, ...]]:
    index = batch.get("index")
    return (index if isinstance(index, int) else None), tuple(str(d) for d in batch.get("domains") or ())


def _events(old: Mapping[str, Any], new: Mapping[str, Any], decision: Decision | None, notes: list[str]) -> list[Event]:
    """The Kubernetes Events one pass is worth: what it did, and every change of phase or problem."""
    events: list[Event] = []
    action = decision.action if decision else None
    if isinstance(action, UpdateModel):
        events.append(
            Event(
                "Normal",
                "ModelUpdated",
                f"model image set to {action.image.key()} (was {new.get('modelImage') or 'unknown'})",
            )
        )
    elif isinstance(action, EnforceManualUpgradePolicy):
        events.append(Event("Normal", "UpgradePolicyEnforced", "scale set upgradePolicy.mode set to Manual"))
    elif isinstance(action, UpgradeInstances) and decision is not None:
        started = new.get("currentBatch") or {}
        events.append(Event("Normal", "BatchStarted", decision.message, *_batch_fields(started)))
    old_batch, new_batch = old.get("currentBatch") or {}, new.get("currentBatch") or {}
    if (
        old_batch.get("startedAt")
        and (not new_batch.get("startedAt") or new_batch.get("index") != old_batch.get("index"))
        and new.get("phase") not in (Phase.HALTED.value, Phase.FAILED.value)
    ):
        events.append(
            Event(
                "Normal",
                "BatchSucceeded",
                f"batch {old_batch.get('index')} (domains "
                f"{old_batch.get('domains') or []}) runs the target and is healthy",
                *_batch_fields(old_batch),
            )
        )
    old_phase, new_phase = old.get("phase"), new.get("phase")
    if new_phase != old_phase:
        kind = {
            Phase.SUCCEEDED.value: ("Normal", "RolloutSucceeded"),
            Phase.HALTED.value: ("Warning", "RolloutHalted"),
            Phase.ROLLING_BACK.value: ("Warning", "RollingBack"),
            Phase.FAILED.value: ("Warning", "RolloutFailed"),
            Phase.PAUSED.value: ("Normal", "RolloutPaused"),
        }.get(str(new_phase))
        if kind is not None:
            events.append(Event(kind[0], kind[1], str(new.get("message", ""))))
    old_degraded, new_degraded = _condition(old, "Degraded"), _condition(new, "Degraded")
    if (
        new_degraded.get("status") == "True"
        and (new_degraded.get("reason"), new_degraded.get("message"))
        != (old_degraded.get("reason"), old_degraded.get("message"))
        and new_phase == old_phase
    ):
        events.append(Event("Warning", str(new_degraded.get("reason")), str(new_degraded.get("message"))))
    events.extend(
        Event("Warning", "InvalidAnnotation", note) for note in notes if note not in str(old.get("message", ""))
    )
    return events
