"""What the reconciler needs from the outside world, as Protocols (docs/architecture.md, "Layers").

The Azure adapter implements ``ScaleSetGateway``; tests may pass any object with the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .core.images import Image
from .core.observation import OperationView, ScaleSetView
from .core.spec import ScaleSetRef


@dataclass(frozen=True)
class Observation:
    scale_set: ScaleSetView
    operation: OperationView | None


class ScaleSetGateway(Protocol):
    async def observe(self, ref: ScaleSetRef, operation_url: str | None) -> Observation:
        """The scale set's model and every instance (one VM list), and the operation's state if one is given."""
        ...

    async def model_etag(self, ref: ScaleSetRef) -> str:
        """Only the etag of the scale set's model (one read): it changes with every change of the model."""
        ...

    async def operation_status(self, ref: ScaleSetRef, operation_url: str) -> OperationView:
        """Only the state of an operation the operator started (one read), while a batch runs."""
        ...

    async def resolve_image(self, ref: ScaleSetRef, image: Image, location: str) -> Image:
        """The concrete image a spec names: a platform image's ``latest`` becomes the newest published version, a
        gallery image definition the version Azure would deploy in ``location``; any other image is itself."""
        ...

    async def check_image(self, ref: ScaleSetRef, image: Image, location: str) -> None:
        """Read-only: raise ``ImageRejected`` (reason ImageNotFound, naming the image and ``location``) when Azure
        does not know the image; an image that follows a source is resolved as ``resolve_image`` would."""
        ...

    async def update_model_image(self, ref: ScaleSetRef, image: Image, etag: str) -> None:
        """Change only the image of the model, if the model's etag is still ``etag``."""
        ...

    async def set_manual_upgrade_mode(self, ref: ScaleSetRef, etag: str) -> None:
        """Set ``upgradePolicy.mode`` to Manual, if the model's etag is still ``etag``."""
        ...

    async def upgrade_instances(self, ref: ScaleSetRef, instance_ids: tuple[str, ...]) -> str:
        """Start ``manualUpgrade`` on these instances; returns the operation's status URL."""
        ...
