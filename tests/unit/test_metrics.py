"""The Prometheus families follow each pass's status exactly, with bounded labels."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from scaleset_image_operator.azure.gateway import AzureStats
from scaleset_image_operator.core.status import build_status
from scaleset_image_operator.metrics import OperatorMetrics
from scaleset_image_operator.reconciler import Event, PassResult
from unit.rollout_harness import make_run

KEY = ("team-a", "web")


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(
        name, {"namespace": KEY[0], "name": KEY[1], **labels} if labels.pop("_scoped", "yes") == "yes" else labels
    )


def roll(registry: CollectorRegistry) -> tuple[OperatorMetrics, list[dict[str, Any]], list[float]]:
    metrics = OperatorMetrics(registry)
    run = make_run(capacity=10)
    previous: dict[str, Any] = {}
    statuses = []
    ratios = []
    for _ in range(400):
        observed, _ = run.observe()
        decision = run.step()
        status = build_status(
            decision,
            observed,
            strategy=run.spec.rollout.strategy,
            mode=run.spec.rollout.health_mode,
            generation=1,
            now=run.clock.t,
            previous=previous,
        )
        old_batch, new_batch = previous.get("currentBatch") or {}, status.get("currentBatch") or {}
        finished = bool(old_batch.get("startedAt")) and (
            not new_batch.get("startedAt") or new_batch.get("index") != old_batch.get("index")
        )
        events = (Event("Normal", "BatchSucceeded", ""),) if finished else ()
        metrics.observe_pass(KEY, PassResult(status, 1.0, events, decision), 0.01, previous, run.clock.t)
        statuses.append(status)
        ratios.append(value(registry, "scalesetimage_rollout_progress_ratio") or 0.0)
        previous = status
        if status["phase"] == "Succeeded":
            break
        run.clock.t += 5
    return metrics, statuses, ratios


def test_progress_goes_from_zero_to_one_and_never_back() -> None:
    registry = CollectorRegistry()
    _, statuses, ratios = roll(registry)
    assert statuses[-1]["phase"] == "Succeeded"
    assert ratios[0] == 0.0
    assert ratios == sorted(ratios)
    assert value(registry, "scalesetimage_rollout_progress_ratio") == 1.0
    assert value(registry, "scalesetimage_instances", state="upgraded") == 10.0
    assert value(registry, "scalesetimage_phase", phase="Succeeded") == 1.0
    assert value(registry, "scalesetimage_phase", phase="RollingOut") == 0.0
    assert value(registry, "scalesetimage_condition", type="Ready", status="True") == 1.0
    assert value(registry, "scalesetimage_batch_duration_seconds_count") == 5.0
    assert value(registry, "scalesetimage_rollout_duration_seconds_count") == 1.0
    assert value(registry, "scalesetimage_reconcile_total", result="success", _scoped="no") == len(statuses)


def test_each_domain_reports_exactly_one_state() -> None:
    registry = CollectorRegistry()
    roll(registry)
    for domain in "01234":
        states = [
            value(registry, "scalesetimage_domain_state", domain=domain, state=s)
            for s in ("Pending", "Upgrading", "Succeeded", "Failed")
        ]
        assert states == [0.0, 0.0, 1.0, 0.0]


def test_info_carries_the_current_images_only() -> None:
    registry = CollectorRegistry()
    roll(registry)
    samples = [s for m in registry.collect() if m.name == "scalesetimage_info" for s in m.samples]
    assert len(samples) == 1
    assert samples[0].labels["target_image"] == samples[0].labels["model_image"]


def test_a_deleted_scaleset_image_leaves_no_series() -> None:
    registry = CollectorRegistry()
    metrics, _, _ = roll(registry)
    metrics.forget(KEY)
    left = [s for m in registry.collect() for s in m.samples if s.labels.get("name") == KEY[1]]
    assert left == []


def test_azure_figures_are_folded_in_as_deltas() -> None:
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    stats = AzureStats()
    stats.record(
        "GET",
        "https://arm/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachineScaleSets/web",
        200,
        {
            "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/GetVMScaleSetResource;35,"
            "Microsoft.Compute/GetVMScaleSetSubscriptionMaximum;2399"
        },
    )
    stats.record(
        "GET",
        "https://arm/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachineScaleSets/web",
        429,
        {},
    )
    metrics.sync_azure(stats)
    metrics.sync_azure(stats)
    requests = "scalesetimage_azure_requests_total"
    assert registry.get_sample_value(requests, {"operation": "VirtualMachineScaleSets_Get", "code": "200"}) == 1.0
    assert registry.get_sample_value(requests, {"operation": "VirtualMachineScaleSets_Get", "code": "429"}) == 1.0
    assert registry.get_sample_value("scalesetimage_azure_throttled_total") == 1.0
    assert (
        registry.get_sample_value(
            "scalesetimage_azure_ratelimit_remaining", {"policy": "GetVMScaleSetSubscriptionMaximum"}
        )
        == 2399.0
    )
