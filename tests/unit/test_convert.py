"""ARM JSON (section 2 of the ARM reference) to the core's observation values: instances, the scale set, and the
status documents of long-running operations."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scaleset_image_operator.azure.convert import instance_from_arm, operation_from_arm, scale_set_from_arm
from scaleset_image_operator.core.images import Image, ImageKind
from scaleset_image_operator.core.observation import Health, InstanceView, OperationState, OperationView

SUB = "00000000-0000-0000-0000-000000000000"
VMSS_ID = f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web"
NOBLE = ("Canonical", "ubuntu-24_04-lts", "server")
GALLERY = (
    f"/subscriptions/{SUB}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/g/images/web/versions/1.4.0"
)
VHD = "https://account.blob.core.windows.net/vhds/custom.vhd"
OP_URL = (
    f"https://management.azure.com/subscriptions/{SUB}/providers/Microsoft.Compute/locations/eastus/operations/"
    "5f1a?p=4a6b&api-version=2024-07-01"
)
REMOVED = object()


def apply(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` keyed by ``__``-separated paths (``properties__instanceView__vmHealth``); REMOVED deletes."""
    document = copy.deepcopy(document)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        if value is REMOVED:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return document


def a_vm(instance_id: str = "3", **changes: Any) -> dict[str, Any]:
    """A Uniform VMSS VM listed with ``$expand=instanceView``, running the model's image, healthy, in zone 2."""
    number = int(instance_id)
    vm = {
        "id": f"{VMSS_ID}/virtualMachines/{instance_id}",
        "name": f"vmss-web_{instance_id}",
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": "eastus",
        "instanceId": instance_id,
        "zones": ["2"],
        "etag": '"4"',
        "sku": {"name": "Standard_D2s_v5", "tier": "Standard"},
        "properties": {
            "latestModelApplied": True,
            "modelDefinitionApplied": "VirtualMachineScaleSet",
            "provisioningState": "Succeeded",
            "vmId": "3e7aa78e-0000-0000-0000-000000000003",
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "imageReference": {
                    "publisher": NOBLE[0],
                    "offer": NOBLE[1],
                    "sku": NOBLE[2],
                    "version": "latest",
                    "exactVersion": "24.04.202501010",
                },
                "osDisk": {"name": f"vmss-web_{instance_id}_OsDisk", "managedDisk": {"id": "/disks/d"}},
            },
            "osProfile": {"computerName": f"node{number:06d}"},
            "instanceView": {
                "platformUpdateDomain": number % 5,
                "platformFaultDomain": number % 3,
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "time": "2025-01-01T00:00:00+00:00",
                    },
                    {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
                ],
                "vmHealth": {
                    "status": {"code": "HealthState/healthy", "level": "Info", "displayStatus": "The VM is healthy"}
                },
            },
        },
        "resources": [],
    }
    return apply(vm, changes)


def a_vmss(**changes: Any) -> dict[str, Any]:
    """A regional Uniform scale set on Manual upgrades whose model asks for the latest Noble image."""
    vmss = {
        "id": VMSS_ID,
        "name": "vmss-web",
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": "eastus",
        "tags": {},
        "etag": '"7"',
        "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 6},
        "properties": {
            "orchestrationMode": "Uniform",
            "singlePlacementGroup": True,
            "platformFaultDomainCount": 5,
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "storageProfile": {
                    "imageReference": {"publisher": NOBLE[0], "offer": NOBLE[1], "sku": NOBLE[2], "version": "latest"},
                    "osDisk": {"osType": "Linux", "createOption": "FromImage", "caching": "ReadWrite"},
                    "dataDisks": [],
                },
                "osProfile": {"computerNamePrefix": "node", "adminUsername": "azureuser"},
            },
            "provisioningState": "Succeeded",
            "uniqueId": "a5a75963-c612-4d1d-a7d8-1393e33f3453",
        },
    }
    return apply(vmss, changes)


def statuses(*codes: str) -> list[dict[str, str]]:
    return [{"code": code, "level": "Info"} for code in codes]


