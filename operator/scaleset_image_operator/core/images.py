"""Images as the operator reasons about them: the five ways Azure names an OS image, compared the way
Azure compares them (names case-insensitively, versions exactly).

Pure values. ``Image.from_reference`` reads an ARM ``imageReference`` / ``osDisk.image`` shape (plain dicts);
``Image.model_patch`` writes the PATCH body fragment that changes only the image of a scale set's model;
``Image.source`` splits an image's id into the names the Compute read APIs take (``ImageSource``).

Two images *follow a source* rather than name one concrete image: a platform image at version ``latest`` and a
gallery image definition (``.../galleries/G/images/I`` without ``/versions/``), which Azure resolves to the
definition's newest version at each VM create. The operator resolves both itself and pins the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ImageKind(StrEnum):
    PLATFORM = "platform"
    ID = "id"
    SHARED_GALLERY = "sharedGalleryImageId"
    COMMUNITY_GALLERY = "communityGalleryImageId"
    URI = "uri"


REFERENCE_KINDS = (ImageKind.ID, ImageKind.SHARED_GALLERY, ImageKind.COMMUNITY_GALLERY)

_NAME = r"[^/]+"
_GALLERY_ID = re.compile(
    rf"^/subscriptions/(?P<subscription>{_NAME})/resourceGroups/(?P<group>{_NAME})/providers/Microsoft\.Compute"
    rf"/galleries/(?P<gallery>{_NAME})/images/(?P<image>{_NAME})(?:/versions/(?P<version>{_NAME}))?$",
    re.IGNORECASE,
)
_MANAGED_ID = re.compile(
    rf"^/subscriptions/(?P<subscription>{_NAME})/resourceGroups/(?P<group>{_NAME})/providers/Microsoft\.Compute"
    rf"/images/(?P<image>{_NAME})$",
    re.IGNORECASE,
)
_SHARED_ID = re.compile(
    rf"^/(?:Shared|Community)Galleries/(?P<gallery>{_NAME})/Images/(?P<image>{_NAME})(?:/Versions/(?P<version>{_NAME}))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ImageSource:
    """Where an image lives, in the names the Compute read APIs take. ``form`` is one of ``gallery`` (an Azure
    Compute Gallery image: a version, or the definition when ``version`` is empty), ``managed`` (a managed image;
    ``image`` is its name), ``shared`` or ``community`` (a gallery shared directly or to the community:
    ``gallery`` is its unique or public name, ``subscription`` and ``group`` are empty)."""

    form: str
    subscription: str
    group: str
    gallery: str
    image: str
    version: str = ""


@dataclass(frozen=True)
class Image:
    """One OS image. Platform images use publisher/offer/sku/version; the others use ``ref``."""

    kind: ImageKind
    publisher: str = ""
    offer: str = ""
    sku: str = ""
    version: str = ""
    ref: str = ""

    @classmethod
    def platform(cls, publisher: str, offer: str, sku: str, version: str) -> Image:
        return cls(ImageKind.PLATFORM, publisher=publisher, offer=offer, sku=sku, version=version)

    @classmethod
    def of(cls, kind: ImageKind, ref: str) -> Image:
        if kind is ImageKind.PLATFORM:
            raise ValueError("platform images are made with Image.platform")
        return cls(kind, ref=ref)

    @property
    def is_latest(self) -> bool:
        return self.kind is ImageKind.PLATFORM and self.version.lower() == "latest"

    @property
    def source(self) -> ImageSource | None:
        """The gallery, managed image or shared/community gallery this image is in (None for platform and VHD
        images, and for an id of no shape Azure knows)."""
        ref = self.ref.rstrip("/")
        if self.kind is ImageKind.ID:
            gallery = _GALLERY_ID.match(ref)
            if gallery:
                return ImageSource(
                    "gallery",
                    gallery["subscription"],
                    gallery["group"],
                    gallery["gallery"],
                    gallery["image"],
                    gallery["version"] or "",
                )
            managed = _MANAGED_ID.match(ref)
            if managed:
                return ImageSource("managed", managed["subscription"], managed["group"], "", managed["image"])
            return None
        if self.kind in (ImageKind.SHARED_GALLERY, ImageKind.COMMUNITY_GALLERY):
            shared = _SHARED_ID.match(ref)
            form = "shared" if self.kind is ImageKind.SHARED_GALLERY else "community"
            if shared and ref.lower().startswith(f"/{form}galleries/"):
                return ImageSource(form, "", "", shared["gallery"], shared["image"], shared["version"] or "")
        return None

    @property
    def is_gallery_definition(self) -> bool:
        """A gallery image definition's id (no ``/versions/``): Azure takes its newest version at VM create."""
        source = self.source
        return source is not None and source.form == "gallery" and not source.version

    @property
    def follows_source(self) -> bool:
        """Whether the image Azure would deploy from this one can change without anyone changing the model:
        ``latest`` of a platform image, or a gallery image definition. Such an image is resolved on every check."""
        return self.is_latest or self.is_gallery_definition

    def key(self) -> str:
        """How people write it: ``publisher:offer:sku:version``, or the id / URI."""
        if self.kind is ImageKind.PLATFORM:
            return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"
        return self.ref

    def _normal(self) -> tuple[str, ...]:
        if self.kind is ImageKind.PLATFORM:
            return (self.kind, self.publisher.lower(), self.offer.lower(), self.sku.lower(), self.version)
        ref = self.ref.rstrip("/")
        return (self.kind, ref if self.kind is ImageKind.URI else ref.lower())

    def same_as(self, other: Image | None) -> bool:
        return other is not None and self._normal() == other._normal()

    def with_version(self, version: str) -> Image:
        """The same platform image at ``version``, or the version ``version`` of a gallery image definition."""
        if self.is_gallery_definition:
            return Image.of(ImageKind.ID, f"{self.ref.rstrip('/')}/versions/{version}")
        return Image.platform(self.publisher, self.offer, self.sku, version)

    def same_family(self, other: Image) -> bool:
        """Whether Azure lets a model move from ``other`` to this image in place: the same publisher and offer
        for platform images; never between a platform image and a custom one (managed, gallery: "The Image type
        for a Virtual Machine Scale Set may not be changed"), nor between a managed reference and a legacy VHD."""
        if (self.kind is ImageKind.URI) != (other.kind is ImageKind.URI):
            return False
        if (self.kind is ImageKind.PLATFORM) != (other.kind is ImageKind.PLATFORM):
            return False
        if self.kind is ImageKind.PLATFORM and other.kind is ImageKind.PLATFORM:
            return (self.publisher.lower(), self.offer.lower()) == (other.publisher.lower(), other.offer.lower())
        return True

    @classmethod
    def from_reference(
        cls, image_reference: dict[str, Any] | None, os_disk_image: dict[str, Any] | None, *, exact: bool = False
    ) -> Image | None:
        """The image an ARM storage profile names. With ``exact``, a platform image's ``exactVersion``
        (what an instance actually runs) wins over its ``version`` (what the model asked for)."""
        if os_disk_image and os_disk_image.get("uri"):
            return cls.of(ImageKind.URI, str(os_disk_image["uri"]))
        ref = image_reference or {}
        for kind in REFERENCE_KINDS:
            if ref.get(kind.value):
                return cls.of(kind, str(ref[kind.value]))
        if ref.get("publisher") and ref.get("offer") and ref.get("sku"):
            version = str((ref.get("exactVersion") if exact else None) or ref.get("version") or "")
            return cls.platform(str(ref["publisher"]), str(ref["offer"]), str(ref["sku"]), version)
        return None

    def model_patch(self) -> dict[str, Any]:
        """The ``virtualMachineProfile.storageProfile`` fragment of a PATCH that sets this image and clears the
        fields of every other image style (null removes a field in ARM PATCH)."""
        if self.kind is ImageKind.URI:
            return {"osDisk": {"image": {"uri": self.ref}}}
        reference: dict[str, Any] = {
            "publisher": None,
            "offer": None,
            "sku": None,
            "version": None,
            **{kind.value: None for kind in REFERENCE_KINDS},
        }
        if self.kind is ImageKind.PLATFORM:
            reference.update(publisher=self.publisher, offer=self.offer, sku=self.sku, version=self.version)
        else:
            reference[self.kind.value] = self.ref
        return {"imageReference": reference}

    @classmethod
    def parse_key(cls, text: str) -> Image | None:
        """Read back what ``key`` wrote (for images remembered in status)."""
        if not text:
            return None
        lowered = text.lower()
        if lowered.startswith(("http://", "https://")):
            return cls.of(ImageKind.URI, text)
        if lowered.startswith("/sharedgalleries/"):
            return cls.of(ImageKind.SHARED_GALLERY, text)
        if lowered.startswith("/communitygalleries/"):
            return cls.of(ImageKind.COMMUNITY_GALLERY, text)
        if lowered.startswith("/subscriptions/"):
            return cls.of(ImageKind.ID, text)
        parts = text.split(":")
        if len(parts) == 4 and all(parts):
            return cls.platform(*parts)
        return None
