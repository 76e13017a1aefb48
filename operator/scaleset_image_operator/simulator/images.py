"""The images the simulated Azure knows: platform (marketplace) versions, managed images, Azure Compute Gallery
image versions (with their publishing profile), shared and community gallery ids, and legacy VHD URIs.

An image a scale set's model names must be published here, or the write fails the way Azure fails it.
``latest`` resolves to the newest published platform version; a gallery image definition's id resolves to the
definition's latest version in the scale set's region: the highest version number that is replicated there and
not excluded from latest (docs/simulator.md, "Gallery image versions and definitions").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
_GALLERY_IMAGE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+/images/[^/]+"
    r"(?:/versions/[^/]+)?$",
    re.IGNORECASE,
)
DEFAULT_REGION = "East US"
"""Where a gallery image version published without ``targetRegions`` is replicated: the simulator's default
location (``eastus``), as a version is always replicated at least to its gallery's region."""


def region_key(name: str) -> str:
    """A region name as Azure compares it: "West Europe", "westeurope" and "WestEurope" are one region."""
    return name.replace(" ", "").lower()


@dataclass(frozen=True)
class TargetRegion:
    """One entry of a gallery image version's ``publishingProfile.targetRegions``."""

    name: str
    exclude_from_latest: bool = False


@dataclass(frozen=True)
class GalleryVersion:
    """An Azure Compute Gallery image version and the parts of its publishing profile that decide where it can be
    deployed and whether a definition's "latest" may pick it."""

    id: str
    target_regions: tuple[TargetRegion, ...] = (TargetRegion(DEFAULT_REGION),)
    exclude_from_latest: bool = False
    published_date: str = ""

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[1]

    def region(self, location: str) -> TargetRegion | None:
        wanted = region_key(location)
        return next((r for r in self.target_regions if region_key(r.name) == wanted), None)

    def latest_candidate(self, location: str) -> bool:
        """Whether a VM created in ``location`` from the definition (no version) may get this version."""
        region = self.region(location)
        return region is not None and not region.exclude_from_latest and not self.exclude_from_latest

    @classmethod
    def from_body(cls, image_id: str, body: dict[str, Any], published_date: str) -> GalleryVersion:
        """From the control API's ``{id, targetRegions, excludeFromLatest, publishedDate}``."""
        raw_regions = body.get("targetRegions")
        regions: list[TargetRegion] = []
        if raw_regions is not None:
            if not isinstance(raw_regions, list) or not raw_regions:
                raise invalid_parameter("'targetRegions' must be a non-empty list of regions.", "targetRegions")
            for entry in raw_regions:
                if isinstance(entry, str) and entry.strip():
                    regions.append(TargetRegion(entry))
                elif isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"].strip():
                    exclude = entry.get("excludeFromLatest", False)
                    if not isinstance(exclude, bool):
                        raise invalid_parameter("'excludeFromLatest' must be true or false.", "targetRegions")
                    regions.append(TargetRegion(entry["name"], exclude))
                else:
                    raise invalid_parameter(
                        "Each of 'targetRegions' must be a region name or {name, excludeFromLatest}.", "targetRegions"
                    )
        exclude = body.get("excludeFromLatest", False)
        if not isinstance(exclude, bool):
            raise invalid_parameter("'excludeFromLatest' must be true or false.", "excludeFromLatest")
        published = body.get("publishedDate", published_date)
        if not isinstance(published, str):
            raise invalid_parameter("'publishedDate' must be an ISO 8601 date-time string.", "publishedDate")
        return cls(image_id, tuple(regions) or (TargetRegion(DEFAULT_REGION),), exclude, published)


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
    """Managed image ids, by their lowercase spelling (gallery image versions are in ``gallery``)."""
    gallery: dict[str, GalleryVersion] = field(default_factory=dict)
    """Gallery image versions, by their lowercase id."""
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

    def publish(self, body: dict[str, Any], now: str | None = None) -> None:
        """``POST /_sim/images``. ``now`` is the default ``publishedDate`` of a gallery image version."""
        gallery_fields = sorted({"targetRegions", "excludeFromLatest", "publishedDate"} & body.keys())
        image_id = str(body.get("id") or "")
        if image_id and _GALLERY_IMAGE.match(image_id.rstrip("/")):
            if not _GALLERY_VERSION.match(image_id.rstrip("/")):
                raise invalid_parameter(
                    "A gallery image definition has no image of its own: publish its versions "
                    "(.../images/<image>/versions/<version>).",
                    "id",
                )
            stamp = now or datetime.now(UTC).isoformat()
            version = GalleryVersion.from_body(image_id.rstrip("/"), body, stamp)
            self.gallery[version.id.lower()] = version
            return
        if gallery_fields:
            raise invalid_parameter(
                f"{', '.join(gallery_fields)}: only a gallery image version (an id .../galleries/.../versions/...) "
                "has them.",
                gallery_fields[0],
            )
        if body.get("publisher"):
            versions = body.get("versions") or ([body["version"]] if body.get("version") else [])
            if not versions or not body.get("offer") or not body.get("sku"):
                raise invalid_parameter("A platform image needs publisher, offer, sku and versions.")
            for name in ("publisher", "offer", "sku"):
                if not isinstance(body[name], str):
                    raise invalid_parameter(f"'{name}' must be a string, not {body[name]!r}.", name)
            if not isinstance(versions, list | tuple) or not all(isinstance(v, str) for v in versions):
                # YAML reads 1.0 as a number: versions are strings, as Azure names them ("1.0.0").
                raise invalid_parameter(f"'versions' must be a list of strings, not {versions!r}.", "versions")
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

    def publish_reference(
        self, image_reference: dict[str, Any] | None, os_disk: dict[str, Any] | None, location: str = DEFAULT_REGION
    ) -> None:
        """Publish whatever a scale set created through the control API starts from (a gallery image version not
        published yet is replicated to the scale set's ``location``; a definition needs a version published)."""
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
        value = str(ref[kind])
        if kind == MANAGED and _GALLERY_IMAGE.match(value.rstrip("/")):
            if _GALLERY_VERSION.match(value.rstrip("/")):
                if value.rstrip("/").lower() not in self.gallery:
                    self.publish({"id": value, "targetRegions": [location]})
                return
            self._resolve_id(value, location)
            return
        self.publish({kind: value})

    def publishers(self) -> list[str]:
        """Every publisher with a published platform image, as first spelled, in alphabetical order."""
        return self._names(lambda key: True, 0)

    def offers(self, publisher: str) -> list[str]:
        return self._names(lambda key: key[0] == publisher.lower(), 1)

    def skus(self, publisher: str, offer: str) -> list[str]:
        return self._names(lambda key: key[:2] == (publisher.lower(), offer.lower()), 2)

    def _names(self, wanted: Callable[[tuple[str, str, str]], bool], part: int) -> list[str]:
        names = {
            key[part]: self.platform_names[key][part] for key in self.platform if wanted(key) and self.platform[key]
        }
        return [names[key] for key in sorted(names)]

    def platform_versions(self, publisher: str, offer: str, sku: str) -> list[str]:
        known = self.platform.get((publisher.lower(), offer.lower(), sku.lower()), {})
        return sorted(known.values(), key=version_key)

    def gallery_versions(self, image_definition_id: str) -> list[GalleryVersion]:
        """Every published version of a gallery image definition, lowest version number first."""
        prefix = image_definition_id.rstrip("/").lower() + "/versions/"
        versions = [version for key, version in self.gallery.items() if key.startswith(prefix)]
        return sorted(versions, key=lambda version: version_key(version.name))

    def gallery_version(self, version_id: str) -> GalleryVersion | None:
        return self.gallery.get(version_id.rstrip("/").lower())

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
        version = self.gallery_version(image_id)
        if version is not None and version.region(location) is not None:
            return image_id
        if is_gallery and not _GALLERY_VERSION.match(image_id.rstrip("/")):
            versions = self.gallery_versions(image_id)
            candidates = [v for v in versions if v.latest_candidate(location)]
            if candidates:
                return f"{image_id.rstrip('/')}/versions/{candidates[-1].name}"
            if versions:
                raise invalid_parameter(
                    f"In region {location}, the following list of Shared Image Gallery images referenced from the "
                    f"deployment template were not found: {image_id}. Please check that at least one image has been "
                    f"replicated to {location} or that the 'exclude from latest' flag is set to false. Please refer "
                    "to https://docs.microsoft.com/en-us/azure/virtual-machines/windows/shared-image-galleries for "
                    "instructions on creating and deleting such images.",
                    target="imageReference",
                )
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
