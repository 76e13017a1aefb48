"""Throttling: Compute's remaining-requests header on every answer, 429s the SDK retries, and empty buckets."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import API_VERSION, TIME_SCALE, ScaleSet, bearer, only_this_scale_set

REMAINING = re.compile(
    r"^Microsoft\.Compute/(?P<policy>\w+)Resource;\d+,Microsoft\.Compute/(?P=policy)SubscriptionMaximum;\d+$"
)


async def test_every_arm_answer_reports_the_remaining_requests_of_its_buckets(
    http: aiohttp.ClientSession, scale_set: ScaleSet, arm_token: str
) -> None:
    for suffix in ("", "/virtualMachines", "/virtualMachines/0/instanceView"):
        async with http.get(f"{scale_set.id}{suffix}?api-version={API_VERSION}", headers=bearer(arm_token)) as r:
            assert r.status == 200
            assert REMAINING.match(r.headers["x-ms-ratelimit-remaining-resource"]), r.headers


async def test_a_throttled_get_is_retried_by_the_sdk_after_retry_after_and_succeeds(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    control.inject_fault(kind="throttle", match=only_this_scale_set(scale_set), retryAfter=TIME_SCALE)
    responses: list[PipelineResponse] = []

    started = time.monotonic()
    vmss = await compute.virtual_machine_scale_sets.get(
        scale_set.resource_group, scale_set.name, raw_response_hook=responses.append
    )
    elapsed = time.monotonic() - started

    assert vmss.name == scale_set.name
    assert [r.http_response.status_code for r in responses] == [429, 200]
    assert responses[0].http_response.headers["Retry-After"] == "1"
    assert elapsed >= 1.0


async def test_a_throttled_answer_carries_computes_throttling_body(open_compute, control, scale_set: ScaleSet) -> None:
    control.inject_fault(kind="throttle", match=only_this_scale_set(scale_set), retryAfter=TIME_SCALE * 3)

    async with open_compute(scale_set.subscription_id, retry_total=0) as compute:
        with pytest.raises(HttpResponseError) as throttled:
            await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert throttled.value.status_code == 429
    assert throttled.value.response.headers["Retry-After"] == "3"
    assert throttled.value.error.code == "OperationNotAllowed"
    assert throttled.value.error.details[0].code == "TooManyRequests"


async def test_a_throttled_manual_upgrade_is_retried_by_the_sdk_too(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    control.inject_fault(
        kind="throttle", match={"method": "POST", "path": f"{scale_set.path}/manualupgrade"}, retryAfter=0
    )

    poller = await compute.virtual_machine_scale_sets.begin_update_instances(
        scale_set.resource_group, scale_set.name, {"instanceIds": ["0"]}
    )
    await poller.result()

    requests = control.audit(scaleSet=scale_set.name, kind="request")
    upgrades = [r["status"] for r in requests if r["operation"] == "VirtualMachineScaleSets_UpdateInstances"]
    assert upgrades == [429, 202]


async def test_an_exhausted_bucket_answers_429_with_retry_after_when_the_sdk_does_not_retry(
    open_compute, control, scale_set: ScaleSet
) -> None:
    throttled_before = control.stats()["throttled"]

    async with open_compute(scale_set.subscription_id, retry_total=0) as compute:
        outcomes = await asyncio.gather(
            *(compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name) for _ in range(100)),
            return_exceptions=True,
        )

    refusals = [o for o in outcomes if isinstance(o, HttpResponseError)]
    assert refusals, "100 GETs at once never emptied a 36-request bucket"
    assert {r.status_code for r in refusals} == {429}
    assert all("Retry-After" in r.response.headers for r in refusals)
    assert {r.error.details[0].code for r in refusals} == {"TooManyRequests"}
    assert not [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, HttpResponseError)]
    assert control.stats()["throttled"] >= throttled_before + len(refusals)


async def test_a_bucket_refills_with_simulated_time(open_compute, scale_set: ScaleSet) -> None:
    async with open_compute(scale_set.subscription_id, retry_total=0) as compute:
        await asyncio.gather(
            *(compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name) for _ in range(60)),
            return_exceptions=True,
        )
        await asyncio.sleep(60 / 12 / TIME_SCALE * 2)

        vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert vmss.name == scale_set.name
