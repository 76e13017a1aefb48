"""ARM's wire protocol as the simulator speaks it: api-versions, operation documents, scale out and in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import ScaleSet, bearer, list_vms


async def get_json(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any, Mapping[str, str]]:
    async with http.get(url, headers=bearer(token)) as response:
        return response.status, await response.json(content_type=None), response.headers


@pytest.mark.parametrize(
    ("query", "code"),
    [
        pytest.param("", "MissingApiVersionParameter", id="missing"),
        pytest.param("?api-version=2015-06-15", "NoRegisteredProviderFound", id="older than 2016-03-30"),
    ],
)
async def test_a_request_without_a_usable_api_version_is_refused_with_400(
    http: aiohttp.ClientSession, arm_token: str, scale_set: ScaleSet, query: str, code: str
) -> None:
    status, body, _ = await get_json(http, f"{scale_set.id}{query}", arm_token)

    assert (status, body["error"]["code"]) == (400, code)


@pytest.mark.parametrize("api_version", ["2016-03-30", "2024-07-01", "2025-04-01-preview"])
async def test_any_api_version_from_2016_03_30_on_is_accepted(
    http: aiohttp.ClientSession, arm_token: str, scale_set: ScaleSet, api_version: str
) -> None:
    status, body, _ = await get_json(http, f"{scale_set.id}?api-version={api_version}", arm_token)

    assert status == 200
    assert body["name"] == scale_set.name


async def test_an_operation_document_reports_its_status_and_the_monitor_url_answers_202_then_200(
    http: aiohttp.ClientSession, arm_token: str, scale_sets
) -> None:
    scale_set = scale_sets(upgradeSeconds=600)
    async with http.post(
        f"{scale_set.id}/reimage?api-version=2026-04-01", json={"instanceIds": ["0"]}, headers=bearer(arm_token)
    ) as accepted:
        assert accepted.status == 202
        operation_url, monitor_url = accepted.headers["Azure-AsyncOperation"], accepted.headers["Location"]

    status, document, headers = await get_json(http, operation_url, arm_token)
    async with http.get(monitor_url, headers=bearer(arm_token)) as monitor:
        monitor_status = monitor.status

    assert status == 200
    assert document["status"] == "InProgress"
    assert {"startTime", "name"} <= document.keys()
    assert "Retry-After" in headers
    assert monitor_status == 202


async def test_a_scale_out_adds_instances_on_the_current_model_with_the_next_ids(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    poller = await compute.virtual_machine_scale_sets.begin_update(
        scale_set.resource_group, scale_set.name, {"sku": {"capacity": 7}}
    )
    await poller.result()

    vms = await list_vms(compute, scale_set)
    assert [vm.instance_id for vm in vms] == ["0", "1", "2", "3", "4", "5", "6"]
    assert all(vm.properties.latest_model_applied for vm in vms)


async def test_a_scale_in_removes_the_highest_ids(compute: ComputeManagementClient, scale_set: ScaleSet) -> None:
    poller = await compute.virtual_machine_scale_sets.begin_update(
        scale_set.resource_group, scale_set.name, {"sku": {"capacity": 3}}
    )
    await poller.result()

    vms = await list_vms(compute, scale_set)
    assert [vm.instance_id for vm in vms] == ["0", "1", "2"]


async def test_cancelling_a_rolling_upgrade_when_none_runs_is_refused_with_409(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    with pytest.raises(ResourceExistsError):
        await compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel(scale_set.resource_group, scale_set.name)


async def test_a_deleted_scale_set_is_gone_once_its_operation_completes(
    compute: ComputeManagementClient, scale_set: ScaleSet
) -> None:
    poller = await compute.virtual_machine_scale_sets.begin_delete(scale_set.resource_group, scale_set.name)
    await poller.result()

    with pytest.raises(ResourceNotFoundError):
        await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
