"""Names of ARM requests, as Azure's REST operation ids, for metrics and logs (``azure_requests_total``)."""

from __future__ import annotations

from urllib.parse import urlparse

_ACTIONS = {
    "manualupgrade": "VirtualMachineScaleSets_UpdateInstances",
    "reimage": "VirtualMachineScaleSets_Reimage",
    "instanceview": "VirtualMachineScaleSets_GetInstanceView",
    "virtualmachines": "VirtualMachineScaleSetVMs_List",
}
_SCALE_SET = {
    "GET": "VirtualMachineScaleSets_Get",
    "PATCH": "VirtualMachineScaleSets_Update",
    "PUT": "VirtualMachineScaleSets_CreateOrUpdate",
    "DELETE": "VirtualMachineScaleSets_Delete",
}


def operation_name(method: str, url: str) -> str:
    parts = [p.lower() for p in urlparse(url).path.split("/") if p]
    if "operations" in parts and "locations" in parts:
        return "Operations_Get"
    if "versions" in parts and "publishers" in parts:
        return "VirtualMachineImages_List"
    if "virtualmachinescalesets" in parts:
        tail = parts[parts.index("virtualmachinescalesets") + 2 :]
        if not tail:
            return _SCALE_SET.get(method.upper(), f"VirtualMachineScaleSets_{method.title()}")
        if tail[0] == "virtualmachines" and len(tail) > 1:
            return "VirtualMachineScaleSetVMs_Get" if len(tail) == 2 else f"VirtualMachineScaleSetVMs_{tail[2]}"
        return _ACTIONS.get(tail[0], f"VirtualMachineScaleSets_{tail[0]}")
    if "oauth2" in parts or "token" in parts:
        return "Token"
    return "Other"
