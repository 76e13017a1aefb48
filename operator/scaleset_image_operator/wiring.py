"""Builds the production objects from ``Settings``: the Azure credential and gateway.

The credential is azure-identity's ``DefaultAzureCredential`` (workload identity on AKS, managed identity,
or the environment), renewed when Azure refuses a token early (azure/credentials.py), configured with the CA
bundle when one is set so that a private authority or the simulator's token endpoint can be trusted. Its socket
reads end within ``Settings.azure_timeout_seconds`` like the gateway's; every token request the operator makes is
also inside a gateway call, whose deadline covers it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import DefaultAzureCredential

from .azure.credentials import RenewableCredential
from .azure.gateway import AzureGateway, GatewayOptions
from .settings import Settings


def credential(settings: Settings) -> RenewableCredential:
    """DefaultAzureCredential, renewed (a fresh token cache) when Azure refuses one of its tokens."""
    # Only the read timeout: a connection_timeout here would also replace managed identity's own 2 s one.
    return RenewableCredential(
        lambda: DefaultAzureCredential(
            connection_verify=settings.connection_verify,
            exclude_interactive_browser_credential=True,
            read_timeout=settings.azure_timeout_seconds,
        ),
        clock=time.monotonic,
    )


def gateway(
    settings: Settings, credential: AsyncTokenCredential, *, clock: Callable[[], float] = time.monotonic
) -> AzureGateway:
    """The one way an AzureGateway is built from Settings: ``run``, ``plan``, the demo and the tests all use it, so
    none of them drops a setting (budget share, Retry-After cap, image cache, timeout)."""
    options = GatewayOptions(
        arm_endpoint=settings.arm_endpoint,
        arm_scope=settings.arm_scope,
        connection_verify=settings.connection_verify,
        retry_after_cap=settings.retry_after_cap,
        budget_share=settings.budget_share,
        image_cache_seconds=settings.image_cache_seconds,
        timeout_seconds=settings.azure_timeout_seconds,
    )
    return AzureGateway(credential, options, clock=clock)
