"""Azure Compute Gallery image versions in the simulator, read and used through the real Azure SDK: each version's
publishing profile in Azure's property names, the list of a definition's versions, 404s for what was never
published, and a model that names a definition (no version) getting, at VM create, the version Azure would pick."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import IMAGE_GROUP, ScaleSet, gallery_image, list_vms
from scaleset_image_operator.simulator import SimulatorControl
from scaleset_image_operator.simulator.control import SimulatorError


async def test_a_definitions_versions_list_with_their_publishing_profile_in_azures_names(
    compute: ComputeManagementClient, control: SimulatorControl, subscription_id: str
) -> None:
    definition = gallery_image(subscription_id)
    control.publish_image(
        id=f"{definition}/versions/1.10.0",
        targetRegions=["West Europe", {"name": "East US", "excludeFromLatest": True}],
        publishedDate="2025-01-15T10:00:00+00:00",
    )
    control.publish_image(id=f"{definition}/versions/1.9.0", excludeFromLatest=True)

    versions = [v async for v in compute.gallery_image_versions.list_by_gallery_image(IMAGE_GROUP, "gallery", "web")]

    assert [v.name for v in versions] == ["1.9.0", "1.10.0"]
    older, newer = (v.properties.publishing_profile for v in versions)
    assert (older.exclude_from_latest, [r.name for r in older.target_regions]) == (True, ["East US"])
    assert newer.exclude_from_latest is False
    assert [(r.name, r.exclude_from_latest) for r in newer.target_regions] == [
        ("West Europe", False),
        ("East US", True),
    ]
    assert newer.published_date.year == 2025
    assert versions[1].id == f"{definition}/versions/1.10.0"
    assert versions[1].type == "Microsoft.Compute/galleries/images/versions"


async def test_one_version_reads_back_and_an_unpublished_one_is_404_resource_not_found(
    compute: ComputeManagementClient, control: SimulatorControl, subscription_id: str
) -> None:
    control.publish_image(id=f"{gallery_image(subscription_id)}/versions/1.0.0")

    version = await compute.gallery_image_versions.get(IMAGE_GROUP, "gallery", "web", "1.0.0")
    with pytest.raises(ResourceNotFoundError) as missing:
        await compute.gallery_image_versions.get(IMAGE_GROUP, "gallery", "web", "2.0.0")
    with pytest.raises(ResourceNotFoundError) as no_definition:
        [v async for v in compute.gallery_image_versions.list_by_gallery_image(IMAGE_GROUP, "gallery", "nothing")]

    assert version.properties.provisioning_state == "Succeeded"
    assert [r.name for r in version.properties.publishing_profile.target_regions] == ["East US"]
    assert missing.value.error.code == "ResourceNotFound"
    assert "galleries/gallery/images/web/versions/2.0.0" in missing.value.error.message
    assert no_definition.value.error.code == "ResourceNotFound"


async def test_a_model_naming_a_definition_gives_new_instances_its_newest_version_replicated_to_their_region(
    compute: ComputeManagementClient,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    subscription_id: str,
) -> None:
    definition = gallery_image(subscription_id)
    control.publish_image(id=f"{definition}/versions/1.0.0", targetRegions=["westeurope"])
    control.publish_image(id=f"{definition}/versions/1.1.0", targetRegions=["West Europe"])
    control.publish_image(id=f"{definition}/versions/1.2.0", targetRegions=["West Europe"], excludeFromLatest=True)
    control.publish_image(
        id=f"{definition}/versions/1.3.0", targetRegions=[{"name": "West Europe", "excludeFromLatest": True}]
    )
    control.publish_image(id=f"{definition}/versions/2.0.0", targetRegions=["North Europe"])

    scale_set = scale_sets(capacity=2, location="westeurope", image={"id": definition})

    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    vms = await list_vms(compute, scale_set)
    assert vmss.virtual_machine_profile.storage_profile.image_reference.id == definition
    assert {vm.properties.storage_profile.image_reference.id for vm in vms} == {f"{definition}/versions/1.1.0"}


async def test_a_model_change_to_a_definition_with_no_version_for_the_region_is_refused(
    compute: ComputeManagementClient,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    subscription_id: str,
) -> None:
    definition = gallery_image(subscription_id)
    control.publish_image(id=f"{definition}/versions/1.0.0")
    control.publish_image(id=f"{definition}/versions/1.1.0", targetRegions=["West Europe"])
    control.publish_image(id=f"{definition}/versions/1.2.0", excludeFromLatest=True)
    scale_set = scale_sets(location="eastus", image={"id": f"{definition}/versions/1.0.0"})
    other = gallery_image(subscription_id, "api")
    control.publish_image(id=f"{other}/versions/1.0.0", targetRegions=["West Europe"])

    body = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"id": other}}}}}
    with pytest.raises(HttpResponseError) as refused:
        await compute.virtual_machine_scale_sets.begin_update(scale_set.resource_group, scale_set.name, body)

    assert refused.value.status_code == 400
    assert refused.value.error.code == "InvalidParameter"
    assert "eastus" in refused.value.error.message and "exclude from latest" in refused.value.error.message
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert vmss.virtual_machine_profile.storage_profile.image_reference.id == f"{definition}/versions/1.0.0"


async def test_a_pinned_version_not_replicated_to_the_region_is_refused_as_gallery_image_not_found(
    compute: ComputeManagementClient,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    subscription_id: str,
) -> None:
    definition = gallery_image(subscription_id)
    control.publish_image(id=f"{definition}/versions/1.0.0")
    control.publish_image(id=f"{definition}/versions/1.1.0", targetRegions=["West Europe"])
    scale_set = scale_sets(image={"id": f"{definition}/versions/1.0.0"})

    body = {
        "properties": {
            "virtualMachineProfile": {"storageProfile": {"imageReference": {"id": f"{definition}/versions/1.1.0"}}}
        }
    }
    with pytest.raises(ResourceNotFoundError) as refused:
        await compute.virtual_machine_scale_sets.begin_update(scale_set.resource_group, scale_set.name, body)

    assert refused.value.error.code == "GalleryImageNotFound"
    assert "not available in eastus region" in refused.value.error.message


@pytest.mark.parametrize(
    ("version", "extra", "field"),
    [
        ("", {}, "id"),
        ("/versions/1.0.0", {"targetRegions": []}, "targetRegions"),
        ("/versions/1.0.0", {"targetRegions": [{"excludeFromLatest": True}]}, "targetRegions"),
        ("/versions/1.0.0", {"excludeFromLatest": "yes"}, "excludeFromLatest"),
    ],
    ids=["a-definition", "no-regions", "a-region-without-name", "exclude-not-a-boolean"],
)
def test_the_control_api_refuses_a_gallery_version_it_cannot_model_with_a_one_line_error(
    control: SimulatorControl, subscription_id: str, version: str, extra: dict[str, object], field: str
) -> None:
    with pytest.raises(SimulatorError) as refused:
        control.publish_image(id=f"{gallery_image(subscription_id)}{version}", **extra)

    assert refused.value.status == 400
    error = refused.value.body["error"]
    assert (error["code"], error["target"]) == ("InvalidParameter", field)
    assert "\n" not in error["message"]


def test_publishing_fields_of_a_gallery_version_are_refused_for_any_other_image(
    control: SimulatorControl, subscription_id: str
) -> None:
    managed = f"/subscriptions/{subscription_id}/resourceGroups/{IMAGE_GROUP}/providers/Microsoft.Compute/images/web"

    with pytest.raises(SimulatorError) as refused:
        control.publish_image(id=managed, excludeFromLatest=True)

    assert refused.value.status == 400
    assert "only a gallery image version" in refused.value.body["error"]["message"]