# -- instances -------------------------------------------------------------------------------------------------


def test_a_listed_vm_becomes_an_instance_view() -> None:
    assert instance_from_arm(a_vm("3")) == InstanceView(
        instance_id="3",
        update_domain=3,
        fault_domain=0,
        zone="2",
        latest_model_applied=True,
        image=Image.platform(*NOBLE, "24.04.202501010"),
        provisioning_state="Succeeded",
        power_state="running",
        health=Health.HEALTHY,
        failure_code="",
    )


@pytest.mark.parametrize(
    ("codes", "provisioning", "failure"),
    [
        pytest.param(
            ("ProvisioningState/failed/VMExtensionProvisioningError", "PowerState/running"),
            "Failed",
            "VMExtensionProvisioningError",
            id="with-code",
        ),
        pytest.param(
            ("ProvisioningState/failed/OSProvisioningTimedOut",), "Failed", "OSProvisioningTimedOut", id="timed-out"
        ),
        pytest.param(
            ("ProvisioningState/Failed/AllocationFailed",), "Failed", "AllocationFailed", id="capitalised-failed"
        ),
        pytest.param(("ProvisioningState/failed",), "Failed", "", id="without-code"),
        pytest.param(("ProvisioningState/succeeded", "PowerState/running"), "Succeeded", "", id="succeeded"),
    ],
)
def test_a_failed_provisioning_status_marks_the_instance_failed_with_azures_code(
    codes: tuple[str, ...], provisioning: str, failure: str
) -> None:
    instance = instance_from_arm(a_vm(properties__instanceView__statuses=statuses(*codes)))
    assert (instance.provisioning_state, instance.failure_code, instance.failed) == (
        provisioning,
        failure,
        provisioning == "Failed",
    )


def test_an_instance_being_upgraded_is_busy_by_its_provisioning_state() -> None:
    instance = instance_from_arm(
        a_vm(
            properties__provisioningState="Updating",
            properties__instanceView__statuses=statuses("ProvisioningState/updating", "PowerState/running"),
        )
    )
    assert (instance.provisioning_state, instance.busy) == ("Updating", True)


@pytest.mark.parametrize(
    ("code", "power"),
    [("PowerState/running", "running"), ("PowerState/deallocated", "deallocated"), ("PowerState/starting", "starting")],
)
def test_the_power_state_is_the_part_after_the_slash(code: str, power: str) -> None:
    instance = instance_from_arm(a_vm(properties__instanceView__statuses=statuses("ProvisioningState/succeeded", code)))
    assert instance.power_state == power


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        ({"status": {"code": "HealthState/healthy"}}, Health.HEALTHY),
        ({"status": {"code": "HealthState/unhealthy"}}, Health.UNHEALTHY),
        ({"status": {"code": "HealthState/initializing"}}, Health.INITIALIZING),
        ({"status": {"code": "HealthState/unknown"}}, Health.UNKNOWN),
        ({"status": {"code": "HealthState/Healthy"}}, Health.HEALTHY),
        ({"status": {"code": "HealthState/degraded"}}, None),
        ({"status": {}}, None),
        ({}, None),
        (REMOVED, None),
    ],
)
def test_the_health_signal_is_read_only_when_the_instance_reports_one(health: Any, expected: Health | None) -> None:
    assert instance_from_arm(a_vm(properties__instanceView__vmHealth=health)).health is expected


@pytest.mark.parametrize(("zones", "zone"), [(["2"], "2"), (["1", "3"], "1"), ([], None), (REMOVED, None)])
def test_an_instance_is_in_its_first_zone_or_in_none(zones: Any, zone: str | None) -> None:
    assert instance_from_arm(a_vm(zones=zones)).zone == zone


def test_domain_zero_is_a_domain() -> None:
    instance = instance_from_arm(a_vm("0"))
    assert (instance.update_domain, instance.fault_domain) == (0, 0)


