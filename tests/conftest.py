"""Shared fixtures: one ARM simulator per test session, and real Azure SDK clients pointed at it.

The simulator runs on a thread of its own (its own event loop), so async tests and the synchronous control
client can both talk to it. Every test gets a subscription and scale set names of its own, so tests never
share scale sets or throttling buckets and can run in any order.

Constants, small builders and waits live in ``tests/component/simkit.py`` (``tests/component`` is a package,
so both this file and the tests import it as ``component.simkit``).

Nothing here patches the Azure SDK: clients are built exactly as an operator would build them, with the
simulator's URL as ``base_url``/``authority`` and its CA as ``connection_verify``.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis  # noqa: F401  (imported at collection: a late first import in the terminal summary trips CPython 3.11.7)
import pytest
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import (
    ARM_SCOPE,
    CLIENT_ID,
    HEALTH_WARMUP_SECONDS,
    RESOURCE_GROUP,
    TENANT_ID,
    UPGRADE_SECONDS,
    ScaleSet,
    install_azure_cli,
    jammy,
    simulator_config,
)
from observability.promkit import fetch_prometheus
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorThread]:
    with SimulatorThread(simulator_config(tmp_path_factory.mktemp("simulator"))) as sim:
        yield sim


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    """The folder holding Debian's ``prometheus`` and ``promtool`` (found or fetched once by
    tools/prometheus/fetch.sh). A failing fetch fails the tests with the script's own error: there is no fallback."""
    started = time.monotonic()
    try:
        folder = fetch_prometheus()
    except RuntimeError as error:
        pytest.fail(str(error))
    print(f"prometheus tools in {folder} ({time.monotonic() - started:.2f} s)")
    return folder


@pytest.fixture(scope="session")
def azure_cli_executable() -> Path:
    """The pinned Azure CLI's ``az`` (installed once by tools/azure-cli/install.sh into its own cached virtual
    environment). A failing install fails the tests with the script's own error: they never skip."""
    started = time.monotonic()
    try:
        executable = install_azure_cli()
    except RuntimeError as error:
        pytest.fail(str(error))
    print(f"azure-cli in {executable} ({time.monotonic() - started:.2f} s)")
    return executable


@pytest.fixture(scope="session")
def session_control(simulator: SimulatorThread) -> SimulatorControl:
    return SimulatorControl(simulator.url, simulator.ca_file)


@pytest.fixture
def control(session_control: SimulatorControl) -> Iterator[SimulatorControl]:
    """The control API; faults a test injects are cleared when it ends."""
    yield session_control
    session_control.clear_faults()


@pytest.fixture
def subscription_id() -> str:
    """A subscription of the test's own: its throttling buckets are the test's own too."""
    return str(uuid.uuid4())


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    def make(prefix: str = "vmss") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def scale_sets(
    control: SimulatorControl, subscription_id: str, unique_name: Callable[[str], str]
) -> Callable[..., ScaleSet]:
    """Builds scale sets in the test's subscription: small, fast, Manual, regional; pass only what differs.

    Keyword arguments are the camelCase keys of ``POST /_sim/scalesets``.
    """

    def build(**overrides: Any) -> ScaleSet:
        body: dict[str, Any] = {
            "subscriptionId": subscription_id,
            "resourceGroup": RESOURCE_GROUP,
            "name": unique_name("vmss"),
            "capacity": 5,
            "upgradeSeconds": UPGRADE_SECONDS,
            "healthWarmupSeconds": HEALTH_WARMUP_SECONDS,
        } | overrides
        arm_id = control.create_scale_set(**body)
        return ScaleSet(
            id=arm_id,
            name=body["name"],
            resource_group=body["resourceGroup"],
            subscription_id=body["subscriptionId"],
            capacity=body["capacity"],
        )

    return build


@pytest.fixture
def scale_set(scale_sets: Callable[..., ScaleSet]) -> ScaleSet:
    """The default scale set: 5 instances, Manual, regional, on the oldest Ubuntu 22.04 version."""
    return scale_sets(image=jammy())


@pytest.fixture
def open_compute(
    simulator: SimulatorThread,
) -> Callable[..., contextlib.AbstractAsyncContextManager[ComputeManagementClient]]:
    """Opens a real ComputeManagementClient on the simulator.

    ``open_compute(subscription_id, credential=None, url=None, ca_file=None, **client_kwargs)``; without a
    credential a real ClientSecretCredential is used (and closed afterwards).
    """

    @contextlib.asynccontextmanager
    async def open_(
        subscription_id: str,
        credential: Any = None,
        *,
        url: str | None = None,
        ca_file: Path | str | None = None,
        **client_kwargs: Any,
    ) -> AsyncIterator[ComputeManagementClient]:
        base_url = url or simulator.url
        ca = str(ca_file or simulator.ca_file)
        async with contextlib.AsyncExitStack() as stack:
            if credential is None:
                credential = await stack.enter_async_context(
                    ClientSecretCredential(TENANT_ID, CLIENT_ID, "any-secret", authority=base_url, connection_verify=ca)
                )
            kwargs: dict[str, Any] = {
                "base_url": base_url,
                "connection_verify": ca,
                "polling_interval": 0.05,
                "retry_backoff_factor": 0.01,
            } | client_kwargs
            client = await stack.enter_async_context(ComputeManagementClient(credential, subscription_id, **kwargs))
            yield client

    return open_


@pytest.fixture
async def compute(
    open_compute: Callable[..., contextlib.AbstractAsyncContextManager[ComputeManagementClient]],
    subscription_id: str,
) -> AsyncIterator[ComputeManagementClient]:
    """A ComputeManagementClient for the test's subscription, authenticated with a ClientSecretCredential."""
    async with open_compute(subscription_id) as client:
        yield client


@pytest.fixture
async def http(simulator: SimulatorThread) -> AsyncIterator[aiohttp.ClientSession]:
    """A bare aiohttp session trusting the simulator's CA, for requests the SDK would not make."""
    ssl_context = ssl.create_default_context(cafile=str(simulator.ca_file))
    async with aiohttp.ClientSession(
        base_url=simulator.url, connector=aiohttp.TCPConnector(ssl=ssl_context)
    ) as session:
        yield session


@pytest.fixture
async def arm_token(simulator: SimulatorThread) -> str:
    """A valid bearer token issued by the simulator's token endpoint."""
    async with ClientSecretCredential(
        TENANT_ID, CLIENT_ID, "any-secret", authority=simulator.url, connection_verify=str(simulator.ca_file)
    ) as credential:
        return (await credential.get_token(ARM_SCOPE)).token
