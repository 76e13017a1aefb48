"""Small builders and waits shared by the simulator's component tests.

Constants describe the simulator's defaults (docs/simulator.md); the builders make the ARM request bodies a
real client would send; the waits poll with a deadline instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from azure.core.credentials import AccessToken
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetVM

from scaleset_image_operator.simulator import SimulatorConfig

TIME_SCALE = 60.0
"""Simulated seconds per real second. At 60 a 2 s upgrade takes 33 ms, and the simulator's LRO
``Retry-After`` (10 s, 30 s simulated) rounds down to 0, so the SDK polls at its ``polling_interval``."""

UPGRADE_SECONDS = 2
"""Simulated seconds one instance upgrade takes in scale sets built by the ``scale_sets`` fixture."""

HEALTH_WARMUP_SECONDS = 2
"""Simulated seconds from an upgraded instance's ``Succeeded`` to ``Healthy``."""

RESOURCE_GROUP = "rg-component-tests"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ARM_SCOPE = "https://management.azure.com/.default"
API_VERSION = "2026-04-01"

JAMMY = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"}
"""Published by default with three versions, oldest first."""
JAMMY_VERSIONS = ("22.04.202409110", "22.04.202410020", "22.04.202411010")
NOBLE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}
NOBLE_VERSIONS = ("24.04.202410010", "24.04.202411030")


def simulator_config(folder: Path, **overrides: Any) -> SimulatorConfig:
    """How the suite runs a simulator: on 127.0.0.1 at a port the system picks (never a fixed one: ``make
    simulator`` may hold 8443), its CA in ``folder``, at ``TIME_SCALE``, throttling; pass only what differs."""
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "ca_file": folder / "ca.pem",
        "time_scale": TIME_SCALE,
        "throttling": True,
    }
    return SimulatorConfig(**(defaults | overrides))


@dataclass(frozen=True)
class ScaleSet:
    """A scale set a test created through the control API."""

    id: str
    name: str
    resource_group: str
    subscription_id: str
    capacity: int

    @property
    def path(self) -> str:
        """The ARM id as a fault ``match.path`` pattern (regular expression, searched)."""
        return re.escape(self.id)


def only_this_scale_set(scale_set: ScaleSet) -> dict[str, str]:
    """A fault match for GETs of the scale set itself (not of its instances or views)."""
    return {"method": "GET", "path": f"{scale_set.path}(\\?|$)"}


def jammy(version: str = JAMMY_VERSIONS[0]) -> dict[str, str]:
    return {**JAMMY, "version": version}


IMAGE_GROUP = "rg-images"
"""The resource group of the galleries and managed images tests publish."""