def test_a_vm_listed_without_its_instance_view_has_no_domains_power_or_health() -> None:
    instance = instance_from_arm(a_vm(properties__instanceView=REMOVED))
    assert (instance.update_domain, instance.fault_domain, instance.power_state, instance.health) == (
        None,
        None,
        "",
        None,
    )
    assert instance.provisioning_state == "Succeeded"


@pytest.mark.parametrize(
    ("reference", "os_disk_image", "image"),
    [
        pytest.param(
            {"publisher": NOBLE[0], "offer": NOBLE[1], "sku": NOBLE[2], "version": "latest", "exactVersion": "24.04.1"},
            REMOVED,
            Image.platform(*NOBLE, "24.04.1"),
            id="exact-version-wins",
        ),
        pytest.param(
            {"publisher": NOBLE[0], "offer": NOBLE[1], "sku": NOBLE[2], "version": "24.04.0"},
            REMOVED,
            Image.platform(*NOBLE, "24.04.0"),
            id="version-without-exact",
        ),
        pytest.param({"id": GALLERY, "exactVersion": "1.4.0"}, REMOVED, Image.of(ImageKind.ID, GALLERY), id="gallery"),
        pytest.param(REMOVED, {"uri": VHD}, Image.of(ImageKind.URI, VHD), id="vhd"),
        pytest.param(REMOVED, REMOVED, None, id="none"),
    ],
)
def test_an_instance_runs_the_image_its_storage_profile_names(reference: Any, os_disk_image: Any, image: Any) -> None:
    vm = a_vm(
        properties__storageProfile__imageReference=reference,
        properties__storageProfile__osDisk__image=os_disk_image,
    )
    assert instance_from_arm(vm).image == image


def test_a_flexible_vm_without_an_instance_id_is_named_by_its_suffix() -> None:
    vm = a_vm(instanceId=REMOVED, name="vmss-web_a1b2c3d4")
    assert instance_from_arm(vm).instance_id == "a1b2c3d4"


def test_a_vm_with_a_stale_model_says_so() -> None:
    assert instance_from_arm(a_vm(properties__latestModelApplied=False)).latest_model_applied is False


# -- the scale set ---------------------------------------------------------------------------------------------


def test_a_scale_set_and_its_vms_become_a_scale_set_view() -> None:
    view = scale_set_from_arm(a_vmss(), [a_vm("1"), a_vm("0")])
    assert (view.id, view.name, view.location, view.etag) == (VMSS_ID, "vmss-web", "eastus", '"7"')
    assert (view.upgrade_mode, view.orchestration_mode, view.capacity, view.provisioning_state) == (
        "Manual",
        "Uniform",
        6,
        "Succeeded",
    )
    assert view.model_image == Image.platform(*NOBLE, "latest")
    assert [i.instance_id for i in view.instances] == ["0", "1"]
    assert not view.busy


def test_instances_are_ordered_by_number_not_by_text() -> None:
    view = scale_set_from_arm(a_vmss(), [a_vm(n) for n in ("10", "2", "1", "0")])
    assert [i.instance_id for i in view.instances] == ["0", "1", "2", "10"]


@pytest.mark.parametrize(
    ("storage", "image"),
    [
        pytest.param(
            {"imageReference": {"publisher": NOBLE[0], "offer": NOBLE[1], "sku": NOBLE[2], "version": "24.04.2"}},
            Image.platform(*NOBLE, "24.04.2"),
            id="platform-pinned",
        ),
        pytest.param({"imageReference": {"id": GALLERY}}, Image.of(ImageKind.ID, GALLERY), id="gallery"),
        pytest.param(
            {"imageReference": {"sharedGalleryImageId": "/SharedGalleries/x/Images/web/Versions/1.4.0"}},
            Image.of(ImageKind.SHARED_GALLERY, "/SharedGalleries/x/Images/web/Versions/1.4.0"),
            id="shared",
        ),
        pytest.param(
            {"osDisk": {"osType": "Linux", "createOption": "FromImage", "image": {"uri": VHD}}},
            Image.of(ImageKind.URI, VHD),
            id="vhd",
        ),
        pytest.param({}, None, id="none"),
    ],
)
def test_the_model_image_comes_from_image_reference_or_the_os_disk(storage: dict[str, Any], image: Any) -> None:
    view = scale_set_from_arm(a_vmss(properties__virtualMachineProfile__storageProfile=storage), [])
    assert view.model_image == image


