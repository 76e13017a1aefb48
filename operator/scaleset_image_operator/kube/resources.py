"""The ScaleSetImage resource as Kubernetes names it, and conversions between its bodies and the reconciler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..reconciler import Resource

GROUP = "scaleset.dev"
VERSION = "v1alpha1"
PLURAL = "scalesetimages"
KIND = "ScaleSetImage"


def resource_from_body(body: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> Resource:
    """The parts of a custom-resource body a reconcile pass reads (``status`` overrides the body's, when the
    operator knows a newer one than the watch has delivered)."""
    metadata = body.get("metadata") or {}
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    return Resource(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        generation=int(metadata.get("generation") or 1),
        spec=dict(body.get("spec") or {}),
        status=dict(status if status is not None else body.get("status") or {}),
        annotations=annotations,
    )


def status_patch(new: Mapping[str, Any], *old: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) turning a status that is any of ``old`` into ``new``. A merge patch merges
    objects key by key, so every key that ``new`` no longer has, at any depth, is sent as null; lists are replaced
    whole. Keys of other writers (kopf's own top-level ``kopf``) are kept."""
    return _merge_patch(new, old, top=True)


def _merge_patch(new: Mapping[str, Any], olds: Sequence[Mapping[str, Any]], *, top: bool = False) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for old in olds:
        patch.update({key: None for key in old if key not in new and not (top and key == "kopf")})
    for key, value in new.items():
        nested = [old[key] for old in olds if isinstance(old.get(key), Mapping)]
        patch[key] = _merge_patch(value, nested) if isinstance(value, Mapping) and nested else value
    return patch


def merged(value: Any) -> Any:
    """``value`` as the apiserver keeps it after a merge patch: keys whose value is null are absent."""
    if isinstance(value, Mapping):
        return {k: merged(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [merged(v) for v in value]
    return value


def parse_label_selector(text: str) -> dict[str, str | None]:
    """``app=web,tier`` -> ``{"app": "web", "tier": None}`` (None: the label must exist). Equality and existence
    terms only, which is what kopf's ``labels=`` filter can express."""
    labels: dict[str, str | None] = {}
    for term in (t.strip() for t in text.split(",") if t.strip()):
        if "!" in term or " in " in term or " notin " in term or "(" in term:
            raise ValueError(f"label selector term {term!r}: only key=value and key are supported")
        key, _, value = term.replace("==", "=").partition("=")
        if not key.strip():
            raise ValueError(f"label selector term {term!r} has no key")
        labels[key.strip()] = value.strip() if _ else None
    return labels
