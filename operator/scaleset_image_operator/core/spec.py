"""The ``ScaleSetImage`` spec as typed values, and its parser.

``parse_spec`` never raises on bad input: it returns the problems it found, each naming the field and saying
what to write instead, so that the operator can report them in a ``Degraded`` condition (reason
``InvalidSpec``) without touching Azure. The CRD schema rejects most of these at ``kubectl apply`` already;
this parser is the second line (specs that reached the cluster before a schema change, direct API writes,
``scaleset-image plan -f``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .images import Image, ImageKind
from .quantities import IntOrPercent, parse_duration, parse_int_or_percent, shown

MAX_PAUSE_SECONDS = 24 * 3600.0
MAX_HEALTH_TIMEOUT_SECONDS = 24 * 3600.0
MAX_ORDER_ENTRIES = 100

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", re.ASCII)
# Azure allows any Unicode letter or digit in resource group names (and the CRD's RE2 pattern does too).
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_SCALE_SET_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9._]{0,63}$", re.ASCII)
_VERSION = re.compile(r"^(latest|[0-9]+(\.[0-9]+){1,3})$", re.IGNORECASE)
_NAME_PART = re.compile(r"^[-\w.]{1,200}$", re.ASCII)
_ZONE = re.compile(r"^[0-9]{1,2}$", re.ASCII)


class Strategy(StrEnum):
    UPDATE_DOMAIN = "UpdateDomain"
    FAULT_DOMAIN = "FaultDomain"
    ZONE = "Zone"
    BATCH = "Batch"


class HealthMode(StrEnum):
    AUTO = "Auto"
    APPLICATION_HEALTH = "ApplicationHealth"
    PROVISIONING_STATE = "ProvisioningState"
    NONE = "None"


class OnFailure(StrEnum):
    HALT = "Halt"
    ROLLBACK = "Rollback"


class Approval(StrEnum):
    NONE = "None"
    AFTER_FIRST_BATCH = "AfterFirstBatch"
    EACH_BATCH = "EachBatch"


class UpgradePolicyRule(StrEnum):
    REQUIRE = "Require"
    ENFORCE = "Enforce"


Domain = int | str


@dataclass(frozen=True)
class ScaleSetRef:
    subscription_id: str
    resource_group: str
    name: str

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.name}"
        )


@dataclass(frozen=True)
class RolloutPolicy:
    strategy: Strategy = Strategy.UPDATE_DOMAIN
    order: tuple[Domain, ...] = ()
    max_batch_size: IntOrPercent = IntOrPercent(1)
    pause_seconds: float = 30.0
    health_mode: HealthMode = HealthMode.AUTO
    health_timeout_seconds: float = 600.0
    max_unhealthy: IntOrPercent = IntOrPercent(0)
    on_failure: OnFailure = OnFailure.HALT
    paused: bool = False
    approval: Approval = Approval.NONE


@dataclass(frozen=True)
class ScaleSetImageSpec:
    scale_set: ScaleSetRef
    image: Image
    rollout: RolloutPolicy = field(default_factory=RolloutPolicy)
    dry_run: bool = False
    upgrade_policy: UpgradePolicyRule = UpgradePolicyRule.REQUIRE


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: the field's path and a sentence saying what is expected."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        message = message if len(message) <= 400 else message[:400] + "…"
        self.problems.append(Problem(path, message))

    def mapping(self, value: Any, path: str, *, required: bool = False) -> Mapping[str, Any]:
        if value is None:
            if required:
                self.problem(path, "is required")
            return {}
        if not isinstance(value, Mapping):
            self.problem(path, f"must be an object, not {type(value).__name__}")
            return {}
        return value

    def text(self, value: Any, path: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if not isinstance(value, str) or not value.strip():
            self.problem(path, "is required and must be a non-empty string")
            return ""
        if pattern is not None and not pattern.fullmatch(value):
            self.problem(path, f"{shown(value)} is not valid{': ' + hint if hint else ''}")
        return value

    def enum(self, value: Any, path: str, kind: type[StrEnum], default: StrEnum) -> Any:
        if value is None:
            return default
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            self.problem(path, f"must be one of {allowed}, not {shown(value)}")
            return default

    def boolean(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.problem(path, f"must be true or false, not {shown(value)}")
            return False
        return value


def _image(reader: _Reader, raw: Mapping[str, Any]) -> Image | None:
    sources = [
        key
        for key in ("platform", "id", "sharedGalleryImageId", "communityGalleryImageId", "uri")
        if raw.get(key) not in (None, "", {})
    ]
    if len(sources) != 1:
        named = ", ".join(sources) if sources else "none"
        reader.problem(
            "spec.image",
            "must name exactly one of platform, id, sharedGalleryImageId, "
            f"communityGalleryImageId or uri (found: {named})",
        )
        return None
    source = sources[0]
    path = f"spec.image.{source}"
    if source == "platform":
        platform = reader.mapping(raw["platform"], path, required=True)
        parts = [
            reader.text(platform.get(name), f"{path}.{name}", _NAME_PART) for name in ("publisher", "offer", "sku")
        ]
        version = reader.text(
            platform.get("version"), f"{path}.version", _VERSION, 'use "latest" or a version such as 22.04.202410020'
        )
        return Image.platform(parts[0], parts[1], parts[2], version)
    value = raw[source]
    if not isinstance(value, str):
        reader.problem(path, f"must be a string, not {type(value).__name__}")
        return None
    lowered = value.lower()
    if source == "id":
        if not (
            lowered.startswith("/subscriptions/")
            and "/providers/microsoft.compute/" in lowered
            and ("/images/" in lowered)
        ):
            reader.problem(
                path,
                "must be a managed image or gallery image (version) resource id such as "
                "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/galleries/"
                "<gallery>/images/<image>/versions/<version>",
            )
        return Image.of(ImageKind.ID, value)
    if source == "sharedGalleryImageId":
        if not lowered.startswith("/sharedgalleries/") or "/images/" not in lowered:
            reader.problem(path, "must look like /SharedGalleries/<unique name>/Images/<image>/Versions/<version>")
        return Image.of(ImageKind.SHARED_GALLERY, value)
    if source == "communityGalleryImageId":
        if not lowered.startswith("/communitygalleries/") or "/images/" not in lowered:
            reader.problem(path, "must look like /CommunityGalleries/<public name>/Images/<image>/Versions/<version>")
        return Image.of(ImageKind.COMMUNITY_GALLERY, value)
    if not lowered.startswith("https://") or not lowered.endswith(".vhd"):
        reader.problem(path, "must be an https:// URL of a .vhd blob")
    return Image.of(ImageKind.URI, value)


def _order(reader: _Reader, raw: Any, strategy: Strategy) -> tuple[Domain, ...]:
    if raw is None:
        return ()
    path = "spec.rollout.order"
    if not isinstance(raw, list):
        reader.problem(path, "must be a list of domains")
        return ()
    if strategy is Strategy.BATCH:
        reader.problem(path, "is not used with the Batch strategy (batches follow instance ids); remove it")
        return ()
    if len(raw) > MAX_ORDER_ENTRIES:
        reader.problem(path, f"has {len(raw)} entries; at most {MAX_ORDER_ENTRIES} domains exist")
        return ()
    domains: list[Domain] = []
    for position, entry in enumerate(raw):
        if strategy is Strategy.ZONE:
            small = isinstance(entry, int) and not isinstance(entry, bool) and 0 <= entry < 100
            text = entry if isinstance(entry, str) else str(entry) if small else ""
            if not _ZONE.fullmatch(text):
                reader.problem(f"{path}[{position}]", f'must be a zone such as "1", not {shown(entry)}')
                continue
            domains.append(text)
        else:
            if isinstance(entry, bool) or not isinstance(entry, int) or not 0 <= entry < 100:
                reader.problem(f"{path}[{position}]", f"must be a domain number from 0 to 99, not {shown(entry)}")
                continue
            domains.append(entry)
    if len(set(domains)) != len(domains):
        reader.problem(path, "names a domain more than once")
    return tuple(domains)


def _rollout(reader: _Reader, raw: Mapping[str, Any]) -> RolloutPolicy:
    base = "spec.rollout"
    strategy = reader.enum(raw.get("strategy"), f"{base}.strategy", Strategy, Strategy.UPDATE_DOMAIN)
    max_batch = IntOrPercent(1)
    if raw.get("maxBatchSize") is not None:
        try:
            max_batch = parse_int_or_percent(raw["maxBatchSize"])
        except ValueError as error:
            reader.problem(f"{base}.maxBatchSize", str(error))
        else:
            if max_batch.value == 0:
                reader.problem(f"{base}.maxBatchSize", "must be at least 1 (or 1%)")
            elif strategy is Strategy.UPDATE_DOMAIN and (max_batch.percent or max_batch.value != 1):
                reader.problem(
                    f"{base}.maxBatchSize",
                    "must be 1 with the UpdateDomain strategy: one update domain at a time is what keeps "
                    "the others serving; use FaultDomain, Zone or Batch for larger steps",
                )
    pause = 30.0
    if raw.get("pauseBetweenBatches") is not None:
        try:
            pause = parse_duration(raw["pauseBetweenBatches"])
        except ValueError as error:
            reader.problem(f"{base}.pauseBetweenBatches", str(error))
        else:
            if pause > MAX_PAUSE_SECONDS:
                reader.problem(f"{base}.pauseBetweenBatches", "must be at most 24h")
    health = reader.mapping(raw.get("healthCheck"), f"{base}.healthCheck")
    mode = reader.enum(health.get("mode"), f"{base}.healthCheck.mode", HealthMode, HealthMode.AUTO)
    timeout = 600.0
    if health.get("timeout") is not None:
        try:
            timeout = parse_duration(health["timeout"])
        except ValueError as error:
            reader.problem(f"{base}.healthCheck.timeout", str(error))
        else:
            if not 1.0 <= timeout <= MAX_HEALTH_TIMEOUT_SECONDS:
                reader.problem(f"{base}.healthCheck.timeout", "must be between 1s and 24h")
    max_unhealthy = IntOrPercent(0)
    if raw.get("maxUnhealthyInstances") is not None:
        try:
            max_unhealthy = parse_int_or_percent(raw["maxUnhealthyInstances"])
        except ValueError as error:
            reader.problem(f"{base}.maxUnhealthyInstances", str(error))
    return RolloutPolicy(
        strategy=strategy,
        order=_order(reader, raw.get("order"), strategy),
        max_batch_size=max_batch,
        pause_seconds=pause,
        health_mode=mode,
        health_timeout_seconds=timeout,
        max_unhealthy=max_unhealthy,
        on_failure=reader.enum(raw.get("onFailure"), f"{base}.onFailure", OnFailure, OnFailure.HALT),
        paused=reader.boolean(raw.get("paused"), f"{base}.paused"),
        approval=reader.enum(raw.get("approval"), f"{base}.approval", Approval, Approval.NONE),
    )


def parse_spec(spec: Any) -> tuple[ScaleSetImageSpec | None, tuple[Problem, ...]]:
    """The typed spec, or ``None`` and every problem found (never raises)."""
    reader = _Reader()
    root = reader.mapping(spec, "spec", required=True)
    scale_set = reader.mapping(root.get("scaleSet"), "spec.scaleSet", required=True)
    ref = (
        ScaleSetRef(
            reader.text(
                scale_set.get("subscriptionId"),
                "spec.scaleSet.subscriptionId",
                _GUID,
                "a subscription id is a GUID such as 00000000-0000-0000-0000-000000000000",
            ),
            reader.text(
                scale_set.get("resourceGroup"),
                "spec.scaleSet.resourceGroup",
                _RESOURCE_GROUP,
                "1-90 letters, digits, '-', '_', '.', '(' or ')'",
            ),
            reader.text(
                scale_set.get("name"),
                "spec.scaleSet.name",
                _SCALE_SET_NAME,
                "1-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
            ),
        )
        if isinstance(root.get("scaleSet"), Mapping)
        else ScaleSetRef("", "", "")
    )
    image_source = reader.mapping(root.get("image"), "spec.image", required=isinstance(spec, Mapping))
    image = _image(reader, image_source) if isinstance(root.get("image"), Mapping) else None
    rollout = _rollout(reader, reader.mapping(root.get("rollout"), "spec.rollout"))
    dry_run = reader.boolean(root.get("dryRun"), "spec.dryRun")
    upgrade_policy = reader.enum(
        root.get("upgradePolicy"), "spec.upgradePolicy", UpgradePolicyRule, UpgradePolicyRule.REQUIRE
    )
    if reader.problems or image is None:
        return None, tuple(reader.problems)
    return ScaleSetImageSpec(ref, image, rollout, dry_run, upgrade_policy), ()