def gallery_image(subscription_id: str, image: str = "web") -> str:
    """The id of a gallery image definition in the test's subscription (gallery ``gallery`` in ``IMAGE_GROUP``); a
    version's id is this plus ``/versions/<version>``."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{IMAGE_GROUP}/providers/Microsoft.Compute/galleries/gallery"
        f"/images/{image}"
    )


def image_patch(image_reference: dict[str, str]) -> dict[str, Any]:
    """A PATCH body that changes only the image of the scale set's model."""
    return {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": image_reference}}}}


async def list_vms(
    compute: ComputeManagementClient, scale_set: ScaleSet, **kwargs: Any
) -> list[VirtualMachineScaleSetVM]:
    """Every instance of the scale set with its instance view (the SDK follows ``nextLink``)."""
    kwargs.setdefault("expand", "instanceView")
    return [
        vm
        async for vm in compute.virtual_machine_scale_set_vms.list(scale_set.resource_group, scale_set.name, **kwargs)
    ]


def health_of(vm: VirtualMachineScaleSetVM) -> str | None:
    view = vm.properties.instance_view
    if view is None or view.vm_health is None or view.vm_health.status is None:
        return None
    return view.vm_health.status.code


def status_codes(vm_or_view: Any) -> list[str]:
    view = getattr(getattr(vm_or_view, "properties", None), "instance_view", None) or vm_or_view
    return [status.code for status in view.statuses or []]


def exact_version(vm: VirtualMachineScaleSetVM) -> str | None:
    return vm.properties.storage_profile.image_reference.exact_version


def image_version(vm: VirtualMachineScaleSetVM) -> str | None:
    return vm.properties.storage_profile.image_reference.version


class StaticTokenCredential:
    """An async credential that hands out one given token and claims it is valid for an hour."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = 15.0,
    interval: float = 0.1,
) -> T:
    """Calls ``probe`` until ``until`` holds for its result; fails with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s; last result: {result!r}")
        await asyncio.sleep(interval)


async def all_vms_eventually(
    compute: ComputeManagementClient,
    scale_set: ScaleSet,
    until: Callable[[VirtualMachineScaleSetVM], bool],
    *,
    timeout: float = 15.0,
) -> list[VirtualMachineScaleSetVM]:
    """Polls the instance list until every instance satisfies ``until``.

    Gently: the list is a high-cost read whose bucket refills 10 per simulated minute (10/s at scale 60).
    """
    return await eventually(
        lambda: list_vms(compute, scale_set),
        lambda vms: bool(vms) and all(until(vm) for vm in vms),
        timeout=timeout,
        interval=0.4,
    )


def scale_set_stats(stats: dict[str, Any], scale_set: ScaleSet) -> dict[str, Any]:
    """The scale set's entry of ``/_sim/stats`` (keys are ARM ids; compared case-insensitively)."""
    for arm_id, entry in stats["scaleSets"].items():
        if arm_id.lower() == scale_set.id.lower():
            return entry
    raise AssertionError(f"{scale_set.id} not in stats: {sorted(stats['scaleSets'])}")


def requests_about(entries: list[dict[str, Any]], scale_set_id: str) -> Counter[str]:
    """From audit entries: the ARM requests about one scale set, by REST operation. Those on its own paths name it;
    the status reads of its operations (``Operations_Get``) do not, and are found through its ``operation`` entries."""
    wanted = scale_set_id.lower()
    owned = {
        str(e["operationId"]).lower()
        for e in entries
        if e["kind"] == "operation" and str(e.get("scaleSet") or "").lower() == wanted
    }
    counted: Counter[str] = Counter()
    for entry in entries:
        if entry["kind"] != "request":
            continue
        operation_id = str(entry["path"]).rstrip("/").rsplit("/", 1)[-1].lower()
        if str(entry.get("scaleSet") or "").lower() == wanted or (
            entry["operation"] == "Operations_Get" and operation_id in owned
        ):
            counted[entry["operation"]] += 1
    return counted


def most_instances_updating_at_once(transitions: list[dict[str, Any]]) -> int:
    """From audit transitions (oldest first): the most instances that were ``Updating`` at the same moment."""
    updating: set[str] = set()
    most = 0
    for transition in transitions:
        if transition["to"] == "Updating":
            updating.add(transition["instanceId"])
        elif transition["from"] == "Updating":
            updating.discard(transition["instanceId"])
        most = max(most, len(updating))
    return most


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def plan_variables(simulator: Any) -> dict[str, str]:
    """The environment a person sets to point ``scaleset-image plan`` at the simulator (as ARM and as the token
    authority)."""
    return {
        "AZURE_TENANT_ID": TENANT_ID,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "AZURE_CLIENT_SECRET": "plan",
        "AZURE_AUTHORITY_HOST": simulator.url,
        "SCALESET_IMAGE_ARM_ENDPOINT": simulator.url,
        "SCALESET_IMAGE_CA_BUNDLE": str(simulator.ca_file),
    }


def run_plan(simulator: Any, manifest: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """``scaleset-image plan -f manifest`` as a person runs it, with ``plan_variables`` (``variables`` override or
    add environment variables)."""
    env = {**os.environ, **plan_variables(simulator), **variables}
    return subprocess.run(
        [sys.executable, "-m", "scaleset_image_operator.cli", "plan", "-f", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


REPO = Path(__file__).resolve().parents[2]
AZURE_CLI_INSTALL = REPO / "tools" / "azure-cli" / "install.sh"


def install_azure_cli() -> Path:
    """The ``az`` of the pinned azure-cli, installed once into a cached virtual environment of its own by
    tools/azure-cli/install.sh (outside uv.lock: azure-cli pins its own Azure SDK versions). Raises with the
    script's own error when it cannot."""
    proc = subprocess.run(["bash", str(AZURE_CLI_INSTALL)], capture_output=True, text=True, timeout=900, check=False)
    lines = proc.stdout.strip().splitlines()
    executable = Path(lines[-1]) if lines else Path()
    if proc.returncode != 0 or not executable.is_file():
        raise RuntimeError(
            f"{AZURE_CLI_INSTALL.relative_to(REPO)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
        )
    return executable


class AzureCliFailed(AssertionError):
    """An ``az`` command exited non-zero; the message has the command and what it printed."""


@dataclass(frozen=True)
class AzureCli:
    """The real Azure CLI as a person configures it for the simulator, with only the client-side settings Azure Stack
    users set: a private config folder (``AZURE_CONFIG_DIR``), the simulator's CA (``REQUESTS_CA_BUNDLE``) and MSAL
    instance discovery off (``AZURE_CORE_INSTANCE_DISCOVERY``: the simulator is not a known Entra host). Telemetry
    and survey prompts are off so that a command leaves nothing running after it."""

    executable: Path
    config_dir: Path
    ca_file: Path

    def environment(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.config_dir),
            "LANG": "C.UTF-8",
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
            "AZURE_CORE_INSTANCE_DISCOVERY": "false",
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_NO_COLOR": "true",
        }

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [str(self.executable), *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise AzureCliFailed(f"az {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
        return proc

    def json(self, *args: str) -> Any:
        """The command's ``--output json``, parsed."""
        return json.loads(self.run(*args, "--output", "json").stdout)
