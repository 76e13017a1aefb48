"""Changing a scale set's model: PATCH with etags, images Azure knows and image changes Azure refuses."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.core.pipeline import PipelineResponse
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import (
    JAMMY,
    JAMMY_VERSIONS,
    NOBLE,
    NOBLE_VERSIONS,
    ScaleSet,
    all_vms_eventually,
    exact_version,
    gallery_image,
    image_patch,
    jammy,
    list_vms,
)


async def patch_image(
    compute: ComputeManagementClient, scale_set: ScaleSet, image_reference: dict[str, str], etag: str | None
) -> Any:
    poller = await compute.virtual_machine_scale_sets.begin_update(
        scale_set.resource_group,
        scale_set.name,
        image_patch(image_reference),
        etag=etag,
        match_condition=MatchConditions.IfNotModified if etag else None,
    )
    return await poller.result()


def publish_private_image(control, versions: list[str]) -> dict[str, str]:
    """Publishes an image no other test uses, so publishing more versions of it later affects no one."""
    image = {"publisher": "ComponentTests", "offer": f"offer-{uuid.uuid4().hex[:8]}", "sku": "server"}
    control.publish_image(**image, versions=versions)
    return image


async def test_a_patch_answers_updating_then_completes_with_a_new_etag(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    before = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    responses: list[PipelineResponse] = []

    poller = await compute.virtual_machine_scale_sets.begin_update(
        scale_set.resource_group,
        scale_set.name,
        image_patch(jammy(JAMMY_VERSIONS[2])),
        etag=before.etag,
        match_condition=MatchConditions.IfNotModified,
        raw_response_hook=responses.append,
    )
    after = await poller.result()

    initial = responses[0].http_response
    assert initial.status_code == 200
    assert initial.json()["properties"]["provisioningState"] == "Updating"
    assert initial.headers["Azure-AsyncOperation"].startswith("https://")
    assert after.properties.provisioning_state == "Succeeded"
    assert after.etag != before.etag
    assert int(after.etag.strip('"')) > int(before.etag.strip('"'))
    image = after.properties.virtual_machine_profile.storage_profile.image_reference
    assert image.version == JAMMY_VERSIONS[2]


async def test_a_model_change_leaves_every_instance_off_the_latest_model_under_manual_policy(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    await patch_image(compute, scale_set, jammy(JAMMY_VERSIONS[1]), etag=None)

    vms = await list_vms(compute, scale_set)

    assert [vm.properties.latest_model_applied for vm in vms] == [False] * scale_set.capacity
    assert {vm.properties.storage_profile.image_reference.version for vm in vms} == {JAMMY_VERSIONS[0]}


async def test_a_stale_etag_is_refused_with_412(compute: ComputeManagementClient, scale_set: ScaleSet) -> None:
    stale = (await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)).etag
    await patch_image(compute, scale_set, jammy(JAMMY_VERSIONS[1]), etag=stale)

    with pytest.raises(ResourceModifiedError) as refused:
        await patch_image(compute, scale_set, jammy(JAMMY_VERSIONS[2]), etag=stale)

    assert refused.value.status_code == 412
    assert refused.value.error.code == "PreconditionFailed"
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert vmss.properties.virtual_machine_profile.storage_profile.image_reference.version == JAMMY_VERSIONS[1]


async def test_instances_filtered_on_latest_model_applied_are_the_ones_not_yet_upgraded(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    await patch_image(compute, scale_set, jammy(JAMMY_VERSIONS[1]), etag=None)
    poller = await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["1", "3"]}
    )
    await poller.result()

    behind = await list_vms(compute, scale_set, filter="properties/latestModelApplied eq false")
    current = await list_vms(compute, scale_set, filter="properties/latestModelApplied eq true")

    assert [vm.instance_id for vm in behind] == ["0", "2", "4"]
    assert [vm.instance_id for vm in current] == ["1", "3"]


OTHER_PUBLISHER = {"publisher": "ComponentTests", "offer": JAMMY["offer"], "sku": JAMMY["sku"]}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({**NOBLE, "version": NOBLE_VERSIONS[0]}, id="another offer"),
        pytest.param({**OTHER_PUBLISHER, "version": "22.04.1"}, id="another publisher"),
    ],
)
async def test_a_change_of_publisher_or_offer_is_refused_with_409_and_leaves_the_model_alone(
    compute: ComputeManagementClient, control, scale_set: ScaleSet, change: dict[str, str]
) -> None:
    control.publish_image(**OTHER_PUBLISHER, versions=["22.04.1"])
    before = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    with pytest.raises(ResourceExistsError) as refused:
        await patch_image(compute, scale_set, change, etag=before.etag)

    assert refused.value.status_code == 409
    assert refused.value.error.code == "PropertyChangeNotAllowed"
    after = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert after.etag == before.etag
    image = after.properties.virtual_machine_profile.storage_profile.image_reference
    assert (image.publisher, image.offer, image.version) == (JAMMY["publisher"], JAMMY["offer"], JAMMY_VERSIONS[0])


async def test_a_change_from_a_platform_image_to_a_gallery_image_is_refused_as_an_image_type_change(
    compute: ComputeManagementClient, control, scale_set: ScaleSet, subscription_id: str
) -> None:
    version = f"{gallery_image(subscription_id)}/versions/1.0.0"
    control.publish_image(id=version)
    before = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    gallery = {"publisher": None, "offer": None, "sku": None, "version": None, "id": version}

    with pytest.raises(ResourceExistsError) as refused:
        await patch_image(compute, scale_set, gallery, etag=before.etag)  # type: ignore[arg-type]

    assert (refused.value.status_code, refused.value.error.code) == (409, "OperationNotAllowed")
    assert "Image type" in refused.value.error.message
    after = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert after.etag == before.etag


async def test_a_version_never_published_is_refused_with_404_platform_image_not_found(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    before = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    with pytest.raises(ResourceNotFoundError) as refused:
        await patch_image(compute, scale_set, jammy("22.04.209912310"), etag=before.etag)

    assert refused.value.error.code == "PlatformImageNotFound"
    assert refused.value.error.target == "imageReference"
    after = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert after.etag == before.etag
    assert after.properties.virtual_machine_profile.storage_profile.image_reference.version == JAMMY_VERSIONS[0]
    assert all(vm.properties.latest_model_applied for vm in await list_vms(compute, scale_set))


async def test_the_published_versions_of_an_image_are_listed_oldest_first(
    compute: ComputeManagementClient,
) -> None:
    versions = await compute.virtual_machine_images.list("eastus", JAMMY["publisher"], JAMMY["offer"], JAMMY["sku"])

    assert [v.name for v in versions][:3] == list(JAMMY_VERSIONS)
    assert all(v.location == "eastus" for v in versions)
    assert all(v.id for v in versions)


async def test_the_newest_version_is_the_first_when_ordered_by_name_descending(
    compute: ComputeManagementClient, control
) -> None:
    image = publish_private_image(control, ["1.0.1", "1.0.9", "1.0.10"])

    newest = await compute.virtual_machine_images.list(
        "eastus", image["publisher"], image["offer"], image["sku"], top=1, orderby="name desc"
    )

    assert [v.name for v in newest] == ["1.0.10"]


async def test_a_scale_set_on_latest_gives_its_instances_the_newest_exact_version(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    image = publish_private_image(control, ["1.0.0", "1.1.0"])
    scale_set = scale_sets(image={**image, "version": "latest"})

    vms = await list_vms(compute, scale_set)

    assert {vm.properties.storage_profile.image_reference.version for vm in vms} == {"latest"}
    assert {exact_version(vm) for vm in vms} == {"1.1.0"}


async def test_upgrading_to_latest_resolves_the_version_published_most_recently(
    compute: ComputeManagementClient, control, scale_sets
) -> None:
    image = publish_private_image(control, ["1.0.0"])
    scale_set = scale_sets(capacity=3, image={**image, "version": "1.0.0"})
    control.publish_image(**image, versions=["1.0.0", "1.2.0"])
    listed = await compute.virtual_machine_images.list("eastus", image["publisher"], image["offer"], image["sku"])
    newest = listed[-1].name

    await patch_image(compute, scale_set, {**image, "version": "latest"}, etag=None)
    poller = await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["0", "1", "2"]}
    )
    await poller.result()

    vms = await all_vms_eventually(compute, scale_set, lambda vm: vm.properties.latest_model_applied)
    assert newest == "1.2.0"
    assert {exact_version(vm) for vm in vms} == {"1.2.0"}


async def test_a_scale_set_created_with_put_is_creating_then_succeeded(
    compute: ComputeManagementClient, unique_name
) -> None:
    name = unique_name("vmss")
    responses: list[PipelineResponse] = []
    body = {
        "location": "eastus",
        "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": 2},
        "properties": {
            "orchestrationMode": "Uniform",
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "storageProfile": {
                    "imageReference": jammy(),
                    "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"}},
                },
                "osProfile": {"computerNamePrefix": "node", "adminUsername": "azureuser"},
            },
        },
    }

    poller = await compute.virtual_machine_scale_sets.begin_create_or_update(
        "rg-component-tests", name, body, raw_response_hook=responses.append
    )
    created = await asyncio.wait_for(poller.result(), timeout=15)  # 60 simulated seconds of creation

    assert responses[0].http_response.status_code == 201
    assert responses[0].http_response.json()["properties"]["provisioningState"] == "Creating"
    assert created.properties.provisioning_state == "Succeeded"
    assert created.sku.capacity == 2


def gallery_version_id(subscription_id: str, version: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/"
        f"gallery/images/node/versions/{version}"
    )


async def test_a_scale_set_moves_between_published_gallery_image_versions(
    compute: ComputeManagementClient, control, scale_sets, subscription_id: str
) -> None:
    old, new = gallery_version_id(subscription_id, "1.0.0"), gallery_version_id(subscription_id, "1.0.1")
    control.publish_image(id=old)
    control.publish_image(id=new)
    scale_set = scale_sets(capacity=2, image={"id": old})

    await patch_image(compute, scale_set, {"id": new}, etag=None)
    await (
        await compute.virtual_machine_scale_sets.begin_update_instances(
            scale_set.resource_group, scale_set.name, {"instanceIds": ["0", "1"]}
        )
    ).result()

    vms = await list_vms(compute, scale_set)
    assert {vm.properties.storage_profile.image_reference.id.lower() for vm in vms} == {new.lower()}
    published = await compute.gallery_image_versions.get("rg-images", "gallery", "node", "1.0.1")
    assert published.name == "1.0.1"


async def test_a_gallery_image_version_never_published_is_refused_with_404_gallery_image_not_found(
    compute: ComputeManagementClient, control, scale_sets, subscription_id: str
) -> None:
    control.publish_image(id=gallery_version_id(subscription_id, "1.0.0"))
    scale_set = scale_sets(image={"id": gallery_version_id(subscription_id, "1.0.0")})

    with pytest.raises(ResourceNotFoundError) as refused:
        await patch_image(compute, scale_set, {"id": gallery_version_id(subscription_id, "9.9.9")}, etag=None)

    assert refused.value.error.code == "GalleryImageNotFound"


async def test_a_managed_image_never_published_is_refused_with_404_image_not_found(
    compute: ComputeManagementClient, control, scale_sets, subscription_id: str
) -> None:
    images = f"/subscriptions/{subscription_id}/resourceGroups/rg-images/providers/Microsoft.Compute/images"
    control.publish_image(id=f"{images}/node-v1")
    scale_set = scale_sets(image={"id": f"{images}/node-v1"})

    with pytest.raises(ResourceNotFoundError) as refused:
        await patch_image(compute, scale_set, {"id": f"{images}/node-v2"}, etag=None)

    assert refused.value.error.code == "ImageNotFound"
    image = await compute.images.get("rg-images", "node-v1")
    assert image.name == "node-v1"
