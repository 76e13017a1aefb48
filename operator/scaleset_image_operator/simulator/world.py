"""The simulated Compute resource provider's behaviour: what each ARM call does to the scale sets.

A discrete-event simulation on the simulated clock: work that takes time (an instance upgrade, health
warm-up, a rolling-upgrade batch, a deletion) is an event in a queue, and every request first runs the
events that are due (``advance``). So the answers depend only on the requests and the clock, never on a
background task's timing. Every instance transition goes to the audit log and feeds the safety counters.

Neighbours: ``server`` (HTTP) calls in here; ``render`` turns the records into ARM JSON; ``images`` and
``faults`` are consulted; errors are ``ArmError`` with the code and message Azure uses.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import SimClock, iso
from .errors import ArmError, invalid_parameter, not_found_scale_set, operation_not_allowed
from .faults import FaultBook
from .images import PLATFORM, VHD, ImageCatalog, describe, image_kind
from .model import (
    Counters,
    ImageSpec,
    Instance,
    Operation,
    RollingUpgrade,
    ScaleSet,
    scale_set_key,
)

DEFAULT_IMAGE = {
    "publisher": "Canonical",
    "offer": "0001-com-ubuntu-server-jammy",
    "sku": "22_04-lts-gen2",
    "version": "22.04.202409110",
}
MODEL_UPDATE_SECONDS = 3.0
MODEL_LIMIT = 10
"""Distinct models the instances of a Uniform scale set may reference; a model change that would make one more is
refused (docs/simulator.md, "The 10-models limit")."""
DELETE_SECONDS = 10.0
AUDIT_LIMIT = 400_000

_DURATION = re.compile(r"^P(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


_CONTROL_FIELDS: dict[str, tuple[tuple[type, ...], str, float | None]] = {
    "location": ((str,), "a string", None),
    "vmSize": ((str,), "a string", None),
    "orchestrationMode": ((str,), "a string", None),
    "upgradePolicy": ((str,), "a string", None),
    "capacity": ((int,), "a whole number of 0 or more", 0),
    "updateDomains": ((int,), "a whole number of 1 or more", 1),
    "faultDomains": ((int,), "a whole number of 0 (the default) or more", 0),
    "upgradeSeconds": ((int, float), "a number of seconds of 0 or more", 0),
    "healthWarmupSeconds": ((int, float), "a number of seconds of 0 or more", 0),
    "zones": ((list,), "a list of zone names", None),
    "tags": ((dict,), "an object of tags", None),
    "healthExtension": ((bool,), "true or false", None),
}
"""The fields of ``POST /_sim/scalesets`` (the simulator's own API, not ARM's): type, what it must be, minimum."""


def _check_control_fields(body: dict[str, Any]) -> None:
    """A field of the wrong type is a 400 naming it, not a 500 from deep inside (``int("lots")``)."""
    for name, (kinds, expected, minimum) in _CONTROL_FIELDS.items():
        value = body.get(name)
        if value is None:
            continue
        wrong_kind = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if wrong_kind or (minimum is not None and not (math.isfinite(value) and value >= minimum)):
            raise invalid_parameter(f"'{name}' must be {expected}, not {value!r}.", name)


def iso_duration_seconds(value: str) -> float:
    match = _DURATION.match(value.strip().upper()) if value else None
    if not match:
        raise invalid_parameter(f"'{value}' is not a valid ISO 8601 duration.", "pauseTimeBetweenBatches")
    return sum(float(match.group(unit) or 0) * scale for unit, scale in (("h", 3600), ("m", 60), ("s", 1)))


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """ARM PATCH semantics: objects merge, everything else replaces, null removes."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


READ_ONLY_PROPERTIES = ("uniqueId", "timeCreated")
"""Scale set properties Compute sets and a client cannot: a PUT that leaves them out (as clients that drop read-only
fields before writing do) keeps them."""
_IMAGE_STYLE_FIELDS = {
    PLATFORM: ("publisher", "offer", "sku"),
    "id": ("id",),
    "sharedGalleryImageId": ("sharedGalleryImageId",),
    "communityGalleryImageId": ("communityGalleryImageId",),
}


def _style_named(reference: dict[str, Any]) -> str | None:
    """Which style of image reference a request's own fields name (None when it names none: only a version)."""
    for style, names in _IMAGE_STYLE_FIELDS.items():
        if any(reference.get(name) for name in names):
            return style
    return None


def _keep_on_put(current: dict[str, Any], replacement: dict[str, Any]) -> None:
    """What Compute keeps of the model when a PUT leaves it out (docs/simulator.md, "What a PUT keeps").

    The read-only properties, and the image reference: one left out or null is kept as it is (the Azure CLI nulls
    it in every ``az vmss update`` so as not to need read access to the image); one that names only some of its
    fields keeps the others from the model, so ``{"version": V}`` changes the version of the model's platform
    image. A reference that names another style of image replaces it, and the style change is then refused."""
    old_props = current.get("properties") or {}
    new_props = replacement.get("properties")
    if not isinstance(new_props, dict):
        return
    for name in READ_ONLY_PROPERTIES:
        if name in old_props:
            new_props[name] = copy.deepcopy(old_props[name])
    old_storage = (old_props.get("virtualMachineProfile") or {}).get("storageProfile") or {}
    old_reference = old_storage.get("imageReference")
    new_storage = (new_props.get("virtualMachineProfile") or {}).get("storageProfile")
    if not isinstance(old_reference, dict) or not isinstance(new_storage, dict):
        return
    new_reference = new_storage.get("imageReference")
    if not isinstance(new_reference, dict):
        new_storage["imageReference"] = copy.deepcopy(old_reference)
        return
    old_style = _style_named(old_reference)
    if _style_named(new_reference) in (None, old_style):
        kept = {key: value for key, value in old_reference.items() if key != "exactVersion"}
        given = {key: value for key, value in new_reference.items() if value is not None}
        new_storage["imageReference"] = copy.deepcopy(kept | given)


