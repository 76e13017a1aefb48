"""Part 4: what one planning decision costs on a large scale set, calling ``core.planner.plan`` directly.

A regional scale set of ``instances`` instances in 5 update domains, in three moments of a rollout:
``start`` (the model still names the old image: the decision is the model write), ``between`` (two domains done,
the third's operation just succeeded: the pass verifies it and starts the fourth, the longest path through the
planner) and ``done`` (every instance on the target: Succeeded). Each is timed ``calls`` times after a warm-up;
the figure is the median. ``core.status.build_status``, which every pass runs on the same decision, is timed too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from scaleset_image_operator.core.images import Image
from scaleset_image_operator.core.observation import Health, InstanceView, OperationState, OperationView, ScaleSetView
from scaleset_image_operator.core.planner import Controls, Decision, InFlight, Progress, UpgradeInstances, plan
from scaleset_image_operator.core.spec import parse_spec
from scaleset_image_operator.core.status import build_status

from .scenario import FROM_VERSION, JAMMY, TARGET_VERSION, UPDATE_DOMAINS, subscription

OLD = Image.platform(JAMMY["publisher"], JAMMY["offer"], JAMMY["sku"], FROM_VERSION)
NEW = Image.platform(JAMMY["publisher"], JAMMY["offer"], JAMMY["sku"], TARGET_VERSION)
OPERATION = "https://management.azure.com/subscriptions/x/providers/Microsoft.Compute/locations/eastus/operations/1"
NOW = 1_750_000_000.0


def _instances(count: int, upgraded_domains: int) -> tuple[InstanceView, ...]:
    return tuple(
        InstanceView(
            instance_id=str(i),
            update_domain=i % UPDATE_DOMAINS,
            fault_domain=i % UPDATE_DOMAINS,
            zone=None,
            latest_model_applied=i % UPDATE_DOMAINS < upgraded_domains,
            image=NEW if i % UPDATE_DOMAINS < upgraded_domains else OLD,
            provisioning_state="Succeeded",
            power_state="running",
            health=Health.HEALTHY,
        )
        for i in range(count)
    )


def _scale_set(count: int, model: Image, upgraded_domains: int) -> ScaleSetView:
    return ScaleSetView(
        id="/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/big",
        name="big",
        location="eastus",
        etag='"7"',
        upgrade_mode="Manual",
        orchestration_mode="Uniform",
        model_image=model,
        capacity=count,
        provisioning_state="Succeeded",
        instances=_instances(count, upgraded_domains),
    )


def _median_ms(call: Callable[[], object], calls: int) -> float:
    for _ in range(min(20, calls)):
        call()
    samples = []
    for _ in range(calls):
        began = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - began) / 1e6)
    return statistics.median(samples)


def measure_planner(instances: int, calls: int) -> dict[str, Any]:
    spec, problems = parse_spec(
        {
            "scaleSet": {"subscriptionId": subscription(0), "resourceGroup": "rg", "name": "big"},
            "image": {"platform": {**JAMMY, "version": TARGET_VERSION}},
            "rollout": {"strategy": "UpdateDomain", "pauseBetweenBatches": "0s"},
        }
    )
    if spec is None:
        raise ValueError(f"the benchmark's spec is invalid: {problems}")
    controls = Controls(generation=1)
    third = tuple(str(i) for i in range(2, instances, UPDATE_DOMAINS))
    moments = {
        "start": (_scale_set(instances, OLD, 0), None, Progress()),
        "between": (
            _scale_set(instances, NEW, 3),
            OperationView(OPERATION, OperationState.SUCCEEDED),
            Progress(
                target=NEW,
                previous=OLD,
                model_written=True,
                in_flight=InFlight(2, third, NOW - 600, OPERATION),
                batches_started=3,
                started_at=NOW - 1800,
            ),
        ),
        "done": (_scale_set(instances, NEW, UPDATE_DOMAINS), None, Progress(target=NEW, previous=OLD)),
    }
    figures: dict[str, Any] = {}
    for moment, (observed, operation, progress) in moments.items():

        def decide(
            observed: ScaleSetView = observed, operation: Any = operation, progress: Progress = progress
        ) -> Decision:
            return plan(spec, NEW, observed, operation, progress, controls, NOW)

        decision = decide()
        if moment == "between" and not isinstance(decision.action, UpgradeInstances):
            raise ValueError(f"the 'between' moment should start batch 3, but the planner decided {decision}")

        def status(decision: Decision = decision, observed: ScaleSetView = observed) -> dict[str, Any]:
            rollout = spec.rollout
            return build_status(
                decision, observed, strategy=rollout.strategy, mode=rollout.health_mode, generation=1, now=NOW
            )

        figures[moment] = {
            "planMs": round(_median_ms(decide, calls), 3),
            "statusMs": round(_median_ms(status, calls), 3),
            "decision": decision.reason,
        }
    return {
        "instances": instances,
        "calls": calls,
        "moments": figures,
        "planMs": max(f["planMs"] for f in figures.values()),
        "statusMs": max(f["statusMs"] for f in figures.values()),
    }
