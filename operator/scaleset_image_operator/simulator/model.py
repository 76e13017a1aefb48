"""State of the simulated Compute resource provider: scale sets, their instances, operations and
rolling upgrades. Plain mutable records; the behaviour lives in ``world`` and the JSON in ``render``.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SCALE_SET_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"


def scale_set_key(subscription: str, resource_group: str, name: str) -> tuple[str, str, str]:
    """ARM names are case-insensitive: one key for every spelling."""
    return subscription.lower(), resource_group.lower(), name.lower()


@dataclass(frozen=True)
class ImageSpec:
    """The image part of one version of a scale set's model, as the model states it (unresolved)."""

    image_reference: dict[str, Any] | None
    os_disk_image: dict[str, Any] | None

    @classmethod
    def of_profile(cls, profile: dict[str, Any]) -> ImageSpec:
        storage = profile.get("storageProfile") or {}
        os_disk = storage.get("osDisk") or {}
        return cls(copy.deepcopy(storage.get("imageReference")), copy.deepcopy(os_disk.get("image")))

    @property
    def os_disk(self) -> dict[str, Any]:
        return {"image": self.os_disk_image} if self.os_disk_image else {}


@dataclass
class Instance:
    instance_id: str
    zone: str | None
    update_domain: int
    fault_domain: int
    profile_version: int
    image_spec: ImageSpec
    image: dict[str, Any]
    created: float
    provisioning: str = "Succeeded"
    power: str = "running"
    health: str | None = "Healthy"
    failure: dict[str, Any] | None = None
    operation_id: str | None = None
    epoch: int = 0
    etag: int = 1
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    upgrades_by_profile: dict[int, int] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.instance_id)


@dataclass
class Operation:
    op_id: str
    name: str
    subscription: str
    location: str
    scale_set: tuple[str, str, str]
    started: float
    status: str = "InProgress"
    ended: float | None = None
    error: dict[str, Any] | None = None
    pending: set[str] = field(default_factory=set)
    rolling: bool = False


@dataclass
class RollingUpgrade:
    operation_id: str
    kind: str
    batches: list[list[str]]
    policy: dict[str, Any]
    started: float
    pause_seconds: float
    index: int = 0
    status: str = "RollingForward"
    last_action: str = "Start"
    last_action_time: float = 0.0
    ended: float | None = None
    successful: int = 0
    failed: int = 0
    in_progress: int = 0
    cancel_requested: bool = False
    error: dict[str, Any] | None = None
    upgraded: set[str] = field(default_factory=set)
    target_version: str | None = None


@dataclass
class Counters:
    max_concurrent_domains: int = 0
    double_upgrades: int = 0
    upgrades: int = 0
    model_writes: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    """ARM requests about the scale set by REST operation: its own paths and the status reads of its operations."""


@dataclass
class ScaleSet:
    subscription: str
    resource_group: str
    name: str
    location: str
    resource: dict[str, Any]
    update_domains: int
    upgrade_seconds: float
    health_warmup_seconds: float
    created: float
    etag: int = 1
    profile_version: int = 1
    profiles: dict[int, ImageSpec] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    next_instance_number: int = 0
    provisioning: str = "Succeeded"
    provisioning_operation: str | None = None
    deleting: bool = False
    rolling: RollingUpgrade | None = None
    counters: Counters = field(default_factory=Counters)
    unique_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def key(self) -> tuple[str, str, str]:
        return scale_set_key(self.subscription, self.resource_group, self.name)

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.name}"
        )

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.resource.setdefault("properties", {})
        return props

    @property
    def profile(self) -> dict[str, Any]:
        profile: dict[str, Any] = self.properties.setdefault("virtualMachineProfile", {})
        return profile

    @property
    def orchestration_mode(self) -> str:
        return str(self.properties.get("orchestrationMode", "Uniform"))

    @property
    def upgrade_mode(self) -> str:
        return str((self.properties.get("upgradePolicy") or {}).get("mode", "Manual"))

    @property
    def zones(self) -> list[str]:
        return [str(z) for z in self.resource.get("zones") or []]

    @property
    def fault_domain_count(self) -> int:
        return int(self.properties.get("platformFaultDomainCount") or (1 if self.zones else 5))

    @property
    def capacity(self) -> int:
        return int((self.resource.get("sku") or {}).get("capacity", 0))

    @property
    def vm_size(self) -> str:
        return str((self.resource.get("sku") or {}).get("name", "Standard_D2s_v5"))

    @property
    def has_health_extension(self) -> bool:
        extensions = (self.profile.get("extensionProfile") or {}).get("extensions") or []
        for extension in extensions:
            kind = str((extension.get("properties") or {}).get("type", ""))
            if kind.lower().startswith("applicationhealth"):
                return True
        network = self.profile.get("networkProfile") or {}
        return bool(network.get("healthProbe"))

    def placement(self, number: int) -> tuple[str | None, int, int]:
        """Zone, update domain and fault domain of the instance with this numeric id, as Azure spreads them:
        regional sets round-robin over update and fault domains; zonal sets round-robin over zones, then
        over update domains inside a zone, with fault domain 0 under max spreading."""
        zones = self.zones
        if zones:
            zone = zones[number % len(zones)]
            slot = number // len(zones)
            fault_domain = slot % self.fault_domain_count if self.fault_domain_count > 1 else 0
            return zone, slot % self.update_domains, fault_domain
        return None, number % self.update_domains, number % self.fault_domain_count

    def sorted_instances(self) -> list[Instance]:
        return sorted(self.instances.values(), key=lambda i: i.number)
