"""Images as the operator reasons about them: the five ways Azure names an OS image, compared the way
Azure compares them (names case-insensitively, versions exactly).

Pure values. ``Image.from_reference`` reads an ARM ``imageReference`` / ``osDisk.image`` shape (plain dicts);
``Image.model_patch`` writes the PATCH body fragment that changes only the image of a scale set's model.
"""

from __future__ import annotations

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
        return Image.platform(self.publisher, self.offer, self.sku, version)

    def same_family(self, other: Image) -> bool:
        """Whether Azure lets a model move from ``other`` to this image in place (same publisher and offer
        for platform images; never between a managed reference and a legacy VHD)."""
        if (self.kind is ImageKind.URI) != (other.kind is ImageKind.URI):
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
