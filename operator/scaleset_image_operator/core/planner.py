"""The planner: from the desired image, one observation of Azure, the little the operator remembers, and the
people's controls, decide the one next step of a rollout. Pure: no I/O, no clock (``now`` is an input).

The truth is Azure's. What a rollout has achieved is derived on every pass from each instance's image,
``latestModelApplied``, provisioning state and health; ``Progress`` remembers only what Azure cannot tell:
the image to roll back to, the operation in flight (so a restart awaits it instead of repeating it), when the
current batch started (health timeout), the pause deadline, approvals consumed, and a sticky failure.

Rules (docs/architecture.md, "The planner's rules"), each a property test in tests/unit:
- the model's image is changed before any instance is upgraded, and only the image fields;
- at most one batch is in flight; with UpdateDomain a batch never spans two update domains;
- a batch starts only when every instance already on the target is healthy (or the unhealthy count is within
  ``maxUnhealthyInstances``), no operation is running and nothing in the scale set is busy;
- the same inputs give the same decision; a finished rollout decides nothing more to do;
- a changed target restarts from the model step, keeping instances already on it;
- a failure halts or rolls back (re-applies the previous image, then the upgraded batches in reverse).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from .images import Image
from .observation import InstanceView, OperationState, OperationView, ScaleSetView, Verdict
from .spec import Approval, Domain, OnFailure, RolloutPolicy, ScaleSetImageSpec, Strategy, UpgradePolicyRule

DEFAULT_POLL_SECONDS = 10.0


class Phase(StrEnum):
    PENDING = "Pending"
    PLANNED = "Planned"
    UPDATING_MODEL = "UpdatingModel"
    ROLLING_OUT = "RollingOut"
    PAUSED = "Paused"
    HALTED = "Halted"
    ROLLING_BACK = "RollingBack"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class Batch:
    index: int
    domains: tuple[Domain, ...]
    instance_ids: tuple[str, ...]


@dataclass(frozen=True)
class InFlight:
    """The batch the operator started and has not yet seen through: its Azure operation (while it runs) and
    when it started (the health timeout counts from there)."""

    batch_index: int
    instance_ids: tuple[str, ...]
    started_at: float
    operation: str = ""


@dataclass(frozen=True)
class Outcome:
    """A sticky end: ``Halted`` or ``Failed`` (rolled back), kept until the spec's generation changes."""

    phase: Phase
    reason: str
    message: str
    generation: int


@dataclass(frozen=True)
class Progress:
    target: Image | None = None
    rollout_id: str = ""
    """Names this rollout (``status.rollout.id``): an approval counts only for the rollout it names."""
    previous: Image | None = None
    model_written: bool = False
    in_flight: InFlight | None = None
    batches_started: int = 0
    pause_until: float | None = None
    rolling_back: bool = False
    failure: str = ""
    given_up: tuple[str, ...] = ()
    retry_failed: bool = False
    rollback_started_at: float | None = None
    outcome: Outcome | None = None
    started_at: float | None = None
    completed_at: float | None = None


@dataclass(frozen=True)
class Controls:
    """What people say through annotations, and the spec generation being acted on."""

    generation: int = 1
    approved: tuple[str, int] | None = None
    """(rollout id, batch index) from ``scaleset.dev/approve-batch: "<rollout id>/<batch index>"``."""
    abort: bool = False


@dataclass(frozen=True)
class EnforceManualUpgradePolicy:
    etag: str


@dataclass(frozen=True)
class UpdateModel:
    image: Image
    etag: str


@dataclass(frozen=True)
class UpgradeInstances:
    batch_index: int
    instance_ids: tuple[str, ...]


Action = EnforceManualUpgradePolicy | UpdateModel | UpgradeInstances