def _health_extension(os_type: str) -> dict[str, Any]:
    kind = "ApplicationHealthWindows" if os_type == "Windows" else "ApplicationHealthLinux"
    return {
        "name": "HealthExtension",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": kind,
            "typeHandlerVersion": "2.0",
            "autoUpgradeMinorVersion": True,
            "settings": {"protocol": "http", "port": 80, "requestPath": "/health"},
        },
    }


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class World:
    def __init__(
        self, clock: SimClock, catalog: ImageCatalog | None = None, faults: FaultBook | None = None, seed: int = 0
    ) -> None:
        self.clock = clock
        self.catalog = catalog or ImageCatalog.with_defaults()
        self.faults = faults or FaultBook()
        self.scale_sets: dict[tuple[str, str, str], ScaleSet] = {}
        self.operations: dict[str, Operation] = {}
        self.audit: list[dict[str, Any]] = []
        self.counters = Counters()
        self._random = random.Random(seed)
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self._audit_seq = itertools.count(1)
        self._now = clock.now()
        self._stuck: dict[tuple[tuple[str, str, str], str], Callable[[], None]] = {}

    # ----------------------------------------------------------------------------------------- time

    @property
    def now(self) -> float:
        return self._now

    def advance(self) -> None:
        """Run every event due by now, in time order, each at its own simulated moment."""
        target = self.clock.now()
        while self._events and self._events[0].at <= target:
            event = heapq.heappop(self._events)
            self._now = max(self._now, event.at)
            event.action()
        self._now = max(self._now, target)

    def _at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, _Event(self._now + max(0.0, delay), next(self._seq), action))

    def next_event_in(self) -> float | None:
        """Simulated seconds until the next scheduled event (None when idle)."""
        if not self._events:
            return None
        return max(0.0, self._events[0].at - self.clock.now())

    # ---------------------------------------------------------------------------------------- audit

    def record(self, entry: dict[str, Any]) -> None:
        entry["seq"] = next(self._audit_seq)
        entry["simTime"] = round(self._now, 3)
        entry["time"] = iso(self.clock.wall_time(self._now))
        self.audit.append(entry)
        if len(self.audit) > AUDIT_LIMIT:
            del self.audit[: AUDIT_LIMIT // 2]

    def _set(self, scale_set: ScaleSet, instance: Instance, name: str, value: Any) -> None:
        old = getattr(instance, name)
        if old == value:
            return
        setattr(instance, name, value)
        instance.etag += 1
        self.record(
            {
                "kind": "transition",
                "scaleSet": scale_set.id,
                "instanceId": instance.instance_id,
                "field": name,
                "from": old,
                "to": value,
            }
        )

    # ----------------------------------------------------------------------------------- scale sets

    def find(self, subscription: str, resource_group: str, name: str) -> ScaleSet:
        scale_set = self.scale_sets.get(scale_set_key(subscription, resource_group, name))
        if scale_set is None:
            raise not_found_scale_set(resource_group, name)
        return scale_set

    def create_from_control(self, body: dict[str, Any]) -> ScaleSet:
        """``POST /_sim/scalesets``: a scale set that already exists and runs, with sensible defaults."""
        for required in ("subscriptionId", "resourceGroup", "name"):
            if not body.get(required) or not isinstance(body[required], str):
                raise invalid_parameter(f"'{required}' is required.", required)
        _check_control_fields(body)
        image = copy.deepcopy(body.get("image") or DEFAULT_IMAGE)
        if not isinstance(image, dict):
            raise invalid_parameter("'image' must be an object.", "image")
        for key, value in image.items():
            if not isinstance(value, str):
                raise invalid_parameter(f"'image.{key}' must be a string, not {value!r}.", f"image.{key}")
        zones = [str(z) for z in body.get("zones") or []]
        image_reference: dict[str, Any] | None = None
        os_disk: dict[str, Any] = {
            "createOption": "FromImage",
            "caching": "ReadWrite",
            "managedDisk": {"storageAccountType": "Premium_LRS"},
            "diskSizeGB": 30,
        }
        if image.get("uri"):
            os_disk = {
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "name": "osdisk",
                "image": {"uri": image["uri"]},
                "vhdContainers": [],
            }
        else:
            image_reference = image
        windows = str(image.get("publisher", "")).lower().startswith("microsoftwindows")
        os_disk["osType"] = "Windows" if windows else "Linux"
        self.catalog.publish_reference(image_reference, os_disk, str(body.get("location", "eastus")))
        upgrade_policy: dict[str, Any] = {"mode": body.get("upgradePolicy", "Manual")}
        if upgrade_policy["mode"] not in ("Manual", "Automatic", "Rolling"):
            raise invalid_parameter("'upgradePolicy' must be Manual, Automatic or Rolling.", "upgradePolicy")
        if upgrade_policy["mode"] == "Rolling":
            upgrade_policy["rollingUpgradePolicy"] = {
                "maxBatchInstancePercent": 20,
                "maxUnhealthyInstancePercent": 20,
                "maxUnhealthyUpgradedInstancePercent": 20,
                "pauseTimeBetweenBatches": "PT0S",
            }
        profile: dict[str, Any] = {
            "osProfile": {
                "computerNamePrefix": str(body["name"])[:9],
                "adminUsername": "azureuser",
                ("windowsConfiguration" if windows else "linuxConfiguration"): {},
            },
            "storageProfile": {"osDisk": os_disk, "dataDisks": []},
            "networkProfile": {
                "networkInterfaceConfigurations": [
                    {
                        "name": "nic",
                        "properties": {
                            "primary": True,
                            "ipConfigurations": [
                                {
                                    "name": "ipconfig",
                                    "properties": {
                                        "subnet": {
                                            "id": (
                                                f"/subscriptions/{body['subscriptionId']}/resourceGroups/{body['resourceGroup']}"
                                                "/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"
                                            )
                                        }
                                    },
                                }
                            ],
                        },
                    }
                ]
            },
        }
        if image_reference is not None:
            profile["storageProfile"]["imageReference"] = image_reference
        if body.get("healthExtension", True):
            profile["extensionProfile"] = {"extensions": [_health_extension(os_disk["osType"])]}
        resource: dict[str, Any] = {
            "location": body.get("location", "eastus"),
            "tags": dict(body.get("tags") or {}),
            "sku": {
                "name": body.get("vmSize", "Standard_D2s_v5"),
                "tier": "Standard",
                "capacity": int(body.get("capacity", 10)),
            },
            "properties": {
                "singlePlacementGroup": int(body.get("capacity", 10)) <= 100,
                "orchestrationMode": body.get("orchestrationMode", "Uniform"),
                "upgradePolicy": upgrade_policy,
                "virtualMachineProfile": profile,
                "overprovision": False,
                "doNotRunExtensionsOnOverprovisionedVMs": False,
                "platformFaultDomainCount": int(body.get("faultDomains") or (1 if zones else 5)),
            },
        }
        if zones:
            resource["zones"] = zones
        return self._create(
            body["subscriptionId"],
            body["resourceGroup"],
            body["name"],
            resource,
            update_domains=int(body.get("updateDomains", 5)),
            upgrade_seconds=float(body.get("upgradeSeconds", 60)),
            health_warmup_seconds=float(body.get("healthWarmupSeconds", 15)),
            running=True,
        )

    def create_or_update(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        body: dict[str, Any],
        if_match: str | None,
        if_none_match: str | None,
    ) -> tuple[ScaleSet, Operation, bool]:
        """ARM PUT: create (201) or replace (200) a scale set's definition."""
        existing = self.scale_sets.get(scale_set_key(subscription, resource_group, name))
        if existing is not None:
            if if_none_match == "*":
                raise ArmError(412, "PreconditionFailed", "The resource already exists and If-None-Match: * was given.")
            replacement: dict[str, Any] = {
                key: copy.deepcopy(body[key]) for key in ("sku", "tags", "zones", "properties") if key in body
            }
            merged = copy.deepcopy(existing.resource)
            merged.update(replacement)
            _keep_on_put(existing.resource, merged)
            operation = self._write(existing, merged, if_match, "VirtualMachineScaleSets_CreateOrUpdate")
            return existing, operation, False
        if if_match:
            raise ArmError(412, "PreconditionFailed", "The resource does not exist; If-Match cannot be satisfied.")
        if not body.get("location"):
            raise invalid_parameter("Required parameter 'location' is missing (null).", "location")
        profile = (body.get("properties") or {}).get("virtualMachineProfile")
        if not isinstance(profile, dict):
            raise invalid_parameter(
                "Required parameter 'virtualMachineProfile' is missing (null).", "virtualMachineProfile"
            )
        resource: dict[str, Any] = {
            key: copy.deepcopy(body[key]) for key in ("location", "tags", "sku", "zones", "properties") if key in body
        }
        resource.setdefault("sku", {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 0})
        resource["properties"].setdefault("orchestrationMode", "Uniform")
        resource["properties"].setdefault("upgradePolicy", {"mode": "Manual"})
        spec = ImageSpec.of_profile(profile)
        self.catalog.resolve(spec.image_reference, spec.os_disk, resource["location"])
        self._check_rolling_has_health(resource)
        scale_set = self._create(
            subscription,
            resource_group,
            name,
            resource,
            update_domains=5,
            upgrade_seconds=60.0,
            health_warmup_seconds=15.0,
            running=False,
        )
        operation = self._new_operation(scale_set, "VirtualMachineScaleSets_CreateOrUpdate")
        for instance in scale_set.instances.values():
            instance.operation_id = operation.op_id
            operation.pending.add(instance.instance_id)
        scale_set.provisioning = "Creating"
        scale_set.provisioning_operation = operation.op_id
        if not operation.pending:
            self._at(MODEL_UPDATE_SECONDS, lambda: self._finish_operation(operation))
        return scale_set, operation, True

    def _create(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        resource: dict[str, Any],
        *,
        update_domains: int,
        upgrade_seconds: float,
        health_warmup_seconds: float,
        running: bool,
    ) -> ScaleSet:
        key = scale_set_key(subscription, resource_group, name)
        if key in self.scale_sets:
            raise ArmError(409, "Conflict", f"Scale set '{name}' already exists in '{resource_group}'.")
        if update_domains < 1 or upgrade_seconds < 0 or health_warmup_seconds < 0:
            raise invalid_parameter("updateDomains must be positive; times must not be negative.")
        scale_set = ScaleSet(
            subscription,
            resource_group,
            name,
            resource.get("location", "eastus"),
            resource,
            update_domains=update_domains,
            upgrade_seconds=upgrade_seconds,
            health_warmup_seconds=health_warmup_seconds,
            created=self._now,
        )
        scale_set.properties["uniqueId"] = scale_set.unique_id
        scale_set.properties["timeCreated"] = iso(self.clock.wall_time(self._now))
        scale_set.profiles[1] = ImageSpec.of_profile(scale_set.profile)
        self.scale_sets[key] = scale_set
        for _ in range(scale_set.capacity):
            self._add_instance(scale_set, running=running, operation=None)
        return scale_set

    def _add_instance(self, scale_set: ScaleSet, *, running: bool, operation: Operation | None) -> Instance:
        number = scale_set.next_instance_number
        scale_set.next_instance_number += 1
        zone, update_domain, fault_domain = scale_set.placement(number)
        spec = scale_set.profiles[scale_set.profile_version]
        instance = Instance(
            instance_id=str(number),
            zone=zone,
            update_domain=update_domain,
            fault_domain=fault_domain,
            profile_version=scale_set.profile_version,
            image_spec=spec,
            image=self.catalog.resolve(spec.image_reference, spec.os_disk, scale_set.location),
            created=self._now,
            health="Healthy" if scale_set.has_health_extension else None,
        )
        scale_set.instances[instance.instance_id] = instance
        if running:
            return instance
        instance.provisioning = "Creating"
        instance.power = "starting"
        instance.health = "Initializing" if scale_set.has_health_extension else None
        if operation is not None:
            instance.operation_id = operation.op_id
            operation.pending.add(instance.instance_id)
        self.record(
            {
                "kind": "transition",
                "scaleSet": scale_set.id,
                "instanceId": instance.instance_id,
                "field": "provisioning",
                "from": None,
                "to": "Creating",
            }
        )
        epoch = instance.epoch

        def created() -> None:
            if scale_set.instances.get(instance.instance_id) is not instance or instance.epoch != epoch:
                return
            self._set(scale_set, instance, "provisioning", "Succeeded")
            self._set(scale_set, instance, "power", "running")
            self._settle_health(scale_set, instance, unhealthy=False)
            self._instance_done(scale_set, instance, None)

        self._at(scale_set.upgrade_seconds * self._jitter(), created)
        return instance

    def _jitter(self) -> float:
        return self._random.uniform(0.85, 1.15)

    def delete_scale_set(self, scale_set: ScaleSet) -> Operation:
        self._refuse_if_deleting(scale_set, "Delete Virtual Machine Scale Set")
        operation = self._new_operation(scale_set, "VirtualMachineScaleSets_Delete")
        scale_set.deleting = True
        scale_set.provisioning = "Deleting"
        self.record({"kind": "scaleSet", "scaleSet": scale_set.id, "event": "deleting"})

        def gone() -> None:
            self.scale_sets.pop(scale_set.key, None)
            for instance in scale_set.instances.values():
                instance.epoch += 1
                self._stuck.pop((scale_set.key, instance.instance_id), None)
            self.record({"kind": "scaleSet", "scaleSet": scale_set.id, "event": "deleted"})
            for other in list(self.operations.values()):
                if other.scale_set == scale_set.key and other.status == "InProgress" and other is not operation:
                    self._finish_operation(other, {"code": "ResourceNotFound", "message": "The scale set was deleted."})
            self._finish_operation(operation)

        self._at(DELETE_SECONDS, gone)
        return operation

    def _refuse_if_deleting(self, scale_set: ScaleSet, operation: str) -> None:
        if scale_set.deleting:
            raise operation_not_allowed(
                f"Operation '{operation}' is not allowed on Virtual Machine Scale Set '{scale_set.name}' since "
                "it is marked for deletion. You can only retry the Delete operation (or wait for an ongoing one "
                "to complete)."
            )

    # --------------------------------------------------------------------------------- model writes

    def update(self, scale_set: ScaleSet, patch: dict[str, Any], if_match: str | None) -> Operation:
        """ARM PATCH: merge the partial body into the model."""
        allowed = {"sku", "tags", "properties", "zones", "identity", "plan"}
        merged = _merge(scale_set.resource, {key: value for key, value in patch.items() if key in allowed})
        return self._write(scale_set, merged, if_match, "VirtualMachineScaleSets_Update")

    def _check_if_match(self, scale_set: ScaleSet, if_match: str | None) -> None:
        if if_match is None or if_match.strip() == "*":
            return
        current = f'"{scale_set.etag}"'
        offered = {tag.strip() for tag in if_match.split(",")}
        offered |= {tag.removeprefix("W/") for tag in offered}
        if current not in offered:
            raise ArmError(
                412,
                "PreconditionFailed",
                f"The specified precondition 'If-Match = {if_match}' failed. The resource's current etag is {current}.",
            )

    def _check_rolling_has_health(self, resource: dict[str, Any]) -> None:
        props = resource.get("properties") or {}
        if (props.get("upgradePolicy") or {}).get("mode") != "Rolling":
            return
        probe = ScaleSet("", "", "", "", resource, 5, 0, 0, 0)
        if not probe.has_health_extension:
            raise ArmError(
                400,
                "BadRequest",
                "Rolling Upgrade mode is not supported for this Virtual Machine Scale Set because a health probe "
                "or health extension was not provided.",
            )

    def _check_image_change(self, scale_set: ScaleSet, new: ImageSpec) -> None:
        old = scale_set.profiles[scale_set.profile_version]
        old_kind = image_kind(old.image_reference, old.os_disk)
        new_ref = new.image_reference or {}
        styles = [key for key in ("id", "sharedGalleryImageId", "communityGalleryImageId") if new_ref.get(key)]
        if new.os_disk_image is None and (len(styles) > 1 or (styles and new_ref.get("publisher"))):
            raise invalid_parameter(
                "The image reference names more than one image: give exactly one of publisher/offer/sku/version, "
                "id, sharedGalleryImageId or communityGalleryImageId (set the others to null).",
                "imageReference",
            )
        new_kind = image_kind(new.image_reference, new.os_disk)
        if (old_kind == VHD) != (new_kind == VHD):
            raise ArmError(
                409,
                "PropertyChangeNotAllowed",
                "Changing property 'osDisk.image' is not allowed.",
                target="osDisk.image",
            )
        if (old_kind == PLATFORM) != (new_kind == PLATFORM) and VHD not in (old_kind, new_kind):
            raise ArmError(
                409, "OperationNotAllowed", "The Image type for a Virtual Machine Scale Set may not be changed."
            )
        if old_kind == PLATFORM and new_kind == PLATFORM:
            old_ref = old.image_reference or {}
            for name in ("publisher", "offer"):
                if str(old_ref.get(name, "")).lower() != str(new_ref.get(name, "")).lower():
                    raise ArmError(
                        409,
                        "PropertyChangeNotAllowed",
                        f"Changing property 'imageReference.{name}' is not allowed.",
                        target=f"imageReference.{name}",
                    )
        self.catalog.resolve(new.image_reference, new.os_disk, scale_set.location)

    def _write(self, scale_set: ScaleSet, merged: dict[str, Any], if_match: str | None, name: str) -> Operation:
        self._refuse_if_deleting(scale_set, "Update Virtual Machine Scale Set")
        self._check_if_match(scale_set, if_match)
        old_props = scale_set.properties
        new_props = merged.get("properties") or {}
        if str(new_props.get("orchestrationMode", "Uniform")) != scale_set.orchestration_mode:
            raise ArmError(
                409,
                "PropertyChangeNotAllowed",
                "Changing property 'orchestrationMode' is not allowed.",
                target="orchestrationMode",
            )
        mode = str((new_props.get("upgradePolicy") or {}).get("mode", "Manual"))
        if mode not in ("Manual", "Automatic", "Rolling"):
            raise invalid_parameter(
                f"The value '{mode}' of parameter 'upgradePolicy.mode' is invalid.", "upgradePolicy.mode"
            )
        self._check_rolling_has_health(merged)
        new_profile = new_props.get("virtualMachineProfile") or {}
        profile_changed = new_profile != old_props.get("virtualMachineProfile")
        if profile_changed:
            self._check_image_change(scale_set, ImageSpec.of_profile(new_profile))
        capacity = int((merged.get("sku") or {}).get("capacity", scale_set.capacity))
        if capacity < 0 or capacity > 1000:
            raise invalid_parameter(
                f"The value {capacity} of parameter 'sku.capacity' is out of range (0-1000).", "sku.capacity"
            )
        if scale_set.rolling and scale_set.rolling.status == "RollingForward" and profile_changed:
            raise ArmError(
                409,
                "OperationNotAllowed",
                "Cannot update the model of the Virtual Machine Scale Set while a rolling upgrade is in progress.",
            )
        if profile_changed:
            self._check_model_limit(scale_set)

        changed = merged != scale_set.resource
        scale_set.resource = merged
        scale_set.counters.model_writes += 1
        if changed:
            scale_set.etag += 1
        operation = self._new_operation(scale_set, name)
        scale_set.provisioning = "Updating"
        scale_set.provisioning_operation = operation.op_id
        self.record(
            {
                "kind": "model",
                "scaleSet": scale_set.id,
                "etag": scale_set.etag,
                "image": describe(*self._image_args(new_profile)) if new_profile else None,
                "profileChanged": profile_changed,
            }
        )
        if profile_changed:
            scale_set.profile_version += 1
            scale_set.profiles[scale_set.profile_version] = ImageSpec.of_profile(new_profile)
        self._rescale(scale_set, capacity, operation)
        if profile_changed and mode == "Automatic":
            for instance in scale_set.sorted_instances():
                if instance.operation_id is None and instance.profile_version != scale_set.profile_version:
                    self._count_upgrade(scale_set, instance)
                    self._start_upgrade(scale_set, instance, operation, apply_model=True)
        elif profile_changed and mode == "Rolling":
            operation.rolling = True
            self._start_rolling(scale_set, operation, kind="Model")
        if not operation.pending and not operation.rolling:
            self._at(MODEL_UPDATE_SECONDS, lambda: self._finish_operation(operation))
        return operation

    def _check_model_limit(self, scale_set: ScaleSet) -> None:
        """A Uniform scale set keeps every model one of its instances still references: a new model is refused once
        they reference ``MODEL_LIMIT`` distinct models (counting the new one, they would reference one more)."""
        if scale_set.orchestration_mode == "Flexible":
            return
        referenced = {instance.profile_version for instance in scale_set.instances.values()}
        if len(referenced | {scale_set.profile_version + 1}) > MODEL_LIMIT:
            # Azure's words, status 400; its error code is not documented (docs/simulator.md).
            raise ArmError(
                400,
                "OperationNotAllowed",
                f"Virtual Machine Scale Set '{scale_set.name}' has reached its limit of {MODEL_LIMIT} models that may "
                "be referenced by one or more VMs belonging to the Virtual Machine Scale Set. Upgrade the VMs to the "
                "latest model of the Virtual Machine Scale Set before trying again.",
            )

    @staticmethod
    def _image_args(profile: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        spec = ImageSpec.of_profile(profile)
        return spec.image_reference, spec.os_disk

    def _rescale(self, scale_set: ScaleSet, capacity: int, operation: Operation) -> None:
        live = [i for i in scale_set.sorted_instances() if i.provisioning != "Deleting"]
        for _ in range(capacity - len(live)):
            self._add_instance(scale_set, running=False, operation=operation)
        for instance in reversed(live[capacity:] if capacity < len(live) else []):
            self._remove_instance(scale_set, instance, operation)

    def _remove_instance(self, scale_set: ScaleSet, instance: Instance, operation: Operation | None) -> None:
        previous = instance.operation_id
        if previous and previous in self.operations:
            self.operations[previous].pending.discard(instance.instance_id)
            self._maybe_finish(self.operations[previous])
        instance.epoch += 1
        self._stuck.pop((scale_set.key, instance.instance_id), None)
        self._set(scale_set, instance, "provisioning", "Deleting")
        if operation is not None:
            instance.operation_id = operation.op_id
            operation.pending.add(instance.instance_id)
        epoch = instance.epoch

        def removed() -> None:
            if scale_set.instances.get(instance.instance_id) is not instance or instance.epoch != epoch:
                return
            del scale_set.instances[instance.instance_id]
            self.record(
                {
                    "kind": "transition",
                    "scaleSet": scale_set.id,
                    "instanceId": instance.instance_id,
                    "field": "provisioning",
                    "from": "Deleting",
                    "to": None,
                }
            )
            if operation is not None:
                operation.pending.discard(instance.instance_id)
                self._maybe_finish(operation)

        self._at(DELETE_SECONDS * 0.5, removed)

    def delete_instance(self, scale_set: ScaleSet, instance_id: str) -> Operation:
        self._require_uniform(scale_set, "Delete Virtual Machine Scale Set VM")
        self._refuse_if_deleting(scale_set, "Delete Virtual Machine Scale Set VM")
        instance = self.instance(scale_set, instance_id)
        operation = self._new_operation(scale_set, "VirtualMachineScaleSetVMs_Delete")
        self._remove_instance(scale_set, instance, operation)
        scale_set.resource.setdefault("sku", {})["capacity"] = max(0, scale_set.capacity - 1)
        return operation

    # ------------------------------------------------------------------------------------ instances

    def instance(self, scale_set: ScaleSet, instance_id: str) -> Instance:
        instance = scale_set.instances.get(str(instance_id))
        if instance is None:
            raise ArmError(
                404,
                "NotFound",
                f"The entity was not found in this Azure location. Instance "
                f"'{instance_id}' of '{scale_set.name}' does not exist.",
            )
        return instance

    def _require_uniform(self, scale_set: ScaleSet, operation: str) -> None:
        if scale_set.orchestration_mode == "Flexible":
            raise operation_not_allowed(
                f"Operation '{operation}' is not supported for Virtual Machine Scale Set '{scale_set.name}' with "
                "orchestration mode 'Flexible'. Use the Virtual Machine APIs on the instances instead.",
                status=400,
            )

    def _instances_for_action(self, scale_set: ScaleSet, instance_ids: list[Any] | None, action: str) -> list[Instance]:
        if instance_ids is None:
            return [i for i in scale_set.sorted_instances() if i.provisioning != "Deleting"]
        if not isinstance(instance_ids, list) or not all(isinstance(i, str) for i in instance_ids):
            raise invalid_parameter("'instanceIds' must be a list of instance id strings.", "instanceIds")
        if not instance_ids:
            raise invalid_parameter(
                "The value of parameter 'instanceIds' is invalid: it must not be empty.", "instanceIds"
            )
        chosen: list[Instance] = []
        for instance_id in dict.fromkeys(instance_ids):
            instance = scale_set.instances.get(instance_id)
            if instance is None or instance.provisioning == "Deleting":
                raise invalid_parameter(
                    f"The provided instanceId {instance_id} is not an active Virtual Machine Scale Set VM instanceId.",
                    "instanceIds",
                )
            chosen.append(instance)
        for instance in chosen:
            if instance.operation_id is not None:
                running = self.operations.get(instance.operation_id)
                raise operation_not_allowed(
                    f"Operation '{action}' is not allowed on VM '{scale_set.name}_{instance.instance_id}' since "
                    f"the VM is already being updated by operation "
                    f"'{running.name if running else instance.operation_id}'. Retry after it completes."
                )
        return chosen

    def manual_upgrade(self, scale_set: ScaleSet, body: dict[str, Any] | None) -> Operation:
        self._require_uniform(scale_set, "Manual Upgrade Virtual Machine Scale Set VMs")
        self._refuse_if_deleting(scale_set, "Manual Upgrade Virtual Machine Scale Set VMs")
        if not isinstance(body, dict) or "instanceIds" not in body:
            raise invalid_parameter("Required parameter 'instanceIds' is missing (null).", "instanceIds")
        if scale_set.rolling and scale_set.rolling.status == "RollingForward":
            raise operation_not_allowed(
                "Operation 'Manual Upgrade Virtual Machine Scale Set VMs' is not allowed while a rolling upgrade "
                "is in progress on the Virtual Machine Scale Set."
            )
        chosen = self._instances_for_action(scale_set, body["instanceIds"], "manualUpgrade")
        operation = self._new_operation(scale_set, "VirtualMachineScaleSets_UpdateInstances")
        for instance in chosen:
            self._count_upgrade(scale_set, instance)
            if instance.profile_version != scale_set.profile_version or instance.provisioning == "Failed":
                self._start_upgrade(scale_set, instance, operation, apply_model=True)
        self._maybe_finish(operation, delay=1.0)
        return operation

    def reimage(self, scale_set: ScaleSet, instance_ids: list[Any] | None, name: str) -> Operation:
        if name != "VirtualMachineScaleSetVMs_Reimage":
            self._require_uniform(scale_set, "Reimage Virtual Machine Scale Set VMs")
        self._refuse_if_deleting(scale_set, "Reimage Virtual Machine Scale Set VMs")
        chosen = self._instances_for_action(scale_set, instance_ids, "reimage")
        operation = self._new_operation(scale_set, name)
        for instance in chosen:
            self._count_upgrade(scale_set, instance)
            self._start_upgrade(scale_set, instance, operation, apply_model=False)
        self._maybe_finish(operation, delay=1.0)
        return operation

    def _count_upgrade(self, scale_set: ScaleSet, instance: Instance) -> None:
        version = scale_set.profile_version
        times = instance.upgrades_by_profile.get(version, 0) + 1
        instance.upgrades_by_profile[version] = times
        scale_set.counters.upgrades += 1
        self.counters.upgrades += 1
        if times == 2:
            scale_set.counters.double_upgrades += 1
            self.counters.double_upgrades += 1
            self.record(
                {
                    "kind": "safety",
                    "scaleSet": scale_set.id,
                    "instanceId": instance.instance_id,
                    "violation": "doubleUpgrade",
                    "profileVersion": version,
                }
            )

    def _start_upgrade(
        self,
        scale_set: ScaleSet,
        instance: Instance,
        operation: Operation,
        *,
        apply_model: bool,
        target_version: str | None = None,
    ) -> None:
        """Begin re-creating one instance's OS disk: from the scale set's current model (manual upgrade,
        automatic or rolling model upgrade) or from the instance's own model (reimage)."""
        version = scale_set.profile_version if apply_model else instance.profile_version
        spec = scale_set.profiles[version] if apply_model else instance.image_spec
        image = self.catalog.resolve(spec.image_reference, spec.os_disk, scale_set.location)
        if target_version and "exactVersion" in image:
            image["exactVersion"] = target_version
        sid, iid = scale_set.id, instance.instance_id
        failing = self.faults.for_instance("fail-upgrade", sid, iid)
        unhealthy = self.faults.for_instance("unhealthy", sid, iid)
        stuck = self.faults.for_instance("stuck", sid, iid)
        slow = self.faults.for_instance("slow", sid, iid)

        instance.epoch += 1
        epoch = instance.epoch
        instance.operation_id = operation.op_id
        operation.pending.add(iid)
        self._set(scale_set, instance, "failure", None)
        self._set(scale_set, instance, "provisioning", "Updating")
        self._set(scale_set, instance, "power", "starting")
        if instance.health is not None:
            self._set(scale_set, instance, "health", "Unknown")
        self._note_concurrency(scale_set)

        def finished() -> None:
            if scale_set.instances.get(iid) is not instance or instance.epoch != epoch:
                return
            self._stuck.pop((scale_set.key, iid), None)
            if failing is not None:
                code = failing.code or "OSProvisioningTimedOut"
                message = (
                    f"OS Provisioning for VM '{scale_set.name}_{iid}' did not finish in the allotted time. "
                    "The VM may still finish provisioning successfully. Please check provisioning state "
                    "later."
                    if code == "OSProvisioningTimedOut"
                    else f"Upgrading VM '{scale_set.name}_{iid}' failed with '{code}'."
                )
                self._set(scale_set, instance, "failure", {"code": code, "message": message, "at": self._now})
                self._set(scale_set, instance, "provisioning", "Failed")
                self._set(scale_set, instance, "power", "running")
                if instance.health is not None:
                    self._set(scale_set, instance, "health", "Unhealthy")
                self._instance_done(scale_set, instance, {"code": code, "message": message})
                return
            instance.image_spec = spec
            instance.image = image
            self._set(scale_set, instance, "profile_version", version)
            self._set(scale_set, instance, "provisioning", "Succeeded")
            self._set(scale_set, instance, "power", "running")
            self._settle_health(scale_set, instance, unhealthy=unhealthy is not None)
            self._instance_done(scale_set, instance, None)

        duration = slow.seconds if slow is not None else scale_set.upgrade_seconds * self._jitter()
        if stuck is not None:
            self._stuck[(scale_set.key, iid)] = finished
            if stuck.seconds > 0:
                self._at(duration + stuck.seconds, finished)
            return
        self._at(duration, finished)

    def release_stuck(self) -> None:
        """Clearing the faults lets every stuck upgrade finish now."""
        waiting, self._stuck = self._stuck, {}
        for finish in waiting.values():
            self._at(0.0, finish)

    def _settle_health(self, scale_set: ScaleSet, instance: Instance, *, unhealthy: bool) -> None:
        if instance.health is None and not scale_set.has_health_extension:
            return
        self._set(scale_set, instance, "health", "Initializing")
        epoch = instance.epoch

        def settled() -> None:
            if scale_set.instances.get(instance.instance_id) is instance and instance.epoch == epoch:
                self._set(scale_set, instance, "health", "Unhealthy" if unhealthy else "Healthy")

        self._at(scale_set.health_warmup_seconds * self._jitter(), settled)

    def _note_concurrency(self, scale_set: ScaleSet) -> None:
        upgrading = {i.update_domain for i in scale_set.instances.values() if i.provisioning == "Updating"}
        if len(upgrading) > scale_set.counters.max_concurrent_domains:
            scale_set.counters.max_concurrent_domains = len(upgrading)
        if len(upgrading) > self.counters.max_concurrent_domains:
            self.counters.max_concurrent_domains = len(upgrading)

    def _instance_done(self, scale_set: ScaleSet, instance: Instance, error: dict[str, str] | None) -> None:
        operation = self.operations.get(instance.operation_id or "")
        instance.operation_id = None
        if operation is None:
            return
        operation.pending.discard(instance.instance_id)
        if error is not None and operation.error is None:
            operation.error = {"code": error["code"], "message": error["message"], "details": []}
        rolling = scale_set.rolling
        if operation.rolling and rolling is not None and rolling.operation_id == operation.op_id:
            rolling.in_progress = max(0, rolling.in_progress - 1)
            if error is None:
                rolling.successful += 1
            else:
                rolling.failed += 1
            if not operation.pending:
                self._at(scale_set.health_warmup_seconds * 1.2 + 0.1, lambda: self._rolling_batch_done(scale_set))
            return
        self._maybe_finish(operation)

    # ----------------------------------------------------------------------------------- operations

    def _new_operation(self, scale_set: ScaleSet, name: str) -> Operation:
        operation = Operation(
            op_id=str(uuid.uuid4()),
            name=name,
            subscription=scale_set.subscription,
            location=scale_set.location.replace(" ", "").lower(),
            scale_set=scale_set.key,
            started=self._now,
        )
        self.operations[operation.op_id] = operation
        self.record(
            {
                "kind": "operation",
                "scaleSet": scale_set.id,
                "operationId": operation.op_id,
                "name": name,
                "status": "InProgress",
            }
        )
        return operation

    def _maybe_finish(self, operation: Operation, delay: float = 0.0) -> None:
        if operation.status != "InProgress" or operation.pending or operation.rolling:
            return
        if delay > 0:
            self._at(delay, lambda: self._maybe_finish(operation))
            return
        self._finish_operation(operation, operation.error)

    def _finish_operation(
        self, operation: Operation, error: dict[str, Any] | None = None, status: str | None = None
    ) -> None:
        if operation.status != "InProgress":
            return
        operation.status = status or ("Failed" if error else "Succeeded")
        operation.error = error
        operation.ended = self._now
        scale_set = self.scale_sets.get(operation.scale_set)
        if scale_set is not None and scale_set.provisioning_operation == operation.op_id:
            scale_set.provisioning = (
                "Failed" if error and not scale_set.deleting else ("Deleting" if scale_set.deleting else "Succeeded")
            )
            scale_set.provisioning_operation = None
        self.record(
            {
                "kind": "operation",
                "scaleSet": scale_set.id if scale_set else None,
                "operationId": operation.op_id,
                "name": operation.name,
                "status": operation.status,
                "error": error,
            }
        )

    def operation(self, subscription: str, op_id: str) -> Operation:
        operation = self.operations.get(op_id)
        if operation is None or operation.subscription.lower() != subscription.lower():
            raise ArmError(404, "NotFound", f"The operation '{op_id}' was not found.")
        return operation

    # ------------------------------------------------------------------------------ rolling upgrades

    def start_os_rolling_upgrade(self, scale_set: ScaleSet) -> Operation:
        self._refuse_if_deleting(scale_set, "Start OS Rolling Upgrade")
        spec = scale_set.profiles[scale_set.profile_version]
        ref = spec.image_reference or {}
        if image_kind(spec.image_reference, spec.os_disk) != PLATFORM or str(ref.get("version")).lower() != "latest":
            raise operation_not_allowed(
                "The OS Rolling Upgrade API cannot be used on a Virtual Machine Scale Set unless the Virtual "
                "Machine Scale Set has some unprotected instances which have imageReference.version set to latest."
            )
        if scale_set.rolling and scale_set.rolling.status == "RollingForward":
            raise operation_not_allowed("A rolling upgrade is already in progress on this Virtual Machine Scale Set.")
        operation = self._new_operation(scale_set, "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade")
        operation.rolling = True
        self._start_rolling(scale_set, operation, kind="OS")
        return operation

    def _needs_rolling(self, scale_set: ScaleSet, instance: Instance, rolling: RollingUpgrade) -> bool:
        if instance.provisioning == "Deleting" or instance.operation_id is not None:
            return False
        if rolling.kind == "Model":
            return instance.profile_version != scale_set.profile_version
        return instance.image.get("exactVersion") != rolling.target_version

    def _start_rolling(self, scale_set: ScaleSet, operation: Operation, kind: str) -> None:
        policy = dict((scale_set.properties.get("upgradePolicy") or {}).get("rollingUpgradePolicy") or {})
        policy.setdefault("maxBatchInstancePercent", 20)
        policy.setdefault("maxUnhealthyInstancePercent", 20)
        policy.setdefault("maxUnhealthyUpgradedInstancePercent", 20)
        policy.setdefault("pauseTimeBetweenBatches", "PT0S")
        spec = scale_set.profiles[scale_set.profile_version]
        target = None
        if kind == "OS":
            target = self.catalog.resolve(spec.image_reference, spec.os_disk, scale_set.location).get("exactVersion")
        rolling = RollingUpgrade(
            operation_id=operation.op_id,
            kind=kind,
            batches=[],
            policy=policy,
            started=self._now,
            pause_seconds=iso_duration_seconds(str(policy["pauseTimeBetweenBatches"])),
            last_action_time=self._now,
            target_version=target,
        )
        candidates = sorted(
            (i for i in scale_set.instances.values() if self._needs_rolling(scale_set, i, rolling)),
            key=lambda i: (i.zone or "", i.update_domain, i.number),
        )
        size = max(1, math.ceil(len(scale_set.instances) * float(policy["maxBatchInstancePercent"]) / 100))
        rolling.batches = [[i.instance_id for i in candidates[n : n + size]] for n in range(0, len(candidates), size)]
        scale_set.rolling = rolling
        self.record(
            {"kind": "rollingUpgrade", "scaleSet": scale_set.id, "event": "started", "batches": rolling.batches}
        )
        self._rolling_next_batch(scale_set)

    def _rolling_next_batch(self, scale_set: ScaleSet) -> None:
        rolling = scale_set.rolling
        if rolling is None or rolling.status != "RollingForward":
            return
        operation = self.operations[rolling.operation_id]
        if rolling.cancel_requested:
            self._rolling_end(
                scale_set,
                rolling,
                "Cancelled",
                {"code": "OperationPreempted", "message": "The rolling upgrade was cancelled."},
                "Canceled",
            )
            return
        while rolling.index < len(rolling.batches):
            batch = [
                scale_set.instances[i]
                for i in rolling.batches[rolling.index]
                if i in scale_set.instances and self._needs_rolling(scale_set, scale_set.instances[i], rolling)
            ]
            if batch:
                for instance in batch:
                    self._count_upgrade(scale_set, instance)
                    rolling.in_progress += 1
                    rolling.upgraded.add(instance.instance_id)
                    self._start_upgrade(
                        scale_set,
                        instance,
                        operation,
                        apply_model=rolling.kind == "Model",
                        target_version=rolling.target_version,
                    )
                return
            rolling.index += 1
        self._rolling_end(scale_set, rolling, "Completed", None, None)

    def _rolling_batch_done(self, scale_set: ScaleSet) -> None:
        rolling = scale_set.rolling
        if rolling is None or rolling.status != "RollingForward":
            return
        upgraded = [scale_set.instances[i] for i in rolling.upgraded if i in scale_set.instances]
        bad = [i for i in upgraded if i.provisioning == "Failed" or i.health == "Unhealthy"]
        limit = float(rolling.policy["maxUnhealthyUpgradedInstancePercent"])
        if upgraded and 100.0 * len(bad) / max(1, len(scale_set.instances)) > limit:
            self._rolling_end(
                scale_set,
                rolling,
                "Faulted",
                {
                    "code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
                    "message": (
                        "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value "
                        f"defined in the RollingUpgradePolicy. {len(bad)} of {len(scale_set.instances)} "
                        "instances are unhealthy after being upgraded."
                    ),
                    "details": [],
                },
                "Failed",
            )
            return
        rolling.index += 1
        self._at(rolling.pause_seconds, lambda: self._rolling_next_batch(scale_set))

    def _rolling_end(
        self,
        scale_set: ScaleSet,
        rolling: RollingUpgrade,
        status: str,
        error: dict[str, Any] | None,
        operation_status: str | None,
    ) -> None:
        rolling.status = status
        rolling.error = error
        rolling.ended = self._now
        operation = self.operations[rolling.operation_id]
        operation.rolling = False
        self.record({"kind": "rollingUpgrade", "scaleSet": scale_set.id, "event": status.lower()})
        self._finish_operation(operation, error, operation_status)

    def cancel_rolling_upgrade(self, scale_set: ScaleSet) -> Operation:
        rolling = scale_set.rolling
        if rolling is None or rolling.status != "RollingForward":
            raise operation_not_allowed(
                "There is no rolling upgrade in progress on this Virtual Machine Scale Set to cancel."
            )
        rolling.cancel_requested = True
        rolling.last_action = "Cancel"
        rolling.last_action_time = self._now
        operation = self._new_operation(scale_set, "VirtualMachineScaleSetRollingUpgrades_Cancel")
        pending = self.operations[rolling.operation_id].pending
        if not pending:
            self._rolling_next_batch(scale_set)
        self._maybe_finish(operation, delay=1.0)
        return operation

    # ----------------------------------------------------------------------------------------- stats

    def count_request(self, operation: str, captures: Mapping[str, str]) -> None:
        """Counts an ARM request against the scale set it is about: one on the scale set's own paths, or a read of
        one of its operations' status (whose URL names no scale set, so the audit entry cannot say whose it is)."""
        scale_set: ScaleSet | None = None
        if "vmss" in captures:
            scale_set = self.scale_sets.get(scale_set_key(captures["sub"], captures["rg"], captures["vmss"]))
        elif "op" in captures:
            owned = self.operations.get(captures["op"])
            if owned is not None and owned.subscription.lower() == captures["sub"].lower():
                scale_set = self.scale_sets.get(owned.scale_set)
        if scale_set is not None:
            scale_set.counters.requests[operation] += 1

    def stats(self) -> dict[str, Any]:
        return {
            "maxConcurrentDomains": self.counters.max_concurrent_domains,
            "doubleUpgrades": self.counters.double_upgrades,
            "upgrades": self.counters.upgrades,
            "scaleSets": {
                scale_set.id: {
                    "maxConcurrentDomains": scale_set.counters.max_concurrent_domains,
                    "doubleUpgrades": scale_set.counters.double_upgrades,
                    "upgrades": scale_set.counters.upgrades,
                    "modelWrites": scale_set.counters.model_writes,
                    "requests": dict(sorted(scale_set.counters.requests.items())),
                    "instances": len(scale_set.instances),
                }
                for scale_set in self.scale_sets.values()
            },
        }
