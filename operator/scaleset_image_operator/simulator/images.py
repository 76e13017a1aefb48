"""The images the simulated Azure knows: platform (marketplace) versions, managed and gallery image ids,
shared and community gallery ids, and legacy VHD URIs.

An image a scale set's model names must be published here, or the write fails the way Azure fails it.
``latest`` resolves to the newest published platform version (or newest version of a gallery image).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ArmError, invalid_parameter

PLATFORM = "platform"
MANAGED = "id"
SHARED = "sharedGalleryImageId"
COMMUNITY = "communityGalleryImageId"
VHD = "uri"

DEFAULT_PLATFORM_IMAGES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "Canonical",
        "0001-com-ubuntu-server-jammy",
        "22_04-lts-gen2",
        ("22.04.202409110", "22.04.202410020", "22.04.202411010"),
    ),
    ("Canonical", "ubuntu-24_04-lts", "server", ("24.04.202410010", "24.04.202411030")),
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter-azure-edition",
        ("20348.2700.241004", "20348.2762.241105"),
    ),
)

_GALLERY_VERSION = re.compile(r"^(?P<image>.+/images/[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Order image versions as Azure does: dot-separated parts compared numerically where numeric."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in version.split("."))


def image_kind(image_reference: dict[str, Any] | None, os_disk: dict[str, Any] | None) -> str:
    """Which of the five ways of naming an image a storage profile uses."""
    if os_disk and isinstance(os_disk.get("image"), dict) and os_disk["image"].get("uri"):
        return VHD
    ref = image_reference or {}
    for kind in (MANAGED, SHARED, COMMUNITY):
        if ref.get(kind):
            return kind
    if ref.get("publisher") or ref.get("offer") or ref.get("sku"):
        return PLATFORM
    raise invalid_parameter("Required parameter 'imageReference' is missing (null).", target="imageReference")


def describe(image_reference: dict[str, Any] | None, os_disk: dict[str, Any] | None) -> str:
    """A one-line name of an image, as people write it (``publisher:offer:sku:version`` or the id)."""
    kind = image_kind(image_reference, os_disk)
    if kind == VHD:
        return str((os_disk or {})["image"]["uri"])
    ref = image_reference or {}
    if kind == PLATFORM:
        version = ref.get("exactVersion") or ref.get("version") or ""
        return f"{ref.get('publisher')}:{ref.get('offer')}:{ref.get('sku')}:{version}"
    return str(ref[kind])


@dataclass
class ImageCatalog:
    platform: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    platform_names: dict[tuple[str, str, str], tuple[str, str, str]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    community: dict[str, str] = field(default_factory=dict)
    uris: dict[str, str] = field(default_factory=dict)

    @classmethod
    def with_defaults(cls) -> ImageCatalog:
        catalog = cls()
        for publisher, offer, sku, versions in DEFAULT_PLATFORM_IMAGES:
            catalog.publish_platform(publisher, offer, sku, versions)
        return catalog

    def publish_platform(self, publisher: str, offer: str, sku: str, versions: list[str] | tuple[str, ...]) -> None:
        key = (publisher.lower(), offer.lower(), sku.lower())
        self.platform_names.setdefault(key, (publisher, offer, sku))
        known = self.platform.setdefault(key, {})
        for version in versions:
            if version.lower() == "latest" or not version:
                raise invalid_parameter("A published version must be concrete, not 'latest'.", "versions")
            known[version.lower()] = version

    def publish(self, body: dict[str, Any]) -> None:
        if body.get("publisher"):
            versions = body.get("versions") or ([body["version"]] if body.get("version") else [])
            if not versions or not body.get("offer") or not body.get("sku"):
                raise invalid_parameter("A platform image needs publisher, offer, sku and versions.")
            self.publish_platform(body["publisher"], body["offer"], body["sku"], list(versions))
            return
        for kind, table in ((MANAGED, self.ids), (SHARED, self.shared), (COMMUNITY, self.community), (VHD, self.uris)):
            value = body.get(kind)
            if value:
                table[str(value).lower()] = str(value)
                return
        raise invalid_parameter(
            "An image needs publisher/offer/sku/versions, id, sharedGalleryImageId, communityGalleryImageId or uri."
        )

    def publish_reference(self, image_reference: dict[str, Any] | None, os_disk: dict[str, Any] | None) -> None:
        """Publish whatever a scale set created through the control API starts from."""
        kind = image_kind(image_reference, os_disk)
        if kind == VHD:
            self.publish({"uri": (os_disk or {})["image"]["uri"]})
            return
        ref = dict(image_reference or {})
        if kind == PLATFORM:
            if str(ref.get("version", "")).lower() in ("", "latest"):
                key = (str(ref["publisher"]).lower(), str(ref["offer"]).lower(), str(ref["sku"]).lower())
                if self.platform.get(key):
                    return
                raise invalid_parameter("A new platform image needs a concrete version to be published.")
            self.publish_platform(ref["publisher"], ref["offer"], ref["sku"], [ref["version"]])
            return
        self.publish({kind: ref[kind]})

    def platform_versions(self, publisher: str, offer: str, sku: str) -> list[str]:
        known = self.platform.get((publisher.lower(), offer.lower(), sku.lower()), {})
        return sorted(known.values(), key=version_key)

    def gallery_versions(self, image_definition_id: str) -> list[str]:
        prefix = image_definition_id.rstrip("/").lower() + "/versions/"
        names = [value.rsplit("/", 1)[1] for key, value in self.ids.items() if key.startswith(prefix)]
        return sorted(names, key=version_key)

    def resolve(
        self, image_reference: dict[str, Any] | None, os_disk: dict[str, Any] | None, location: str
    ) -> dict[str, Any]:
        """The image an instance built from this profile gets: a copy with ``exactVersion`` where
        Azure reports one. Raises the error Azure answers when the image is unknown."""
        kind = image_kind(image_reference, os_disk)
        ref = dict(image_reference or {})
        if kind == VHD:
            uri = str((os_disk or {})["image"]["uri"])
            if uri.lower() not in self.uris:
                raise invalid_parameter(
                    f"Unable to find VHD blob with URI {uri} for disk 'osdisk'.", target="osDisk.image.uri"
                )
            return {"uri": uri}
        if kind == PLATFORM:
            publisher, offer, sku = (str(ref.get(k, "")) for k in ("publisher", "offer", "sku"))
            version = str(ref.get("version") or "")
            versions = self.platform_versions(publisher, offer, sku)
            if version.lower() == "latest" and versions:
                exact = versions[-1]
            elif version.lower() in {v.lower() for v in versions}:
                exact = next(v for v in versions if v.lower() == version.lower())
            else:
                raise ArmError(
                    404,
                    "PlatformImageNotFound",
                    f"The platform image '{publisher}:{offer}:{sku}:{version}' is not available. Verify that "
                    "all fields in the storage profile are correct. For more details about storage profile "
                    "information, please refer to https://aka.ms/storageprofile",
                    target="imageReference",
                )
            ref.pop("exactVersion", None)
            return {**ref, "exactVersion": exact}
        value = str(ref[kind])
        if kind == MANAGED:
            return {"id": self._resolve_id(value, location)}
        table = self.shared if kind == SHARED else self.community
        if value.lower() not in table:
            raise ArmError(
                404,
                "GalleryImageNotFound",
                f"The gallery image {value} is not available in {location} region. Please contact image owner "
                f"to replicate to this region, or change your requested region.",
                target="imageReference",
            )
        return {kind: value}

    def _resolve_id(self, image_id: str, location: str) -> str:
        if image_id.lower() in self.ids:
            return image_id
        is_gallery = "/galleries/" in image_id.lower()
        if is_gallery and not _GALLERY_VERSION.match(image_id):
            versions = self.gallery_versions(image_id)
            if versions:
                return f"{image_id.rstrip('/')}/versions/{versions[-1]}"
        if is_gallery:
            raise ArmError(
                404,
                "GalleryImageNotFound",
                f"The gallery image {image_id} is not available in {location} region. Please contact image "
                f"owner to replicate to this region, or change your requested region.",
                target="imageReference",
            )
        raise ArmError(
            404,
            "ImageNotFound",
            f"The Image '{image_id}' cannot be found in '{location}' region.",
            target="imageReference",
        )