@dataclass(frozen=True)
class Decision:
    action: Action | None
    progress: Progress
    phase: Phase
    reason: str
    message: str
    target: Image
    batches: tuple[Batch, ...] = ()
    current: Batch | None = None
    degraded: str = ""
    requeue_after: float | None = None

    @property
    def ready(self) -> bool:
        """Every instance runs the target image and is healthy."""
        return self.phase is Phase.SUCCEEDED and not self.degraded


class StrategyNotApplicable(ValueError):
    """The strategy would put the whole scale set in one batch (e.g. Zone on a regional scale set)."""


def _domain_sort_key(domain: Domain | None) -> tuple[int, int, str]:
    if isinstance(domain, int):
        return (0, domain, "")
    return (1, int(domain) if domain and domain.isdigit() else 0, domain or "")


def plan_batches(instances: Sequence[InstanceView], policy: RolloutPolicy) -> tuple[Batch, ...]:
    """Every instance of the scale set in the order the rollout takes them. Stable across passes: a batch's
    index names the same domains whatever has been upgraded already."""
    ordered = sorted(instances, key=lambda i: (i.name_number, i.instance_id))
    if policy.strategy is Strategy.BATCH:
        size = max(1, policy.max_batch_size.of(len(ordered), round_up=True))
        return tuple(
            Batch(n // size, (), tuple(i.instance_id for i in ordered[n : n + size]))
            for n in range(0, len(ordered), size)
        )
    groups: dict[Domain | None, list[str]] = {}
    for instance in ordered:
        groups.setdefault(instance.domain(policy.strategy), []).append(instance.instance_id)
    if None in groups and len(ordered) > 1:
        what = {
            Strategy.ZONE: "zones (it is a regional scale set)",
            Strategy.FAULT_DOMAIN: "fault domains",
            Strategy.UPDATE_DOMAIN: "update domains",
        }[policy.strategy]
        raise StrategyNotApplicable(f"the {policy.strategy.value} strategy needs instances that report {what}")
    if len(groups) == 1 and len(ordered) > 1 and policy.strategy is not Strategy.UPDATE_DOMAIN:
        raise StrategyNotApplicable(
            f"every instance is in the same {policy.strategy.value.lower()}, so the {policy.strategy.value} strategy "
            "would upgrade the whole scale set at once; use UpdateDomain or Batch"
        )
    present = sorted(groups, key=_domain_sort_key)
    explicit = [domain for domain in policy.order if domain in groups]
    sequence = explicit + [domain for domain in present if domain not in explicit]
    step = (
        1
        if policy.strategy is Strategy.UPDATE_DOMAIN
        else max(1, policy.max_batch_size.of(len(sequence), round_up=True))
    )
    batches = []
    for index, start in enumerate(range(0, len(sequence), step)):
        domains = tuple(d for d in sequence[start : start + step] if d is not None)
        ids = tuple(i for d in sequence[start : start + step] for i in groups[d])
        batches.append(Batch(index, domains, ids))
    return tuple(batches)


def rollout_id(target: Image, started_at: float) -> str:
    """A short name for one rollout: its target and the moment it began (a drift repair of the same target, or the
    same target asked for again later, is another rollout)."""
    return hashlib.sha256(f"{target.key()}|{started_at:.6f}".encode()).hexdigest()[:6]


def _names(scale_set: str, instances: Iterable[InstanceView], why: dict[str, str]) -> str:
    return ", ".join(f"{scale_set}_{i.instance_id} ({why.get(i.instance_id, 'unhealthy')})" for i in instances)


class _Pass:
    """One planning pass; methods return the decision for the branch they handle."""

    def __init__(
        self,
        spec: ScaleSetImageSpec,
        desired: Image,
        observed: ScaleSetView,
        operation: OperationView | None,
        progress: Progress,
        controls: Controls,
        now: float,
        poll_seconds: float,
    ) -> None:
        self.spec = spec
        self.policy = spec.rollout
        self.desired = desired
        self.observed = observed
        self.operation = operation
        self.progress = progress
        self.controls = controls
        self.now = now
        self.poll = poll_seconds
        self.batches: tuple[Batch, ...] = ()
        self.operation_failure = ""
        self.by_id = {i.instance_id: i for i in observed.instances}

    @property
    def target(self) -> Image:
        if self.progress.rolling_back and self.progress.previous is not None:
            return self.progress.previous
        return self.progress.target or self.desired

    def decide(
        self,
        action: Action | None,
        phase: Phase,
        reason: str,
        message: str,
        *,
        degraded: str = "",
        current: Batch | None = None,
        requeue: float | None = None,
    ) -> Decision:
        if current is None and self.progress.in_flight is not None:
            current = next((b for b in self.batches if b.index == self.progress.in_flight.batch_index), None)
        return Decision(
            action, self.progress, phase, reason, message, self.target, self.batches, current, degraded, requeue
        )

    def moving_phase(self) -> Phase:
        if self.progress.rolling_back:
            return Phase.ROLLING_BACK
        if not self.target.same_as(self.observed.model_image):
            return Phase.UPDATING_MODEL
        return Phase.ROLLING_OUT

    # ------------------------------------------------------------------------------------------------

    def retarget(self) -> None:
        p = self.progress
        if p.outcome is not None and p.outcome.generation != self.controls.generation:
            p = replace(
                p,
                outcome=None,
                rolling_back=False,
                failure="",
                model_written=False,
                batches_started=0,
                given_up=(),
                retry_failed=True,
            )
        if p.target is not None and p.target.same_as(self.desired):
            # A status written before rollouts had ids gets one, so that its approvals can name it.
            self.progress = p if p.rollout_id else replace(p, rollout_id=rollout_id(p.target, p.started_at or self.now))
            return
        model = self.observed.model_image
        if p.target is None:
            previous = None if model is None or model.same_as(self.desired) else model
        elif p.completed_at is not None and not p.rolling_back:
            previous = p.target
        else:
            previous = p.previous
        keep = p.in_flight
        if keep is not None:
            keep = replace(keep, instance_ids=()) if keep.operation else None
        self.progress = Progress(
            target=self.desired,
            rollout_id=rollout_id(self.desired, self.now),
            previous=previous,
            in_flight=keep,
            started_at=self.now,
        )

    def fail(self, reason: str, message: str, *, may_roll_back: bool = True) -> Decision:
        p = self.progress
        can_roll_back = (
            may_roll_back
            and self.policy.on_failure is OnFailure.ROLLBACK
            and not p.rolling_back
            and p.previous is not None
            and p.target is not None
            and not p.previous.same_as(p.target)
        )
        if can_roll_back:
            self.progress = replace(
                p,
                rolling_back=True,
                model_written=False,
                in_flight=None,
                pause_until=None,
                failure=f"{reason}: {message}",
                rollback_started_at=self.now,
            )
            return self.decide(
                None,
                Phase.ROLLING_BACK,
                "RollingBack",
                f"rolling back to {p.previous.key() if p.previous else ''} after {message}",
                degraded=reason,
                requeue=0.0,
            )
        if p.rolling_back:
            message = f"rollback failed: {message} (the rollout had failed: {p.failure})"
        outcome = Outcome(Phase.HALTED, reason, message, self.controls.generation)
        self.progress = replace(p, outcome=outcome, in_flight=None, retry_failed=False)
        return self.decide(None, Phase.HALTED, reason, message, degraded=reason)

    def wait(self, reason: str, message: str, requeue: float | None = None) -> Decision:
        return self.decide(
            None,
            self.moving_phase(),
            reason,
            message,
            degraded=self.progress.failure.split(":")[0] if self.progress.rolling_back else "",
            requeue=self.poll if requeue is None else requeue,
        )

    # ------------------------------------------------------------------------------------------------

    def run(self) -> Decision:
        observed = self.observed
        if observed.orchestration_mode.lower() == "flexible":
            return self.decide(
                None,
                Phase.FAILED,
                "OrchestrationModeNotSupported",
                f"{observed.name} uses Flexible orchestration; only Uniform scale sets expose update "
                "domains and manual upgrades by instance id",
                degraded="OrchestrationModeNotSupported",
            )
        try:
            self.batches = plan_batches(observed.instances, self.policy)
        except StrategyNotApplicable as error:
            return self.decide(
                None,
                Phase.FAILED,
                "StrategyNotApplicable",
                f"{observed.name}: {error}",
                degraded="StrategyNotApplicable",
            )
        self.retarget()
        p = self.progress
        if p.outcome is not None:
            return self.decide(None, p.outcome.phase, p.outcome.reason, p.outcome.message, degraded=p.outcome.reason)
        if self.controls.abort:
            return self.decide(
                None,
                Phase.HALTED,
                "Aborted",
                "halted by the scaleset.dev/abort annotation; remove it to resume",
                degraded="Aborted",
            )
        awaited = self.await_operation()
        if awaited is not None:
            return awaited
        if observed.busy:
            busy = [i.instance_id for i in observed.instances if i.busy]
            what = (
                f"instances {', '.join(busy[:10])}{' …' if len(busy) > 10 else ''} are busy"
                if busy
                else f"the scale set is {observed.provisioning_state}"
            )
            return self.wait("AwaitingAzure", f"waiting: {what} in Azure")
        model_step = self.model_step()
        if model_step is not None:
            return model_step
        verified = self.verify_in_flight()
        if verified is not None:
            return verified
        return self.next_batch()

    def await_operation(self) -> Decision | None:
        in_flight = self.progress.in_flight
        if in_flight is None or not in_flight.operation:
            return None
        op = self.operation
        if op is None or op.url != in_flight.operation or not op.done:
            if self.now >= in_flight.started_at + self.policy.health_timeout_seconds:
                stuck = [self.by_id[i] for i in in_flight.instance_ids if i in self.by_id]
                return self.fail(
                    "UpgradeTimedOut",
                    f"batch {in_flight.batch_index}: Azure's operation has not finished "
                    f"within the health timeout of {self.policy.health_timeout_seconds:g}s: "
                    f"{_names(self.observed.name, stuck, {i.instance_id: i.provisioning_state for i in stuck})}",
                )
            return self.wait(
                "AwaitingOperation",
                f"batch {in_flight.batch_index}: waiting for Azure's operation on "
                f"instances {', '.join(in_flight.instance_ids)}",
            )
        failure = self.progress.failure
        if op.state is not OperationState.SUCCEEDED:
            failure = f"operation {op.state.value.lower()}: {op.error_code or 'no code'}: {op.error_message}".strip()
        self.progress = replace(
            self.progress,
            in_flight=replace(in_flight, operation=""),
            failure=failure if not self.progress.rolling_back else self.progress.failure,
        )
        self.operation_failure = "" if op.state is OperationState.SUCCEEDED else failure
        return None

    def model_step(self) -> Decision | None:
        observed, p, target = self.observed, self.progress, self.target
        if target.same_as(observed.model_image):
            return None
        if p.completed_at is not None and not p.rolling_back:
            self.progress = p = Progress(
                target=p.target,
                rollout_id=rollout_id(target, self.now),
                previous=observed.model_image,
                started_at=self.now,
            )
        elif p.model_written and not p.rolling_back:
            model = observed.model_image.key() if observed.model_image else "no image"
            return self.fail(
                "ModelChangedOutOfBand",
                f"the scale set's model image was changed outside the operator to {model} during the "
                f"rollout to {target.key()}; not overwriting it. Change spec.image (or any spec field) to "
                "resume",
                may_roll_back=False,
            )
        if observed.model_image is not None and not target.same_family(observed.model_image):
            return self.fail(
                "ImageChangeNotAllowed",
                f"Azure does not allow changing the model from {observed.model_image.key()} to "
                f"{target.key()} in place (a publisher or offer change, platform to custom image or back, or managed "
                "to VHD or back); create a new scale set for it",
                may_roll_back=False,
            )
        policy_step = self.upgrade_policy_step()
        if policy_step is not None:
            return policy_step
        if self.spec.dry_run:
            return self.dry_run(f"change the model image to {target.key()}, then upgrade {len(self.batches)} batches")
        self.progress = replace(p, model_written=True, started_at=p.started_at or self.now)
        phase = Phase.ROLLING_BACK if p.rolling_back else Phase.UPDATING_MODEL
        return self.decide(
            UpdateModel(target, observed.etag),
            phase,
            "UpdatingModel",
            f"changing the model image of {observed.name} to {target.key()}",
            degraded=self.progress.failure.split(":")[0] if p.rolling_back else "",
            requeue=self.poll,
        )

    def upgrade_policy_step(self) -> Decision | None:
        mode = self.observed.upgrade_mode
        if mode == "Manual":
            return None
        if self.spec.upgrade_policy is UpgradePolicyRule.ENFORCE:
            if self.spec.dry_run:
                return None  # the dry run's verdict says the mode would be set first
            return self.decide(
                EnforceManualUpgradePolicy(self.observed.etag),
                self.moving_phase(),
                "EnforcingManualUpgradePolicy",
                f"setting {self.observed.name}'s upgradePolicy.mode from {mode} to Manual first",
                requeue=self.poll,
            )
        return self.decide(
            None,
            Phase.HALTED,
            "UpgradePolicyNotManual",
            f"{self.observed.name} has upgradePolicy.mode {mode}: changing its image would upgrade "
            f"instances outside the operator's control. Set the mode to Manual, or set "
            "spec.upgradePolicy: Enforce to let the operator do it",
            degraded="UpgradePolicyNotManual",
        )

    def dry_run(self, what: str, *, current: Batch | None = None) -> Decision:
        """Where a real pass would write its first change, a dry run stops and says what it would do; every check
        before that point ran as in a real pass, so a rollout a real pass refuses is refused here the same way."""
        mode = self.observed.upgrade_mode
        first = f"set upgradePolicy.mode from {mode} to Manual, then " if mode != "Manual" else ""
        return self.decide(None, Phase.PLANNED, "DryRun", f"dry run: would {first}{what}", current=current)

    def judge(
        self, instances: Iterable[InstanceView], started_at: float | None
    ) -> tuple[list[InstanceView], list[InstanceView], dict[str, str]]:
        """Split instances into not-yet-decided and unhealthy (with why), by the health check and timeout."""
        target, waiting, bad, why = self.target, [], [], {}
        timed_out = started_at is not None and self.now >= started_at + self.policy.health_timeout_seconds
        for instance in instances:
            if instance.failed:
                bad.append(instance)
                why[instance.instance_id] = (
                    f"provisioning failed{': ' + instance.failure_code if instance.failure_code else ''}"
                )
                continue
            if not instance.runs(target):
                if self.operation_failure or timed_out:
                    bad.append(instance)
                    why[instance.instance_id] = "not upgraded"
                else:
                    waiting.append(instance)
                continue
            verdict = instance.verdict(self.policy.health_mode)
            if verdict is Verdict.UNHEALTHY:
                bad.append(instance)
                why[instance.instance_id] = "unhealthy"
            elif verdict is Verdict.WAITING:
                if timed_out:
                    bad.append(instance)
                    why[instance.instance_id] = "not healthy within the health timeout"
                else:
                    waiting.append(instance)
        return waiting, bad, why

    def unhealthy_limit(self) -> int:
        return self.policy.max_unhealthy.of(len(self.observed.instances), round_up=False)

    def verify_in_flight(self) -> Decision | None:
        p, in_flight = self.progress, self.progress.in_flight
        if in_flight is None:
            return None
        members = [self.by_id[i] for i in in_flight.instance_ids if i in self.by_id]
        waiting, bad, why = self.judge(members, in_flight.started_at)
        if waiting and not bad:
            deadline = in_flight.started_at + self.policy.health_timeout_seconds
            return self.wait(
                "WaitingForHealth",
                f"batch {in_flight.batch_index}: waiting for instances "
                f"{', '.join(i.instance_id for i in waiting)} to run {self.target.key()} and be healthy",
                requeue=max(0.0, min(self.poll, deadline - self.now)),
            )
        others = [
            i
            for i in self.observed.instances
            if i.instance_id not in in_flight.instance_ids
            and i.runs(self.target)
            and i.verdict(self.policy.health_mode) is Verdict.UNHEALTHY
        ]
        if len(bad) + len(others) > self.unhealthy_limit() or (self.operation_failure and bad):
            reason = "UpgradeFailed" if self.operation_failure or any(i.failed for i in bad) else "UnhealthyInstances"
            message = f"batch {in_flight.batch_index}: {_names(self.observed.name, bad + others, why)}"
            if self.operation_failure:
                message += f"; {self.operation_failure}"
            return self.fail(reason, message)
        more = any(not i.runs(self.target) for i in self.observed.instances)
        given_up = tuple(sorted({*p.given_up, *(i.instance_id for i in bad if not i.runs(self.target))}))
        self.progress = replace(
            p,
            in_flight=None,
            given_up=given_up,
            pause_until=self.now + self.policy.pause_seconds if more and self.policy.pause_seconds > 0 else None,
        )
        return None

    def next_batch(self) -> Decision:
        p, target = self.progress, self.target
        ordered = list(reversed(self.batches)) if p.rolling_back else list(self.batches)

        def needs_upgrade(instance: InstanceView) -> bool:
            # Rolling back re-images instances that failed before it began, even when they still run the previous
            # image; one that failed since (the rollback's own attempt, Azure's record says when) is not retried.
            failed_before = (
                instance.failed
                and instance.failed_at is not None
                and p.rollback_started_at is not None
                and instance.failed_at < p.rollback_started_at
            )
            return not instance.runs(target) or (p.rolling_back and failed_before)

        on_target = [i for i in self.observed.instances if not needs_upgrade(i)]
        waiting, bad, why = self.judge(on_target, None)
        # A failed instance is never retried by the rollout itself (Azure shows it failed even when the
        # operator lost its memory, so this holds across restarts); rolling back re-images it.
        failed = (
            []
            if p.rolling_back or p.retry_failed
            else [i for i in self.observed.instances if i.failed and not i.runs(target)]
        )
        why.update({i.instance_id: f"provisioning failed {i.failure_code}".strip() for i in failed})
        if len(bad) + len(failed) > self.unhealthy_limit():
            return self.fail(
                "UpgradeFailed" if failed or any(i.failed for i in bad) else "UnhealthyInstances",
                f"instances are failed or unhealthy: {_names(self.observed.name, bad + failed, why)}",
            )
        if waiting:
            index = next((b.index for b in self.batches if waiting[0].instance_id in b.instance_ids), 0)
            self.progress = replace(p, in_flight=InFlight(index, tuple(i.instance_id for i in waiting), self.now))
            return self.wait(
                "WaitingForHealth",
                f"waiting for instances {', '.join(i.instance_id for i in waiting)} "
                f"on {target.key()} to become healthy",
            )
        skip = set(p.given_up) | {i.instance_id for i in failed}
        todo = [
            b
            for b in ordered
            if any(i in self.by_id and i not in skip and needs_upgrade(self.by_id[i]) for i in b.instance_ids)
        ]
        if not todo and any(i in self.by_id for i in skip):
            left = [self.by_id[i] for i in skip if i in self.by_id]
            return self.fail(
                "UnhealthyInstances",
                f"every other instance runs {target.key()}, but "
                f"{_names(self.observed.name, left, {i.instance_id: 'failed to upgrade' for i in left})} "
                "did not; fix or delete them, then change the spec to retry",
                may_roll_back=False,
            )
        if not todo:
            if p.rolling_back:
                message = f"rolled back to {target.key()} after {p.failure}"
                self.progress = replace(
                    p,
                    outcome=Outcome(Phase.FAILED, "RolledBack", message, self.controls.generation),
                    completed_at=self.now,
                )
                return self.decide(None, Phase.FAILED, "RolledBack", message, degraded="RolledBack")
            if p.completed_at is None:
                self.progress = replace(p, completed_at=self.now, pause_until=None)
            total = len(self.observed.instances)
            if bad:
                return self.decide(
                    None,
                    Phase.SUCCEEDED,
                    "UnhealthyInstances",
                    f"all {total} instances run {target.key()}, but {_names(self.observed.name, bad, why)} "
                    "(within maxUnhealthyInstances)",
                    degraded="UnhealthyInstances",
                )
            return self.decide(
                None, Phase.SUCCEEDED, "RolloutComplete", f"all {total} instances run {target.key()} and are healthy"
            )
        batch = todo[0]
        if p.pause_until is not None and self.now < p.pause_until:
            return self.wait("Pausing", f"pausing before batch {batch.index}", requeue=p.pause_until - self.now)
        if self.policy.paused and not p.rolling_back:
            return self.decide(
                None,
                Phase.PAUSED,
                "Paused",
                f"paused by spec.rollout.paused before batch {batch.index}; set it to false to go on",
                current=batch,
            )
        if not p.rolling_back and self.needs_approval(batch):
            return self.decide(
                None,
                Phase.PAUSED,
                "AwaitingApproval",
                f"waiting for approval of batch {batch.index} of rollout {p.rollout_id}: kubectl annotate "
                f"scalesetimage <name> scaleset.dev/approve-batch={p.rollout_id}/{batch.index} --overwrite",
                current=batch,
            )
        policy_step = self.upgrade_policy_step()
        if policy_step is not None:
            return policy_step
        if self.spec.dry_run:
            return self.dry_run(f"upgrade {len(todo)} batches", current=batch)
        ids = tuple(i for i in batch.instance_ids if i in self.by_id and i not in skip and needs_upgrade(self.by_id[i]))
        self.progress = replace(
            p,
            in_flight=InFlight(batch.index, ids, self.now),
            pause_until=None,
            batches_started=p.batches_started + 1,
            started_at=p.started_at or self.now,
        )
        domains = ", ".join(str(d) for d in batch.domains)
        where = f"{self.policy.strategy.value} {domains}" if domains else f"batch {batch.index}"
        return self.decide(
            UpgradeInstances(batch.index, ids),
            self.moving_phase(),
            "RollingBackDomain" if p.rolling_back else "UpgradingDomain",
            f"upgrading {where}: instances {', '.join(ids)}",
            current=batch,
            degraded=p.failure.split(":")[0] if p.rolling_back else "",
            requeue=self.poll,
        )

    def needs_approval(self, batch: Batch) -> bool:
        approval, started = self.policy.approval, self.progress.batches_started
        if approval is Approval.NONE or started == 0:
            return False
        if approval is Approval.AFTER_FIRST_BATCH and started > 1:
            return False
        approved = self.controls.approved
        return approved is None or approved[0] != self.progress.rollout_id or approved[1] < batch.index


def plan(
    spec: ScaleSetImageSpec,
    desired: Image,
    observed: ScaleSetView,
    operation: OperationView | None,
    progress: Progress,
    controls: Controls,
    now: float,
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
) -> Decision:
    """Decide the next step. ``desired`` is the spec's image with ``latest`` already resolved to a version;
    ``operation`` is the state of ``progress.in_flight.operation`` if there is one."""
    return _Pass(spec, desired, observed, operation, progress, controls, now, poll_seconds).run()
