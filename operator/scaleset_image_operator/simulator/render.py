"""ARM JSON for the simulator's records, in the shapes and casing real Azure answers with (docs/simulator.md,
"ARM Compute routes"). Pure functions of the records and the clock."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from .clock import SimClock, iso
from .model import SCALE_SET_TYPE, VM_TYPE, Instance, Operation, RollingUpgrade, ScaleSet

_HEALTH_TEXT = {
    "Healthy": "The VM is healthy",
    "Unhealthy": "The VM is unhealthy",
    "Initializing": "The VM health is initializing",
    "Unknown": "The VM health is unknown",
}
_POWER_TEXT = {
    "running": "VM running",
    "starting": "VM starting",
    "stopped": "VM stopped",
    "deallocated": "VM deallocated",
}


def scale_set(resource: ScaleSet) -> dict[str, Any]:
    body = copy.deepcopy(resource.resource)
    document: dict[str, Any] = {
        "id": resource.id,
        "name": resource.name,
        "type": SCALE_SET_TYPE,
        "location": resource.location,
        "tags": body.pop("tags", {}) or {},
        "etag": f'"{resource.etag}"',
    }
    for key in ("zones", "identity", "plan"):
        if key in body:
            document[key] = body.pop(key)
    document["sku"] = body.pop("sku", {})
    properties = body.pop("properties", {})
    properties["provisioningState"] = resource.provisioning
    properties["uniqueId"] = resource.unique_id
    document["properties"] = properties
    return document


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def computer_name(resource: ScaleSet, instance: Instance) -> str:
    prefix = str(((resource.profile.get("osProfile") or {}).get("computerNamePrefix")) or resource.name[:9])
    return f"{prefix}{_base36(instance.number).rjust(6, '0')}"


def _statuses(instance: Instance, clock: SimClock, only_power: bool = False) -> list[dict[str, Any]]:
    statuses: list[dict[str, Any]] = []
    if not only_power:
        if instance.provisioning == "Failed" and instance.failure:
            statuses.append(
                {
                    "code": f"ProvisioningState/failed/{instance.failure['code']}",
                    "level": "Error",
                    "displayStatus": "Provisioning failed",
                    "message": instance.failure["message"],
                    "time": iso(clock.wall_time(float(instance.failure.get("at", instance.created)))),
                }
            )
        else:
            state = instance.provisioning.lower()
            statuses.append(
                {
                    "code": f"ProvisioningState/{state}",
                    "level": "Info",
                    "displayStatus": f"Provisioning {state}",
                    "time": iso(clock.wall_time(instance.created)),
                }
            )
    statuses.append(
        {
            "code": f"PowerState/{instance.power}",
            "level": "Info",
            "displayStatus": _POWER_TEXT.get(instance.power, f"VM {instance.power}"),
        }
    )
    return statuses


def instance_view(resource: ScaleSet, instance: Instance, clock: SimClock, only_power: bool = False) -> dict[str, Any]:
    if only_power:
        return {"statuses": _statuses(instance, clock, only_power=True)}
    view: dict[str, Any] = {
        "platformUpdateDomain": instance.update_domain,
        "platformFaultDomain": instance.fault_domain,
        "computerName": computer_name(resource, instance),
        "hyperVGeneration": "V2",
        "vmAgent": {
            "vmAgentVersion": "2.11.1.12",
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Ready",
                    "message": "Guest Agent is running",
                }
            ],
        },
        "disks": [
            {
                "name": f"{resource.name}_{instance.instance_id}_OsDisk",
                "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}
                ],
            }
        ],
        "statuses": _statuses(instance, clock),
    }
    if (resource.properties.get("singlePlacementGroup", True)) and not resource.zones:
        view["placementGroupId"] = resource.unique_id
    if instance.health is not None:
        view["extensions"] = [
            {
                "name": "HealthExtension",
                "type": "Microsoft.ManagedServices.ApplicationHealthLinux",
                "typeHandlerVersion": "2.0.11",
                "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}
                ],
            }
        ]
        view["vmHealth"] = {
            "status": {
                "code": f"HealthState/{instance.health.lower()}",
                "level": "Info",
                "displayStatus": _HEALTH_TEXT[instance.health],
            }
        }
    return view


def vm(
    resource: ScaleSet, instance: Instance, clock: SimClock, *, expand_instance_view: bool, only_power: bool = False
) -> dict[str, Any]:
    image_reference = copy.deepcopy(instance.image_spec.image_reference)
    storage: dict[str, Any] = {
        "osDisk": {
            "osType": (resource.profile.get("storageProfile") or {}).get("osDisk", {}).get("osType", "Linux"),
            "name": f"{resource.name}_{instance.instance_id}_OsDisk",
            "createOption": "FromImage",
            "caching": "ReadWrite",
            "diskSizeGB": 30,
        },
        "dataDisks": [],
    }
    if "uri" in instance.image:
        storage["osDisk"]["image"] = {"uri": instance.image["uri"]}
    else:
        storage["osDisk"]["managedDisk"] = {
            "storageAccountType": "Premium_LRS",
            "id": (
                f"/subscriptions/{resource.subscription}/resourceGroups/{resource.resource_group}/providers/"
                f"Microsoft.Compute/disks/{resource.name}_{instance.instance_id}_OsDisk_{instance.vm_id[:8]}"
            ),
        }
        if image_reference is not None:
            if "exactVersion" in instance.image:
                image_reference["exactVersion"] = instance.image["exactVersion"]
            if "id" in instance.image:
                image_reference["id"] = instance.image["id"]
            storage["imageReference"] = image_reference
    properties: dict[str, Any] = {
        "latestModelApplied": instance.profile_version == resource.profile_version,
        "modelDefinitionApplied": "VirtualMachineScaleSet",
        "vmId": instance.vm_id,
        "hardwareProfile": {"vmSize": resource.vm_size},
        "storageProfile": storage,
        "osProfile": {
            "computerName": computer_name(resource, instance),
            "adminUsername": (resource.profile.get("osProfile") or {}).get("adminUsername", "azureuser"),
        },
        "networkProfile": {
            "networkInterfaces": [
                {"id": (f"{resource.id}/virtualMachines/{instance.instance_id}/networkInterfaces/nic")}
            ]
        },
        "provisioningState": instance.provisioning,
        "timeCreated": iso(clock.wall_time(instance.created)),
    }
    if expand_instance_view:
        properties["instanceView"] = instance_view(resource, instance, clock, only_power=only_power)
    document: dict[str, Any] = {
        "id": f"{resource.id}/virtualMachines/{instance.instance_id}",
        "name": f"{resource.name}_{instance.instance_id}",
        "type": VM_TYPE,
        "location": resource.location,
        "instanceId": instance.instance_id,
        "etag": f'"{instance.etag}"',
        "sku": {"name": resource.vm_size, "tier": "Standard"},
        "properties": properties,
    }
    if instance.zone is not None:
        document["zones"] = [instance.zone]
    return document


def scale_set_instance_view(resource: ScaleSet, clock: SimClock) -> dict[str, Any]:
    codes = Counter(f"ProvisioningState/{i.provisioning.lower()}" for i in resource.instances.values())
    view: dict[str, Any] = {
        "virtualMachine": {
            "statusesSummary": [{"code": code, "count": count} for code, count in sorted(codes.items())]
        },
        "statuses": [
            {
                "code": f"ProvisioningState/{resource.provisioning.lower()}",
                "level": "Info",
                "displayStatus": f"Provisioning {resource.provisioning.lower()}",
                "time": iso(clock.wall_time(clock.now())),
            }
        ],
        "orchestrationServices": [{"serviceName": "AutomaticRepairs", "serviceState": "NotRunning"}],
    }
    if resource.has_health_extension:
        view["extensions"] = [
            {
                "name": "HealthExtension",
                "statusesSummary": [{"code": "ProvisioningState/succeeded", "count": len(resource.instances)}],
            }
        ]
    return view


def operation(record: Operation, clock: SimClock) -> dict[str, Any]:
    document: dict[str, Any] = {
        "startTime": iso(clock.wall_time(record.started)),
        "status": record.status,
        "name": record.op_id,
    }
    if record.ended is not None:
        document["endTime"] = iso(clock.wall_time(record.ended))
    if record.error is not None:
        document["error"] = {"details": [], **record.error}
    return document


def rolling_upgrade(resource: ScaleSet, rolling: RollingUpgrade, clock: SimClock) -> dict[str, Any]:
    total = sum(len(batch) for batch in rolling.batches)
    properties: dict[str, Any] = {
        "policy": {
            key: rolling.policy[key]
            for key in (
                "maxBatchInstancePercent",
                "maxUnhealthyInstancePercent",
                "maxUnhealthyUpgradedInstancePercent",
                "pauseTimeBetweenBatches",
            )
        },
        "runningStatus": {
            "code": rolling.status,
            "startTime": iso(clock.wall_time(rolling.started)),
            "lastAction": rolling.last_action,
            "lastActionTime": iso(clock.wall_time(rolling.last_action_time)),
        },
        "progress": {
            "successfulInstanceCount": rolling.successful,
            "failedInstanceCount": rolling.failed,
            "inProgressInstanceCount": rolling.in_progress,
            "pendingInstanceCount": max(0, total - rolling.successful - rolling.failed - rolling.in_progress),
        },
    }
    if rolling.error is not None:
        properties["error"] = rolling.error
    return {
        "type": "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades",
        "location": resource.location,
        "properties": properties,
    }
