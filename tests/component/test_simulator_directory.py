"""What a client reads before it manages anything: the cloud's metadata, subscriptions, tenants and locations.

These are the Microsoft.Resources reads and the metadata endpoint the Azure CLI makes while it registers the
simulator as a cloud and signs in (docs/simulator.md, "Sign-in and the directory"); bare HTTPS here, since the
operator's environment has no azure-mgmt-resource.
"""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from component.simkit import TENANT_ID, ScaleSet, bearer

RESOURCES_API = "2022-12-01"


async def test_the_cloud_metadata_names_the_simulator_as_arm_and_sign_in_endpoint_without_a_token(
    simulator, http: aiohttp.ClientSession
) -> None:
    async with http.get("/metadata/endpoints?api-version=2022-09-01") as response:
        assert response.status == 200
        cloud = await response.json()

    assert cloud["resourceManager"] == f"{simulator.url}/"
    assert cloud["authentication"]["loginEndpoint"] == simulator.url
    assert cloud["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert isinstance(cloud["suffixes"], dict)
    assert "vmImageAliasDoc" not in cloud


async def test_the_cloud_metadata_of_an_api_version_before_2022_09_01_is_an_array_of_clouds(
    http: aiohttp.ClientSession,
) -> None:
    async with http.get("/metadata/endpoints?api-version=2020-06-01") as response:
        clouds = await response.json()

    assert isinstance(clouds, list)
    assert [cloud["name"] for cloud in clouds] == ["AzureSimulator"]


@pytest.mark.parametrize(
    ("query", "code"), [("", "MissingApiVersionParameter"), ("2018-01-01", "InvalidApiVersionParameter")]
)
async def test_the_cloud_metadata_needs_an_api_version_it_knows(
    http: aiohttp.ClientSession, query: str, code: str
) -> None:
    path = f"/metadata/endpoints?api-version={query}" if query else "/metadata/endpoints"

    async with http.get(path) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == code


async def test_the_subscriptions_holding_scale_sets_are_listed_in_the_callers_tenant(
    http: aiohttp.ClientSession, arm_token: str, scale_set: ScaleSet
) -> None:
    async with http.get(f"/subscriptions?api-version={RESOURCES_API}", headers=bearer(arm_token)) as response:
        assert response.status == 200
        listed = {entry["subscriptionId"]: entry for entry in (await response.json())["value"]}

    entry = listed[scale_set.subscription_id]
    assert entry["id"] == f"/subscriptions/{scale_set.subscription_id}"
    assert (entry["tenantId"], entry["state"]) == (TENANT_ID, "Enabled")


async def test_a_subscription_reads_back_alone_and_an_unknown_one_is_not_found(
    http: aiohttp.ClientSession, arm_token: str, scale_set: ScaleSet
) -> None:
    async with http.get(
        f"/subscriptions/{scale_set.subscription_id}?api-version={RESOURCES_API}", headers=bearer(arm_token)
    ) as response:
        assert response.status == 200
        assert (await response.json())["displayName"]
    async with http.get(
        f"/subscriptions/{uuid.uuid4()}?api-version={RESOURCES_API}", headers=bearer(arm_token)
    ) as gone:
        assert gone.status == 404
        assert (await gone.json())["error"]["code"] == "SubscriptionNotFound"


async def test_the_subscriptions_list_needs_a_token(http: aiohttp.ClientSession) -> None:
    async with http.get(f"/subscriptions?api-version={RESOURCES_API}") as response:
        assert response.status == 401


async def test_the_callers_tenant_is_listed(http: aiohttp.ClientSession, arm_token: str) -> None:
    async with http.get(f"/tenants?api-version={RESOURCES_API}", headers=bearer(arm_token)) as response:
        assert response.status == 200
        tenants = (await response.json())["value"]

    assert [(tenant["id"], tenant["tenantId"]) for tenant in tenants] == [(f"/tenants/{TENANT_ID}", TENANT_ID)]


async def test_a_subscription_offers_regions_with_their_names_and_display_names(
    http: aiohttp.ClientSession, arm_token: str, scale_set: ScaleSet
) -> None:
    async with http.get(
        f"/subscriptions/{scale_set.subscription_id}/locations?api-version={RESOURCES_API}", headers=bearer(arm_token)
    ) as response:
        assert response.status == 200
        regions = {region["name"]: region for region in (await response.json())["value"]}

    assert regions["eastus"]["displayName"] == "East US"
    assert regions["westeurope"]["id"] == f"/subscriptions/{scale_set.subscription_id}/locations/westeurope"
    assert regions["westeurope"]["type"] == "Region"
