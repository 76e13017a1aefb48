"""``AzureGateway.check_image``, the dry run's read-only check that an image exists, against the simulator: one read
per image (nothing written), quiet when Azure knows the image, ``ImageRejected`` (ImageNotFound) naming the image
and the region when it does not, for every kind of image the operator can write."""

from __future__ import annotations

from typing import Any

import pytest

from component.enginekit import gateway_on
from component.simkit import IMAGE_GROUP, JAMMY, JAMMY_VERSIONS, RESOURCE_GROUP, gallery_image
from scaleset_image_operator.azure.errors import ImageRejected
from scaleset_image_operator.core.images import Image, ImageKind
from scaleset_image_operator.core.spec import ScaleSetRef
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

SHARED = "/SharedGalleries/contoso-1a2b/Images/web/Versions/{version}"
COMMUNITY = "/CommunityGalleries/contoso-public-1a2b/Images/web/Versions/{version}"


def images(subscription_id: str, version: str, platform_version: str) -> dict[str, Image]:
    """One image of each kind at ``version`` (Ubuntu 22.04 at ``platform_version``), by the name of its kind."""
    managed = f"/subscriptions/{subscription_id}/resourceGroups/{IMAGE_GROUP}/providers/Microsoft.Compute/images"
    return {
        "platform": Image.platform(**JAMMY, version=platform_version),
        "gallery-version": Image.of(ImageKind.ID, f"{gallery_image(subscription_id)}/versions/{version}"),
        "managed": Image.of(ImageKind.ID, f"{managed}/web-{version}"),
        "shared": Image.of(ImageKind.SHARED_GALLERY, SHARED.format(version=version)),
        "community": Image.of(ImageKind.COMMUNITY_GALLERY, COMMUNITY.format(version=version)),
    }


KINDS = ["platform", "gallery-version", "managed", "shared", "community"]


@pytest.fixture
def published(control: SimulatorControl, subscription_id: str) -> dict[str, Image]:
    """Every kind of image at version 1.0.0, published (the platform one is Ubuntu 22.04's oldest version)."""
    known = images(subscription_id, "1.0.0", JAMMY_VERSIONS[0])
    for name, image in known.items():
        if name != "platform":
            control.publish_image(**{image.kind.value: image.ref})
    return known


def image_requests(control: SimulatorControl, subscription_id: str) -> list[dict[str, Any]]:
    """The ARM requests about images in the test's own subscription (its scale sets are never read here)."""
    return [
        e for e in control.audit(kind="request") if f"/subscriptions/{subscription_id}/".lower() in e["path"].lower()
    ]


REF = "vmss-any"
"""check_image reads only the image: the scale set it is checked for need not exist."""


@pytest.mark.parametrize("kind", KINDS)
async def test_an_image_azure_knows_passes_the_check_with_one_read_and_no_write(
    simulator: SimulatorThread,
    control: SimulatorControl,
    subscription_id: str,
    published: dict[str, Image],
    kind: str,
) -> None:
    async with gateway_on(simulator) as gateway:
        await gateway.check_image(ScaleSetRef(subscription_id, RESOURCE_GROUP, REF), published[kind], "eastus")

    sent = image_requests(control, subscription_id)
    assert [(e["method"], e["status"]) for e in sent] == [("GET", 200)]


@pytest.mark.parametrize("kind", KINDS)
async def test_an_image_azure_does_not_know_is_rejected_as_image_not_found_naming_it_and_the_region(
    simulator: SimulatorThread,
    control: SimulatorControl,
    subscription_id: str,
    published: dict[str, Image],
    kind: str,
) -> None:
    missing = images(subscription_id, "9.9.9", "22.04.209912310")[kind]

    async with gateway_on(simulator) as gateway:
        with pytest.raises(ImageRejected) as rejected:
            await gateway.check_image(ScaleSetRef(subscription_id, RESOURCE_GROUP, REF), missing, "eastus")

    assert rejected.value.reason == "ImageNotFound"
    assert missing.key() in rejected.value.message and "eastus" in rejected.value.message
    assert rejected.value.status == 404
    assert "\n" not in rejected.value.message


async def test_a_gallery_definition_is_checked_as_a_rollout_resolves_it(
    simulator: SimulatorThread,
    control: SimulatorControl,
    subscription_id: str,
) -> None:
    definition = gallery_image(subscription_id, "api")
    control.publish_image(id=f"{definition}/versions/1.0.0", targetRegions=["West Europe"])
    ref = ScaleSetRef(subscription_id, RESOURCE_GROUP, REF)

    async with gateway_on(simulator) as gateway:
        await gateway.check_image(ref, Image.of(ImageKind.ID, definition), "westeurope")
        with pytest.raises(ImageRejected) as rejected:
            await gateway.check_image(ref, Image.of(ImageKind.ID, definition), "eastus")

    assert rejected.value.reason == "ImageNotFound"
    assert definition in rejected.value.message and "eastus" in rejected.value.message


async def test_a_vhd_is_not_checked_through_arm(
    simulator: SimulatorThread, control: SimulatorControl, subscription_id: str
) -> None:
    vhd = Image.of(ImageKind.URI, "https://contoso.blob.core.windows.net/vhds/never-published.vhd")

    async with gateway_on(simulator) as gateway:
        await gateway.check_image(ScaleSetRef(subscription_id, RESOURCE_GROUP, REF), vhd, "eastus")

    assert image_requests(control, subscription_id) == []
