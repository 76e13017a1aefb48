"""Identity: real azure-identity credentials get tokens from the simulator; ARM refuses requests as ARM does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import (
    API_VERSION,
    ARM_SCOPE,
    CLIENT_ID,
    TENANT_ID,
    ScaleSet,
    StaticTokenCredential,
    bearer,
    simulator_config,
)
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


async def arm_error(response: aiohttp.ClientResponse) -> str:
    return (await response.json())["error"]["code"]


def scale_set_url(scale_set: ScaleSet) -> str:
    return f"{scale_set.id}?api-version={API_VERSION}"


async def test_a_client_secret_credential_gets_a_token_the_sdk_reads_a_scale_set_with(
    open_compute, simulator, scale_set: ScaleSet
) -> None:
    async with (
        ClientSecretCredential(
            TENANT_ID, CLIENT_ID, "s3cret", authority=simulator.url, connection_verify=str(simulator.ca_file)
        ) as credential,
        open_compute(scale_set.subscription_id, credential) as compute,
    ):
        vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert vmss.name == scale_set.name


async def test_an_issued_token_is_a_jwt_for_arm_naming_the_tenant_and_the_application(arm_token: str) -> None:
    claims = jwt.decode(arm_token, options={"verify_signature": False})

    assert claims["aud"] == "https://management.azure.com/"
    assert claims["tid"] == TENANT_ID
    assert claims["appid"] == CLIENT_ID
    assert claims["exp"] > time.time() + 3000


async def test_a_token_for_the_azure_clis_double_slash_scope_is_for_arm_and_accepted(
    simulator, http: aiohttp.ClientSession, scale_set: ScaleSet
) -> None:
    # The Azure CLI asks for its cloud's resource id plus "/.default": https://management.core.windows.net//.default.
    async with ClientSecretCredential(
        TENANT_ID, CLIENT_ID, "s3cret", authority=simulator.url, connection_verify=str(simulator.ca_file)
    ) as credential:
        token = (await credential.get_token("https://management.core.windows.net//.default")).token

    async with http.get(scale_set_url(scale_set), headers=bearer(token)) as response:
        assert response.status == 200
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "https://management.core.windows.net/"


async def test_a_workload_identity_credential_exchanges_its_token_file_for_a_token(
    open_compute, simulator, scale_set: ScaleSet, tmp_path: Path
) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl")

    async with (
        WorkloadIdentityCredential(
            tenant_id=TENANT_ID,
            client_id=CLIENT_ID,
            token_file_path=str(token_file),
            authority=simulator.url,
            connection_verify=str(simulator.ca_file),
        ) as credential,
        open_compute(scale_set.subscription_id, credential) as compute,
    ):
        vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert vmss.name == scale_set.name


async def test_a_request_without_a_token_is_refused_with_401_authentication_failed(
    http: aiohttp.ClientSession, scale_set: ScaleSet
) -> None:
    async with http.get(scale_set_url(scale_set)) as response:
        assert response.status == 401
        assert await arm_error(response) == "AuthenticationFailed"
        assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("garbage", id="not a jwt"),
        pytest.param(
            jwt.encode(
                {"aud": "https://management.azure.com/", "exp": 4102444800},
                "a-key-that-is-not-the-simulators-key-0123456789",
                "HS256",
            ),
            id="signed by someone else",
        ),
    ],
)
async def test_a_malformed_or_foreign_token_is_refused_with_401_invalid_authentication_token(
    http: aiohttp.ClientSession, scale_set: ScaleSet, token: str
) -> None:
    async with http.get(scale_set_url(scale_set), headers=bearer(token)) as response:
        assert response.status == 401
        assert await arm_error(response) == "InvalidAuthenticationToken"
        assert "WWW-Authenticate" in response.headers


async def test_a_valid_token_is_accepted_by_arm(
    http: aiohttp.ClientSession, scale_set: ScaleSet, arm_token: str
) -> None:
    async with http.get(scale_set_url(scale_set), headers=bearer(arm_token)) as response:
        assert response.status == 200
        assert (await response.json())["name"] == scale_set.name


@pytest.fixture(scope="module")
def short_lived_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorThread]:
    """A simulator of its own whose tokens expire one second after they are issued (real time)."""
    config = simulator_config(tmp_path_factory.mktemp("short-lived"), time_scale=1.0, token_lifetime=1)
    with SimulatorThread(config) as sim:
        yield sim


async def expired_token(sim: SimulatorThread) -> str:
    async with ClientSecretCredential(
        TENANT_ID, CLIENT_ID, "s3cret", authority=sim.url, connection_verify=str(sim.ca_file)
    ) as credential:
        token = (await credential.get_token(ARM_SCOPE)).token
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 1.1)
    return token


async def test_an_expired_token_is_refused_with_401_expired_authentication_token(
    short_lived_tokens: SimulatorThread,
) -> None:
    sim = short_lived_tokens
    subscription = "00000000-0000-0000-0000-00000000e001"
    arm_id = SimulatorControl(sim.url, sim.ca_file).create_scale_set(
        subscriptionId=subscription, resourceGroup="rg", name="expiring", capacity=1
    )
    token = await expired_token(sim)

    async with (
        StaticTokenCredential(token) as credential,
        ComputeManagementClient(
            credential, subscription, base_url=sim.url, connection_verify=str(sim.ca_file), retry_total=0
        ) as compute,
    ):
        with pytest.raises(ClientAuthenticationError) as refused:
            await compute.virtual_machine_scale_sets.get("rg", "expiring")

    assert arm_id.endswith("/virtualMachineScaleSets/expiring")
    assert refused.value.status_code == 401
    assert refused.value.error.code == "ExpiredAuthenticationToken"


async def test_a_revoked_token_surfaces_in_the_sdk_as_client_authentication_error(
    compute: ComputeManagementClient, control, scale_set: ScaleSet
) -> None:
    await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    control.revoke_tokens()

    with pytest.raises(ClientAuthenticationError) as refused:
        await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    assert refused.value.status_code == 401


async def test_a_token_issued_after_a_revocation_is_accepted(open_compute, control, scale_set: ScaleSet) -> None:
    control.revoke_tokens()

    async with open_compute(scale_set.subscription_id) as compute:
        vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert vmss.name == scale_set.name


async def test_the_openid_configuration_of_a_tenant_is_served(http: aiohttp.ClientSession) -> None:
    async with http.get(f"/{TENANT_ID}/v2.0/.well-known/openid-configuration") as response:
        assert response.status == 200
        document = await response.json()

    assert document["token_endpoint"].endswith(f"/{TENANT_ID}/oauth2/v2.0/token")


async def test_a_managed_identity_credential_gets_a_token_from_the_pod_identity_endpoint(
    open_compute, simulator, scale_set: ScaleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", simulator.url)
    async with (
        ManagedIdentityCredential(connection_verify=str(simulator.ca_file)) as credential,
        open_compute(scale_set.subscription_id, credential) as compute,
    ):
        vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)

    assert vmss.name == scale_set.name
