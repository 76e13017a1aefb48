"""What the operator sees of a scale set in one observation: the model and every instance.

Tiny internal values the Azure adapter converts SDK objects into (one VM list call per observation), with
the pure predicates the planner needs. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .images import Image
from .spec import Domain, HealthMode, Strategy

BUSY_STATES = frozenset({"Creating", "Updating", "Deleting", "Migrating"})


class Health(StrEnum):
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    INITIALIZING = "Initializing"
    UNKNOWN = "Unknown"


class Verdict(StrEnum):
    """An instance's health as a rollout judges it."""

    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    WAITING = "Waiting"


@dataclass(frozen=True)
class InstanceView:
    instance_id: str
    update_domain: int | None
    fault_domain: int | None
    zone: str | None
    latest_model_applied: bool
    image: Image | None
    provisioning_state: str
    power_state: str
    health: Health | None
    failure_code: str = ""
    failed_at: float | None = None
    """When Azure reported the provisioning failure (epoch seconds), if it did."""

    @property
    def busy(self) -> bool:
        return self.provisioning_state in BUSY_STATES

    @property
    def failed(self) -> bool:
        return self.provisioning_state == "Failed"

    @property
    def name_number(self) -> int:
        return int(self.instance_id) if self.instance_id.isdigit() else 0

    def domain(self, strategy: Strategy) -> Domain | None:
        if strategy is Strategy.UPDATE_DOMAIN:
            return self.update_domain
        if strategy is Strategy.FAULT_DOMAIN:
            return self.fault_domain
        if strategy is Strategy.ZONE:
            return self.zone
        return None

    def runs(self, image: Image) -> bool:
        return image.same_as(self.image)

    def verdict(self, mode: HealthMode) -> Verdict:
        """Healthy, unhealthy, or not decided yet, by the health-check mode (Auto uses the Application
        Health signal when the instance reports one, else provisioning and power state)."""
        if self.failed:
            return Verdict.UNHEALTHY
        if self.busy or self.provisioning_state != "Succeeded":
            return Verdict.WAITING
        if mode is HealthMode.NONE:
            return Verdict.HEALTHY
        if self.power_state != "running":
            return Verdict.WAITING
        use_signal = mode is HealthMode.APPLICATION_HEALTH or (mode is HealthMode.AUTO and self.health is not None)
        if not use_signal:
            return Verdict.HEALTHY
        if self.health is Health.HEALTHY:
            return Verdict.HEALTHY
        if self.health is Health.UNHEALTHY:
            return Verdict.UNHEALTHY
        return Verdict.WAITING


@dataclass(frozen=True)
class ScaleSetView:
    id: str
    name: str
    location: str
    etag: str
    upgrade_mode: str
    orchestration_mode: str
    model_image: Image | None
    capacity: int
    provisioning_state: str
    instances: tuple[InstanceView, ...]

    @property
    def busy(self) -> bool:
        return self.provisioning_state in BUSY_STATES or any(i.busy for i in self.instances)


class OperationState(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


@dataclass(frozen=True)
class OperationView:
    """The state of a long-running Azure operation the operator started (read from its status URL)."""

    url: str
    state: OperationState
    error_code: str = ""
    error_message: str = ""

    @property
    def done(self) -> bool:
        return self.state is not OperationState.IN_PROGRESS
