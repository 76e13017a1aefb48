"""Prometheus metrics (docs/observability.md, prefix ``scalesetimage_``) on an injected registry.

Every value comes from the same pass result the status is written from, so status and metrics never
disagree. Labels are bounded: namespace, name, and small enumerations (state, phase, domain, condition,
operation, status code, rate-limit policy); never instance ids. Azure request figures come from the
gateway's ``AzureStats``, folded in as deltas after each pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .azure.gateway import AzureStats
from .core.planner import Phase
from .core.status import parse_rfc3339
from .reconciler import PassResult

INSTANCE_STATES = ("upgraded", "upgrading", "pending", "failed", "unhealthy")
DOMAIN_STATES = ("Pending", "Upgrading", "Succeeded", "Failed")
CONDITIONS = ("Ready", "Progressing", "Degraded")
DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf"))
RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))

Key = tuple[str, str]


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        ns = "scalesetimage"
        self.instances = Gauge(
            "instances",
            "Instances of the scale set by rollout state.",
            ["namespace", "name", "state"],
            namespace=ns,
            registry=registry,
        )
        self.progress = Gauge(
            "rollout_progress_ratio",
            "Share of instances on the target image and healthy (0..1).",
            ["namespace", "name"],
            namespace=ns,
            registry=registry,
        )
        self.domain_state = Gauge(
            "domain_state",
            "1 for the current state of each domain (update/fault domain or zone, by strategy).",
            ["namespace", "name", "domain", "state"],
            namespace=ns,
            registry=registry,
        )
        self.domain_progress = Gauge(
            "domain_upgraded_ratio",
            "Share of a domain's instances on the target and healthy (0..1).",
            ["namespace", "name", "domain"],
            namespace=ns,
            registry=registry,
        )
        self.phase = Gauge(
            "phase",
            "1 for the current phase of the rollout.",
            ["namespace", "name", "phase"],
            namespace=ns,
            registry=registry,
        )
        self.condition = Gauge(
            "condition",
            "1 for the current status of each condition.",
            ["namespace", "name", "type", "status"],
            namespace=ns,
            registry=registry,
        )
        self.batch_duration = Histogram(
            "batch_duration_seconds",
            "Time from a batch's start until its instances run the target and are healthy.",
            ["namespace", "name"],
            namespace=ns,
            registry=registry,
            buckets=DURATION_BUCKETS,
        )
        self.rollout_duration = Histogram(
            "rollout_duration_seconds",
            "Time from a rollout's start until Ready.",
            ["namespace", "name"],
            namespace=ns,
            registry=registry,
            buckets=DURATION_BUCKETS,
        )
        self.reconcile_total = Counter(
            "reconcile",
            "Reconcile passes by result (success, transient, degraded).",
            ["result"],
            namespace=ns,
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds",
            "Time one reconcile pass takes.",
            namespace=ns,
            registry=registry,
            buckets=RECONCILE_BUCKETS,
        )
        self.azure_requests = Counter(
            "azure_requests",
            "Azure Resource Manager requests by operation and HTTP status code.",
            ["operation", "code"],
            namespace=ns,
            registry=registry,
        )
        self.azure_throttled = Counter(
            "azure_throttled", "Azure answers with 429 Too Many Requests.", namespace=ns, registry=registry
        )
        self.azure_remaining = Gauge(
            "azure_ratelimit_remaining",
            "Requests Azure says remain in each rate-limit policy (x-ms-ratelimit-remaining-* headers).",
            ["policy"],
            namespace=ns,
            registry=registry,
        )
        self.info = Gauge(
            "info",
            "1, with the target and model image of each ScaleSetImage as labels.",
            ["namespace", "name", "target_image", "model_image"],
            namespace=ns,
            registry=registry,
        )
        self._info_labels: dict[Key, tuple[str, str]] = {}
        self._domains: dict[Key, set[str]] = {}
        self._seen_requests: dict[tuple[str, str], int] = {}
        self._seen_throttled = 0

    def observe_pass(
        self, key: Key, result: PassResult, seconds: float, previous: Mapping[str, Any], now: float
    ) -> None:
        """One pass of one ScaleSetImage: ``previous`` is the status it started from, ``now`` wall-clock seconds."""
        namespace, name = key
        self.reconcile_total.labels(result.result).inc()
        self.reconcile_duration.observe(seconds)
        status = result.status
        counts = status.get("instances") or {}
        if counts:
            for state in INSTANCE_STATES:
                self.instances.labels(namespace, name, state).set(float(counts.get(state, 0)))
            total = float(counts.get("total", 0))
            self.progress.labels(namespace, name).set(float(counts.get("upgraded", 0)) / total if total else 0.0)
        phase = str(status.get("phase") or Phase.PENDING.value)
        for candidate in Phase:
            self.phase.labels(namespace, name, candidate.value).set(1.0 if candidate.value == phase else 0.0)
        conditions = {str(c.get("type")): str(c.get("status")) for c in status.get("conditions") or []}
        for kind in CONDITIONS:
            for value in ("True", "False"):
                self.condition.labels(namespace, name, kind, value).set(1.0 if conditions.get(kind) == value else 0.0)
        # Histogram series exist from the first pass, so rate() and increase() see a scale set's first batch.
        self.batch_duration.labels(namespace, name)
        self.rollout_duration.labels(namespace, name)
        self._observe_domains(key, status.get("domains") or [])
        self._observe_info(key, str(status.get("targetImage") or ""), str(status.get("modelImage") or ""))
        self._observe_durations(key, previous, status, result, now)

    def _observe_domains(self, key: Key, domains: list[Mapping[str, Any]]) -> None:
        namespace, name = key
        present = set()
        for entry in domains:
            domain = str(entry.get("domain", ""))
            present.add(domain)
            for state in DOMAIN_STATES:
                self.domain_state.labels(namespace, name, domain, state).set(
                    1.0 if entry.get("state") == state else 0.0
                )
            instances = float(entry.get("instances") or 0)
            self.domain_progress.labels(namespace, name, domain).set(
                float(entry.get("upgraded") or 0) / instances if instances else 0.0
            )
        for gone in self._domains.get(key, set()) - present:
            for state in DOMAIN_STATES:
                self.domain_state.remove(namespace, name, gone, state)
            self.domain_progress.remove(namespace, name, gone)
        if domains:
            self._domains[key] = present

    def _observe_info(self, key: Key, target: str, model: str) -> None:
        old = self._info_labels.get(key)
        if old is not None and old != (target, model):
            self.info.remove(*key, *old)
        self.info.labels(*key, target, model).set(1.0)
        self._info_labels[key] = (target, model)

    def _observe_durations(
        self, key: Key, previous: Mapping[str, Any], status: Mapping[str, Any], result: PassResult, now: float
    ) -> None:
        old_batch = previous.get("currentBatch") or {}
        new_batch = status.get("currentBatch") or {}
        started = parse_rfc3339(old_batch.get("startedAt"))
        finished = any(e.reason == "BatchSucceeded" for e in result.events)
        if started is not None and finished and new_batch.get("startedAt") != old_batch.get("startedAt"):
            self.batch_duration.labels(*key).observe(max(0.0, now - started))
        if status.get("phase") == Phase.SUCCEEDED.value and previous.get("phase") != Phase.SUCCEEDED.value:
            begun, done = parse_rfc3339(status.get("startedAt")), parse_rfc3339(status.get("completedAt"))
            if begun is not None and done is not None:
                self.rollout_duration.labels(*key).observe(max(0.0, done - begun))

    def sync_azure(self, stats: AzureStats) -> None:
        """Fold what the gateway counted since the last call into the Azure counters and gauges."""
        for (operation, code), total in list(stats.requests.items()):
            seen = self._seen_requests.get((operation, code), 0)
            if total > seen:
                self.azure_requests.labels(operation, code).inc(total - seen)
                self._seen_requests[(operation, code)] = total
        if stats.throttled > self._seen_throttled:
            self.azure_throttled.inc(stats.throttled - self._seen_throttled)
            self._seen_throttled = stats.throttled
        for policy, remaining in list(stats.remaining.items()):
            self.azure_remaining.labels(policy).set(remaining)

    def forget(self, key: Key) -> None:
        """A deleted ScaleSetImage leaves no series behind."""
        namespace, name = key
        for state in INSTANCE_STATES:
            _remove(self.instances, namespace, name, state)
        _remove(self.progress, namespace, name)
        for candidate in Phase:
            _remove(self.phase, namespace, name, candidate.value)
        for kind in CONDITIONS:
            for value in ("True", "False"):
                _remove(self.condition, namespace, name, kind, value)
        for domain in self._domains.pop(key, set()):
            for state in DOMAIN_STATES:
                _remove(self.domain_state, namespace, name, domain, state)
            _remove(self.domain_progress, namespace, name, domain)
        for histogram in (self.batch_duration, self.rollout_duration):
            _remove(histogram, namespace, name)
        info = self._info_labels.pop(key, None)
        if info is not None:
            _remove(self.info, namespace, name, *info)


def _remove(metric: Gauge | Histogram, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        return
