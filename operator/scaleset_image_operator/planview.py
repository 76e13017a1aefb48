"""``scaleset-image plan``: the rollout a ScaleSetImage would make, as a table a person reads before applying it.

Pure rendering of one dry-run pass (the same reconciler code path, with ``dryRun`` forced on, so nothing
is written to Azure).
"""

from __future__ import annotations

from .core.images import Image, ImageKind
from .core.observation import ScaleSetView
from .core.planner import Decision
from .core.quantities import format_duration
from .core.spec import ScaleSetImageSpec


def _short(image: Image | None, other: Image | None) -> str:
    """A platform image next to another of the same publisher/offer/sku is named by its version alone."""
    if image is None:
        return "unknown"
    if (
        other is not None
        and image.kind is ImageKind.PLATFORM
        and other.kind is ImageKind.PLATFORM
        and (image.publisher, image.offer, image.sku) == (other.publisher, other.offer, other.sku)
    ):
        return image.version
    return image.key()


def _resolved_from(image: Image) -> str:
    if image.is_latest:
        return "  (resolved from latest)"
    if image.is_gallery_definition:
        return "  (the newest eligible version of the gallery image definition)"
    return ""


def estimate_seconds(batches: int, *, upgrade_seconds: float, warmup_seconds: float, pause_seconds: float) -> float:
    if batches == 0:
        return 0.0
    return batches * (upgrade_seconds + warmup_seconds) + (batches - 1) * pause_seconds


def render_plan(
    spec: ScaleSetImageSpec,
    observed: ScaleSetView,
    decision: Decision,
    *,
    upgrade_seconds: float,
    warmup_seconds: float,
) -> str:
    target = decision.target
    by_id = {i.instance_id: i for i in observed.instances}
    todo = [b for b in decision.batches if any(i in by_id and not by_id[i].runs(target) for i in b.instance_ids)]
    policy = spec.rollout
    lines: list[str] = [
        f"scale set      {observed.id}",
        f"upgrade policy {observed.upgrade_mode} ({'ok' if observed.upgrade_mode == 'Manual' else 'not Manual: '}"
        f"{'' if observed.upgrade_mode == 'Manual' else 'spec.upgradePolicy ' + spec.upgrade_policy.value})",
        f"model image    {observed.model_image.key() if observed.model_image else 'unknown'}",
        f"target image   {target.key()}{_resolved_from(spec.image)}",
        f"strategy       {policy.strategy.value}, {len(decision.batches)} batches, {len(todo)} with work, pause "
        f"{format_duration(policy.pause_seconds)}, health {policy.health_mode.value} (timeout "
        f"{format_duration(policy.health_timeout_seconds)}), on failure {policy.on_failure.value}",
        f"verdict        {decision.phase.value}: {decision.message}",
        "",
        f"{'batch':>5}  {'domains':<10} {'instance':<9} {'current image':<24} target",
    ]
    for batch in decision.batches:
        domains = ",".join(str(d) for d in batch.domains) or "-"
        for position, instance_id in enumerate(batch.instance_ids):
            instance = by_id[instance_id]
            current = _short(instance.image, target)
            change = "(already on target)" if instance.runs(target) else _short(target, instance.image)
            lines.append(
                f"{batch.index if position == 0 else '':>5}  {domains if position == 0 else '':<10} "
                f"{instance_id:<9} {current:<46} {change}"
            )
    seconds = estimate_seconds(
        len(todo), upgrade_seconds=upgrade_seconds, warmup_seconds=warmup_seconds, pause_seconds=policy.pause_seconds
    )
    lines += [
        "",
        f"estimated duration {format_duration(seconds)} ({len(todo)} batches x (upgrade "
        f"{format_duration(upgrade_seconds)} + health {format_duration(warmup_seconds)}) + pauses); "
        "nothing was changed",
    ]
    return "\n".join(lines)
