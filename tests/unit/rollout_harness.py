"""Drives the pure planner against the simulator's resource provider in-process (no HTTP, a hand-driven clock).

Each pass does what the reconciler does: observe (ARM JSON -> core values through the Azure adapter's
converters), plan, execute at most one action against the simulated Azure, remember the new progress. A
"crash" throws away what the pass would have written to status, as a killed operator would.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from scaleset_image_operator.azure.convert import operation_from_arm, scale_set_from_arm
from scaleset_image_operator.core.images import Image
from scaleset_image_operator.core.observation import OperationView, ScaleSetView
from scaleset_image_operator.core.planner import (
    Controls,
    Decision,
    EnforceManualUpgradePolicy,
    Phase,
    Progress,
    UpdateModel,
    UpgradeInstances,
    plan,
)
from scaleset_image_operator.core.spec import RolloutPolicy, ScaleSetImageSpec, ScaleSetRef, Strategy
from scaleset_image_operator.simulator import render
from scaleset_image_operator.simulator.clock import SimClock
from scaleset_image_operator.simulator.errors import ArmError
from scaleset_image_operator.simulator.faults import FaultBook
from scaleset_image_operator.simulator.images import ImageCatalog
from scaleset_image_operator.simulator.model import ScaleSet
from scaleset_image_operator.simulator.world import World

SUB = "00000000-0000-0000-0000-000000000001"
JAMMY = ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2")
OLD = Image.platform(*JAMMY, "22.04.202409110")
NEW = Image.platform(*JAMMY, "22.04.202411010")
TERMINAL = frozenset({Phase.SUCCEEDED, Phase.HALTED, Phase.FAILED, Phase.PLANNED, Phase.PAUSED})


class HandClock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Run:
    world: World
    clock: HandClock
    vmss: ScaleSet
    spec: ScaleSetImageSpec
    desired: Image = NEW
    progress: Progress = field(default_factory=Progress)
    controls: Controls = field(default_factory=Controls)
    decisions: list[Decision] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def observe(self) -> tuple[ScaleSetView, OperationView | None]:
        self.world.advance()
        vms = [
            render.vm(self.vmss, i, self.world.clock, expand_instance_view=True) for i in self.vmss.sorted_instances()
        ]
        observed = scale_set_from_arm(render.scale_set(self.vmss), vms)
        operation = None
        in_flight = self.progress.in_flight
        if in_flight is not None and in_flight.operation:
            record = self.world.operations[in_flight.operation]
            operation = operation_from_arm(in_flight.operation, render.operation(record, self.world.clock))
        return observed, operation

    def step(self, *, crash: bool = False) -> Decision:
        observed, operation = self.observe()
        decision = plan(
            self.spec, self.desired, observed, operation, self.progress, self.controls, self.clock.t, poll_seconds=5.0
        )
        self.decisions.append(decision)
        self.check(decision, observed)
        progress = decision.progress
        action = decision.action
        try:
            if isinstance(action, UpdateModel):
                patch = {"properties": {"virtualMachineProfile": {"storageProfile": action.image.model_patch()}}}
                self.world.update(self.vmss, patch, if_match=action.etag)
            elif isinstance(action, EnforceManualUpgradePolicy):
                self.world.update(
                    self.vmss, {"properties": {"upgradePolicy": {"mode": "Manual"}}}, if_match=action.etag
                )
            elif isinstance(action, UpgradeInstances):
                record = self.world.manual_upgrade(self.vmss, {"instanceIds": list(action.instance_ids)})
                assert progress.in_flight is not None
                progress = replace(progress, in_flight=replace(progress.in_flight, operation=record.op_id))
        except ArmError:
            progress = self.progress
        if action is not None:
            self.actions.append(action)
        if not crash:
            self.progress = progress
        return decision

    def check(self, decision: Decision, observed: ScaleSetView) -> None:
        action = decision.action
        if isinstance(action, UpgradeInstances):
            if not decision.target.same_as(observed.model_image):
                self.violations.append(f"upgrade before the model holds {decision.target.key()}")
            if observed.busy:
                self.violations.append("upgrade started while Azure was busy")
            if self.spec.rollout.strategy is Strategy.UPDATE_DOMAIN:
                domains = {i.update_domain for i in observed.instances if i.instance_id in action.instance_ids}
                if len(domains) > 1:
                    self.violations.append(f"one batch spans update domains {sorted(domains)}")
        if isinstance(action, UpdateModel) and self.spec.dry_run:
            self.violations.append("model written in a dry run")

    def until_settled(self, *, max_passes: int = 400, step: float = 5.0) -> Decision:
        decision = self.step()
        for _ in range(max_passes):
            if decision.phase in TERMINAL and decision.action is None and decision.requeue_after is None:
                return decision
            self.clock.t += step
            decision = self.step()
        raise AssertionError(f"no settled state after {max_passes} passes: {decision.phase} {decision.message}")


def make_run(
    *,
    capacity: int = 10,
    zones: list[str] | None = None,
    upgrade_policy: str = "Manual",
    desired: Image = NEW,
    image: Image = OLD,
    upgrade_seconds: float = 60,
    warmup: float = 10,
    health_extension: bool = True,
    dry_run: bool = False,
    faults: FaultBook | None = None,
    **rollout: Any,
) -> Run:
    clock = HandClock()
    world = World(
        SimClock(1.0, monotonic=clock, wall=clock),
        ImageCatalog.with_defaults(),
        faults or FaultBook(),
    )
    vmss = world.create_from_control(
        {
            "subscriptionId": SUB,
            "resourceGroup": "rg",
            "name": "web",
            "capacity": capacity,
            "zones": zones or [],
            "image": {"publisher": image.publisher, "offer": image.offer, "sku": image.sku, "version": image.version},
            "upgradePolicy": upgrade_policy,
            "upgradeSeconds": upgrade_seconds,
            "healthWarmupSeconds": warmup,
            "healthExtension": health_extension,
        }
    )
    rollout.setdefault("pause_seconds", 0.0)
    spec = ScaleSetImageSpec(ScaleSetRef(SUB, "rg", "web"), desired, RolloutPolicy(**rollout), dry_run=dry_run)
    return Run(world, clock, vmss, spec, desired)
