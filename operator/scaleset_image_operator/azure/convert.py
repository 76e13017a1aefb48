"""Small converters from ARM JSON (SDK models are mappings of the wire JSON) to the core's observation values.

Kept apart from the gateway so they can be fed anything shaped like ARM's answers: the SDK's models, the
simulator's rendered documents in tests, recorded fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..core.images import Image
from ..core.observation import Health, InstanceView, OperationState, OperationView, ScaleSetView

_HEALTH = {
    "healthstate/healthy": Health.HEALTHY,
    "healthstate/unhealthy": Health.UNHEALTHY,
    "healthstate/initializing": Health.INITIALIZING,
    "healthstate/unknown": Health.UNKNOWN,
}


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, Mapping) or key not in document:
            return None
        document = document[key]
    return document


def _epoch(text: Any) -> float | None:
    """ARM timestamps (``2025-01-01T00:00:00.0000000+00:00``: seven fractional digits) as epoch seconds."""
    if not isinstance(text, str) or not text:
        return None
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(cleaned).timestamp()
    except ValueError:
        return None


def instance_from_arm(vm: Mapping[str, Any]) -> InstanceView:
    properties = _get(vm, "properties") or {}
    view = _get(properties, "instanceView") or {}
    storage = _get(properties, "storageProfile") or {}
    image = Image.from_reference(_get(storage, "imageReference"), _get(storage, "osDisk", "image"), exact=True)
    power = ""
    failure = ""
    failed_at: float | None = None
    provisioning = str(properties.get("provisioningState") or "")
    for status in view.get("statuses") or []:
        code = str(status.get("code") or "")
        lowered = code.lower()
        if lowered.startswith("powerstate/"):
            power = code.split("/", 1)[1]
        elif lowered.startswith("provisioningstate/failed"):
            provisioning = "Failed"
            failure = code.split("/", 2)[2] if code.count("/") >= 2 else ""
            failed_at = _epoch(status.get("time"))
    health_code = str(_get(view, "vmHealth", "status", "code") or "").lower()
    update_domain = view.get("platformUpdateDomain")
    fault_domain = view.get("platformFaultDomain")
    zones = vm.get("zones") or []
    return InstanceView(
        instance_id=str(vm.get("instanceId") or str(vm.get("name", "")).rsplit("_", 1)[-1]),
        update_domain=int(update_domain) if update_domain is not None else None,
        fault_domain=int(fault_domain) if fault_domain is not None else None,
        zone=str(zones[0]) if zones else None,
        latest_model_applied=bool(properties.get("latestModelApplied", False)),
        image=image,
        provisioning_state=provisioning,
        power_state=power,
        health=_HEALTH.get(health_code),
        failure_code=failure,
        failed_at=failed_at,
    )


def scale_set_from_arm(vmss: Mapping[str, Any], vms: Iterable[Mapping[str, Any]]) -> ScaleSetView:
    properties = _get(vmss, "properties") or {}
    storage = _get(properties, "virtualMachineProfile", "storageProfile") or {}
    instances = sorted((instance_from_arm(vm) for vm in vms), key=lambda i: (i.name_number, i.instance_id))
    etag = str(vmss.get("etag") or "")
    return ScaleSetView(
        id=str(vmss.get("id") or ""),
        name=str(vmss.get("name") or ""),
        location=str(vmss.get("location") or ""),
        etag=etag,
        upgrade_mode=str(_get(properties, "upgradePolicy", "mode") or "Manual"),
        orchestration_mode=str(properties.get("orchestrationMode") or "Uniform"),
        model_image=Image.from_reference(_get(storage, "imageReference"), _get(storage, "osDisk", "image")),
        capacity=int(_get(vmss, "sku", "capacity") or 0),
        provisioning_state=str(properties.get("provisioningState") or ""),
        instances=tuple(instances),
    )


def operation_from_arm(url: str, document: Mapping[str, Any]) -> OperationView:
    raw = str(document.get("status") or "InProgress").lower()
    state = {
        "succeeded": OperationState.SUCCEEDED,
        "failed": OperationState.FAILED,
        "canceled": OperationState.CANCELED,
        "cancelled": OperationState.CANCELED,
    }.get(raw, OperationState.IN_PROGRESS)
    error = document.get("error") or {}
    return OperationView(url, state, str(error.get("code") or ""), str(error.get("message") or ""))
