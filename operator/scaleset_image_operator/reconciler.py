"""One reconcile pass of one ScaleSetImage: observe -> plan -> execute at most one action -> outcome.

Every driver calls ``Reconciler.reconcile`` the same way: the kopf handlers (create, update, resume, timer),
the local engine used by ``make demo`` and the crash tests, and ``scaleset-image plan``. The pass returns the
whole new status (written once by the caller), the Kubernetes Events worth posting, and when to look again.
Azure problems are classified by the adapter; here they become a ``Degraded`` condition (permanent ones) or a
requeue after the time Azure asked for (transient ones). Nothing here knows about kopf.

While a batch's operation runs and nothing else asks for a decision (no spec change, no abort, no problem on
record, the health timeout not reached), the planner can only wait for that operation, so a pass reads only the
operation's status (one read instead of three) and changes nothing; the full observation comes once it is done.
Its polls are adaptive: once a batch of this rollout has finished, the next one is not polled before about 80 %
of that batch's duration has passed, then every ``poll_seconds``. Likewise a settled ScaleSetImage (Succeeded,
Ready, nothing on record) reads only the scale set's model at its steady check; the instances are listed again
when the model's etag has changed since they were last listed (an image edit, a scale-out or -in), or when
that was ``FULL_CHECK_PASSES`` steady intervals ago. Instances leave the model only when the model changes.
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
    InFlight,
    Phase,
    Progress,
    UpdateModel,
    UpgradeInstances,
    plan,
)
from .core.spec import ScaleSetImageSpec, parse_spec
from .core.status import build_status, problem_status, progress_from_status, transient_status
from .ports import Observation, ScaleSetGateway
from .settings import Settings

APPROVE_ANNOTATION = "scaleset.dev/approve-batch"
ESTIMATE_SHARE = 0.8
"""A running batch is first polled after this share of the previous batch's duration (then every poll)."""
FULL_CHECK_PASSES = 3
"""A settled ScaleSetImage has its instances listed at least every this many steady checks."""
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
    approved: tuple[str, int] | None = None
    raw = resource.annotations.get(APPROVE_ANNOTATION)
    if raw is not None:
        rollout, _, index = str(raw).strip().partition("/")
        # ASCII only: superscript, Arabic-Indic or fullwidth digits pass isdigit()
        if rollout.isascii() and rollout.isalnum() and index.isascii() and index.isdigit() and len(index) <= 6:
            approved = (rollout.lower(), int(index))
        else:
            notes.append(
                f"ignoring annotation {APPROVE_ANNOTATION}={raw!r}: expected <rollout id>/<batch index> such as "
                '"3f9c2a/1" (the rollout id is status.rollout.id)'
            )
    abort_raw = resource.annotations.get(ABORT_ANNOTATION)
    abort = False
    if abort_raw is not None:
        lowered = str(abort_raw).strip().lower()
        if lowered in ("true", "false"):
            abort = lowered == "true"
        else:
            notes.append(f'ignoring annotation {ABORT_ANNOTATION}={abort_raw!r}: expected "true" or "false"')
    return Controls(generation=resource.generation, approved=approved, abort=abort), notes