def test_the_model_image_is_what_the_model_asks_for_not_what_instances_resolved() -> None:
    model = a_vmss(
        properties__virtualMachineProfile__storageProfile__imageReference={
            "publisher": NOBLE[0],
            "offer": NOBLE[1],
            "sku": NOBLE[2],
            "version": "latest",
            "exactVersion": "24.04.202501010",
        }
    )
    assert scale_set_from_arm(model, []).model_image == Image.platform(*NOBLE, "latest")


@pytest.mark.parametrize(
    ("changes", "attribute", "value"),
    [
        ({"properties__upgradePolicy": {"mode": "Rolling"}}, "upgrade_mode", "Rolling"),
        ({"properties__upgradePolicy": REMOVED}, "upgrade_mode", "Manual"),
        ({"properties__orchestrationMode": "Flexible"}, "orchestration_mode", "Flexible"),
        ({"properties__orchestrationMode": REMOVED}, "orchestration_mode", "Uniform"),
        ({"sku": {"name": "Standard_D2s_v5"}}, "capacity", 0),
        ({"etag": REMOVED}, "etag", ""),
        ({"properties__provisioningState": "Updating"}, "busy", True),
    ],
)
def test_scale_set_fields_default_the_way_azure_does(changes: dict[str, Any], attribute: str, value: Any) -> None:
    assert getattr(scale_set_from_arm(a_vmss(**changes), []), attribute) == value


def test_a_scale_set_with_a_busy_instance_is_busy() -> None:
    vms = [a_vm("0"), a_vm("1", properties__provisioningState="Updating")]
    assert scale_set_from_arm(a_vmss(), vms).busy


# -- operations ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            {"startTime": "2023-12-28T06:26:15.2323042+00:00", "status": "InProgress", "name": "5f1a"},
            OperationView(OP_URL, OperationState.IN_PROGRESS),
            id="in-progress",
        ),
        pytest.param(
            {"startTime": "…", "endTime": "2023-12-28T06:33:03.1549589+00:00", "status": "Succeeded", "name": "5f1a"},
            OperationView(OP_URL, OperationState.SUCCEEDED),
            id="succeeded",
        ),
        pytest.param(
            {
                "status": "Failed",
                "name": "5f1a",
                "error": {
                    "code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
                    "message": "Too many upgraded instances are unhealthy.",
                    "details": [],
                },
            },
            OperationView(
                OP_URL,
                OperationState.FAILED,
                "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
                "Too many upgraded instances are unhealthy.",
            ),
            id="failed",
        ),
        pytest.param({"status": "Failed"}, OperationView(OP_URL, OperationState.FAILED), id="failed-without-error"),
        pytest.param({"status": "Canceled"}, OperationView(OP_URL, OperationState.CANCELED), id="canceled"),
        pytest.param({"status": "Cancelled"}, OperationView(OP_URL, OperationState.CANCELED), id="cancelled"),
        pytest.param({"status": "succeeded"}, OperationView(OP_URL, OperationState.SUCCEEDED), id="any-case"),
        pytest.param({"status": "Accepted"}, OperationView(OP_URL, OperationState.IN_PROGRESS), id="other-is-running"),
        pytest.param({}, OperationView(OP_URL, OperationState.IN_PROGRESS), id="no-status-is-running"),
    ],
)
def test_an_operation_status_document_is_read_case_insensitively(
    document: dict[str, Any], expected: OperationView
) -> None:
    assert operation_from_arm(OP_URL, document) == expected


@pytest.mark.parametrize(
    ("status", "done"), [("InProgress", False), ("Succeeded", True), ("Failed", True), ("Canceled", True)]
)
def test_an_operation_is_done_once_it_is_no_longer_in_progress(status: str, done: bool) -> None:
    assert operation_from_arm(OP_URL, {"status": status}).done is done
