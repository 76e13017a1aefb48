"""A hung connection cannot hold a pass: every Azure call of the gateway ends within ``SCALESET_IMAGE_AZURE_TIMEOUT``.

Azure that never answers is the simulator's ``slow`` fault with an hour's delay (the response is held, as a hung
front door holds it), or a token authority that accepts the connection and says nothing. Either way the pass ends
as the transient AzureUnavailable, saying what timed out, within about the timeout; once Azure answers again the
next pass works. The gateway is built the way the operator builds it (``wiring.gateway`` from ``Settings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from azure.identity.aio import ClientSecretCredential

from component.simkit import CLIENT_ID, TENANT_ID, ScaleSet, only_this_scale_set
from scaleset_image_operator import wiring
from scaleset_image_operator.azure.errors import Unavailable
from scaleset_image_operator.azure.gateway import AzureGateway
from scaleset_image_operator.core.spec import ScaleSetRef
from scaleset_image_operator.settings import Settings
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

TIMEOUT = 1.5
"""SCALESET_IMAGE_AZURE_TIMEOUT of these tests (seconds)."""
BOUND = 4.0
"""What a timed-out pass may take at most: the timeout and room for a busy machine; without the timeout, an hour."""
NEVER = 3600
"""Seconds a ``slow`` fault holds the answer: a server that never answers."""


def _gateway(simulator: SimulatorThread, credential: ClientSecretCredential) -> AzureGateway:
    settings = Settings(
        arm_endpoint=simulator.url,
        ca_bundle=simulator.ca_file,
        azure_timeout_seconds=TIMEOUT,
        retry_after_cap=1.0,
        budget_share=4.0,
    )
    return wiring.gateway(settings, credential)


def _ref(scale_set: ScaleSet) -> ScaleSetRef:
    return ScaleSetRef(scale_set.subscription_id, scale_set.resource_group, scale_set.name)


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[str]:
    """An https URL on a free loopback port whose server accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_scale_set_read_azure_never_answers_ends_as_azure_unavailable_within_the_timeout(
    simulator: SimulatorThread, control: SimulatorControl, scale_set: ScaleSet
) -> None:
    async with ClientSecretCredential(
        TENANT_ID, CLIENT_ID, "any-secret", authority=simulator.url, connection_verify=str(simulator.ca_file)
    ) as credential:
        gateway = _gateway(simulator, credential)
        try:
            control.inject_fault(kind="slow", match=only_this_scale_set(scale_set), seconds=NEVER, count=-1)
            began = time.monotonic()
            with pytest.raises(Unavailable) as timed_out:
                await asyncio.wait_for(gateway.observe(_ref(scale_set), None), timeout=BOUND * 3)
            took = time.monotonic() - began
            problem = timed_out.value

            assert took < BOUND, f"the pass was held {took:.1f} s"
            assert problem.reason == "AzureUnavailable"
            assert problem.message.startswith(f"reading {scale_set.name}: timed out: no answer from Azure to GET ")
            assert f"within {TIMEOUT:g} s" in problem.message

            control.clear_faults()
            observation = await asyncio.wait_for(gateway.observe(_ref(scale_set), None), timeout=BOUND * 3)
            assert len(observation.scale_set.instances) == scale_set.capacity
        finally:
            await gateway.close()


async def test_a_token_authority_that_never_answers_ends_the_pass_as_azure_unavailable_within_the_timeout(
    simulator: SimulatorThread, scale_set: ScaleSet
) -> None:
    async with (
        _silent_server() as silent,
        ClientSecretCredential(
            TENANT_ID, CLIENT_ID, "any-secret", authority=silent, connection_verify=str(simulator.ca_file)
        ) as credential,
    ):
        gateway = _gateway(simulator, credential)
        try:
            began = time.monotonic()
            with pytest.raises(Unavailable) as timed_out:
                await asyncio.wait_for(gateway.observe(_ref(scale_set), None), timeout=BOUND * 3)
            took = time.monotonic() - began
            problem = timed_out.value
        finally:
            await gateway.close()

    assert took < BOUND, f"the pass was held {took:.1f} s"
    assert problem.reason == "AzureUnavailable"
    assert problem.message.startswith(f"reading {scale_set.name}: timed out: ")