class Reconciler:
    def __init__(self, gateway: ScaleSetGateway, settings: Settings, clock: Callable[[], float]) -> None:
        self._gateway = gateway
        self._settings = settings
        self._clock = clock
        self._settled: dict[tuple[str, str], tuple[str, float]] = {}
        """Per settled ScaleSetImage: the model's etag when its instances were last listed, and when."""

    def forget(self, namespace: str, name: str) -> None:
        self._settled.pop((namespace, name), None)

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
        in_flight = progress.in_flight
        operation_url = in_flight.operation if in_flight and in_flight.operation else None
        key = (resource.namespace, resource.name)
        settled = self._settled.pop(key, None)
        try:
            if (
                settled is not None
                and self._only_the_model_matters(resource, spec, controls, notes, settled, now)
                and await self._gateway.model_etag(spec.scale_set) == settled[0]
            ):
                self._settled[key] = settled
                return PassResult(dict(resource.status), self._requeue(self._settings.steady_seconds))
            operation = None
            if (
                in_flight is not None
                and in_flight.operation
                and self._only_operation_matters(resource, spec, controls, progress, notes, now)
            ):
                operation = await self._gateway.operation_status(spec.scale_set, in_flight.operation)
                if not operation.done:
                    return PassResult(
                        dict(resource.status), self._requeue(self._operation_poll(resource, in_flight, now))
                    )
            observation = await self._gateway.observe(spec.scale_set, None if operation else operation_url)
            if operation is not None:
                observation = dataclasses.replace(observation, operation=operation)
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
            if spec.dry_run and decision.reason == "DryRun" and not desired.same_as(observation.scale_set.model_image):
                # A real pass would learn from Azure's answer to its PATCH whether the image exists; a dry run
                # asks before it would write, so that it refuses what the real pass would be refused.
                await self._gateway.check_image(spec.scale_set, desired, observation.scale_set.location)
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
            if spec.dry_run:
                message = f"Azure would refuse the image: {problem.message}"
                return self._problem(
                    resource,
                    problem.reason,
                    message,
                    now,
                    requeue=self._settings.steady_seconds,
                    observation=observation,
                )
            if not isinstance(decision.action, UpdateModel):
                return self._azure_problem(resource, problem, now, observation=observation)
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
        _remember_batch_time(status, resource.status, observation, in_flight, now)
        requeue = decision.requeue_after
        if requeue is None:
            requeue = self._settings.steady_seconds
            if decision.phase is Phase.SUCCEEDED and decision.action is None and not decision.degraded:
                self._settled[key] = (observation.scale_set.etag, now)
        events = tuple(_events(resource.status, status, decision, notes))
        kind = "degraded" if decision.degraded and decision.phase in (Phase.HALTED, Phase.FAILED) else "success"
        return PassResult(status, self._requeue(requeue), events, decision, observation, kind)

    def _only_operation_matters(
        self,
        resource: Resource,
        spec: ScaleSetImageSpec,
        controls: Controls,
        progress: Progress,
        notes: list[str],
        now: float,
    ) -> bool:
        """Whether the planner could only wait for the in-flight operation (see the module's docstring)."""
        in_flight = progress.in_flight
        return (
            in_flight is not None
            and progress.outcome is None
            and _nothing_asked(resource, controls, notes)
            and resource.status.get("phase")
            in (Phase.ROLLING_OUT.value, Phase.ROLLING_BACK.value, Phase.UPDATING_MODEL.value)
            and now < in_flight.started_at + spec.rollout.health_timeout_seconds
        )

    def _only_the_model_matters(
        self,
        resource: Resource,
        spec: ScaleSetImageSpec,
        controls: Controls,
        notes: list[str],
        settled: tuple[str, float],
        now: float,
    ) -> bool:
        """Whether a settled ScaleSetImage's steady check may read only the model (see the module's docstring)."""
        return (
            not spec.image.follows_source
            and _nothing_asked(resource, controls, notes)
            and now - settled[1] < FULL_CHECK_PASSES * self._settings.steady_seconds
            and resource.status.get("phase") == Phase.SUCCEEDED.value
            and _condition(resource.status, "Ready").get("status") == "True"
        )

    def _operation_poll(self, resource: Resource, in_flight: InFlight, now: float) -> float:
        """When to read a running operation again: every poll, but not before most of the time the previous
        batch of this rollout took has passed."""
        poll = self._settings.poll_seconds
        estimate = (resource.status.get("rollout") or {}).get("batchSeconds")
        if not isinstance(estimate, int | float):
            return poll
        return max(poll, in_flight.started_at + ESTIMATE_SHARE * estimate - now)

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


def _nothing_asked(resource: Resource, controls: Controls, notes: list[str]) -> bool:
    """No one asks for a decision: the spec is the one last reconciled, no abort, no malformed annotation, and no
    problem on record (``Degraded``), so a pass may read less than a full observation."""
    return (
        not controls.abort
        and not notes
        and resource.status.get("observedGeneration") == resource.generation
        and _condition(resource.status, "Degraded").get("status") != "True"
    )


def _remember_batch_time(
    status: dict[str, Any],
    previous: Mapping[str, Any],
    observation: Observation,
    in_flight: InFlight | None,
    now: float,
) -> None:
    """Keep in ``status.rollout.batchSeconds`` how long the last finished batch of this rollout took (to when the
    operator saw it end), the estimate ``_operation_poll`` uses; a new rollout starts without one."""
    rollout = status.get("rollout")
    if not isinstance(rollout, dict):
        return
    operation = observation.operation
    if in_flight is not None and operation is not None and operation.done and operation.url == in_flight.operation:
        rollout["batchSeconds"] = round(max(0.0, now - in_flight.started_at), 3)
        return
    known = (previous.get("rollout") or {}).get("batchSeconds")
    if isinstance(known, int | float) and status.get("startedAt") == previous.get("startedAt"):
        rollout["batchSeconds"] = known


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
