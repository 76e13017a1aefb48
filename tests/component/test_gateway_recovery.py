"""Two faults the chaos suite found, at the gateway level with the real SDK against the simulator over HTTPS.

- Azure stops accepting a token before it expires (revoked): azure-identity would hand the cached token out again
  until it expires, up to an hour. The operator's RenewableCredential starts a new credential (a fresh cache), the
  pass is reported as the transient AzureTokenRefused, and the next pass works. Renewals are rate-limited, so a
  second refusal within a minute is AuthFailed (a person's problem) instead of a renewal loop.
- A scale-in between the operator's read and its manualUpgrade: Azure answers 400 InvalidParameter naming the
  instance id. That is not a rejection of the rollout but a stale read: a transient AzureConflict, read again.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential

from component.simkit import CLIENT_ID, TENANT_ID, ScaleSet
from scaleset_image_operator import wiring
from scaleset_image_operator.azure.credentials import RenewableCredential
from scaleset_image_operator.azure.errors import AuthFailed, Conflict, TokenRefused
from scaleset_image_operator.azure.gateway import AzureGateway
from scaleset_image_operator.core.spec import ScaleSetRef
from scaleset_image_operator.settings import Settings
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


def _gateway(simulator: SimulatorThread, credential: Any) -> AzureGateway:
    settings = Settings(arm_endpoint=simulator.url, ca_bundle=simulator.ca_file, retry_after_cap=2.0, budget_share=4.0)
    return wiring.gateway(settings, credential)


def _ref(scale_set: ScaleSet) -> ScaleSetRef:
    return ScaleSetRef(scale_set.subscription_id, scale_set.resource_group, scale_set.name)


def _renewable(simulator: SimulatorThread, clock: list[float]) -> RenewableCredential:
    return RenewableCredential(
        lambda: ClientSecretCredential(
            TENANT_ID, CLIENT_ID, "any-secret", authority=simulator.url, connection_verify=str(simulator.ca_file)
        ),
        clock=lambda: clock[0],
    )


async def test_a_revoked_token_is_replaced_and_the_next_pass_reads_again(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    clock = [1000.0]
    async with _renewable(simulator, clock) as credential:
        gateway = _gateway(simulator, credential)
        try:
            assert len((await gateway.observe(_ref(scale_set), None)).scale_set.instances) == 5
            control.revoke_tokens()
            with pytest.raises(TokenRefused) as refused:
                await gateway.observe(_ref(scale_set), None)
            assert refused.value.reason == "AzureTokenRefused"
            assert "requesting a new token" in refused.value.message
            assert credential.renewals == 1
            assert len((await gateway.observe(_ref(scale_set), None)).scale_set.instances) == 5

            control.revoke_tokens()
            clock[0] += 10  # within a minute of the last renewal: a person's problem, not another renewal
            with pytest.raises(AuthFailed):
                await gateway.observe(_ref(scale_set), None)
            assert credential.renewals == 1
            clock[0] += 60
            with pytest.raises(TokenRefused):
                await gateway.observe(_ref(scale_set), None)
            assert len((await gateway.observe(_ref(scale_set), None)).scale_set.instances) == 5
        finally:
            await gateway.close()


async def test_a_plain_credential_keeps_the_refused_token_and_reports_auth_failed(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    """Why the renewal exists: without it the cached, revoked token is used again."""
    async with ClientSecretCredential(
        TENANT_ID, CLIENT_ID, "any-secret", authority=simulator.url, connection_verify=str(simulator.ca_file)
    ) as credential:
        gateway = _gateway(simulator, credential)
        try:
            await gateway.observe(_ref(scale_set), None)
            control.revoke_tokens()
            for _ in range(2):
                with pytest.raises(AuthFailed):
                    await gateway.observe(_ref(scale_set), None)
        finally:
            await gateway.close()


async def test_an_instance_scaled_in_before_the_upgrade_call_is_a_transient_conflict(
    simulator: SimulatorThread, scale_set: ScaleSet
) -> None:
    clock = [0.0]
    async with _renewable(simulator, clock) as credential:
        gateway = _gateway(simulator, credential)
        try:
            with pytest.raises(Conflict) as conflict:
                await gateway.upgrade_instances(_ref(scale_set), ("0", "42"))
            assert conflict.value.reason == "AzureConflict"
            assert conflict.value.retry_after == 1.0
            assert "reading it again" in conflict.value.message
        finally:
            await gateway.close()
