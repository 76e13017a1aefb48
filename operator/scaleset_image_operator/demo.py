"""``scaleset-image demo`` (``make demo``): the rollout engine on a sample ScaleSetImage, shown live.

It starts the Azure simulator on a free loopback port with a 5-update-domain scale set in Manual upgrade
mode, and runs the operator's engine (the same reconciler the Kubernetes handlers call, with the real Azure
SDK and a real ``azure-identity`` credential over HTTPS) on a ScaleSetImage asking for a newer Ubuntu image,
until it is Ready. The terminal shows domains x instances as a grid (the vmsseditor heat map), a progress
bar and the Events the operator would post. Then, for contrast, the same model change on a scale set in
Automatic mode: every domain upgrades at once. A summary gives batches, time and Azure requests.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from azure.identity.aio import ClientSecretCredential

from .azure.gateway import AzureGateway, GatewayOptions
from .core.images import Image
from .core.observation import ScaleSetView
from .core.spec import HealthMode
from .core.status import instance_state
from .engine import LocalEngine, settled
from .reconciler import PassResult, Reconciler
from .settings import Settings
from .simulator import SimulatorConfig, SimulatorControl, SimulatorThread

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000d0"
RESOURCE_GROUP = "rg-demo"
PUBLISHER, OFFER, SKU = "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"
SOURCE_VERSION, TARGET_VERSION = "22.04.202409110", "22.04.202411010"

CELLS = {
    "pending": ("·", "\033[2m"),
    "upgrading": ("▒", "\033[33m"),
    "upgraded": ("█", "\033[32m"),
    "failed": ("✗", "\033[31m"),
    "unhealthy": ("✗", "\033[31m"),
}


def sample_manifest(name: str) -> dict[str, Any]:
    """The sample ScaleSetImage the demo applies (also what ``examples/`` shows)."""
    return {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {
            "scaleSet": {"subscriptionId": SUBSCRIPTION, "resourceGroup": RESOURCE_GROUP, "name": name},
            "image": {"platform": {"publisher": PUBLISHER, "offer": OFFER, "sku": SKU, "version": "latest"}},
            "rollout": {
                "strategy": "UpdateDomain",
                "pauseBetweenBatches": "2s",
                "healthCheck": {"mode": "Auto", "timeout": "10m"},
            },
        },
    }


def grid(view: ScaleSetView, target: Image, color: bool) -> list[str]:
    """One row per update domain, one cell per instance, coloured by the operator's view of it."""
    rows: dict[int, list[str]] = {}
    for instance in view.instances:
        glyph, ansi = CELLS[instance_state(instance, target, HealthMode.AUTO)]
        rows.setdefault(instance.update_domain or 0, []).append(f"{ansi}{glyph}\033[0m" if color else glyph)
    return [f"  UD {domain}  {' '.join(cells)}" for domain, cells in sorted(rows.items())]


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = round(width * done / max(1, total))
    return f"  [{'#' * filled}{'-' * (width - filled)}] {done}/{total} on the new image and healthy"


class Screen:
    """Redraws the live frame in place on a terminal; prints each changed frame otherwise."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self._drawn = 0
        self._last: list[str] = []

    def frame(self, lines: list[str]) -> None:
        if lines == self._last:
            return
        self._last = lines
        if self.live and self._drawn:
            self.out.write(f"\033[{self._drawn}F")
        for line in lines:
            self.out.write(f"\033[2K{line}\n" if self.live else f"{line}\n")
        self._drawn = len(lines) if self.live else 0
        self.out.flush()

    def say(self, text: str) -> None:
        self._drawn = 0
        self._last = []
        self.out.write(text + "\n")
        self.out.flush()


async def _operator_rollout(simulator: SimulatorThread, screen: Screen, color: bool) -> tuple[PassResult, int]:
    name = "vmss-web"
    settings = Settings(arm_endpoint=simulator.url, ca_bundle=simulator.ca_file, poll_seconds=0.25)
    ca = str(simulator.ca_file)
    async with ClientSecretCredential(
        "demo-tenant", "demo-client", "demo-secret", authority=simulator.url, connection_verify=ca
    ) as credential:
        gateway = AzureGateway(
            credential,
            GatewayOptions(arm_endpoint=simulator.url, arm_scope=settings.arm_scope, connection_verify=ca),
            clock=time.monotonic,
        )
        engine = LocalEngine(Reconciler(gateway, settings, time.time), sample_manifest(name))
        batches = 0

        def show(result: PassResult) -> None:
            nonlocal batches
            for event in result.events:
                if event.reason == "BatchStarted":
                    batches += 1
                if event.reason != "BatchSucceeded":
                    screen.say(f"   event {event.type:<7} {event.reason:<17} {event.message}")
            if result.observation is None or result.decision is None:
                return
            counts = result.status.get("instances") or {}
            screen.frame(
                [
                    f"   {name}   phase {result.status.get('phase')}",
                    *grid(result.observation.scale_set, result.decision.target, color),
                    progress_bar(int(counts.get("upgraded", 0)), int(counts.get("total", 0))),
                    f"  {result.status.get('message', '')[:110]}",
                ]
            )

        try:
            result = await engine.run(settled, timeout=120, on_pass=show, max_sleep=settings.poll_seconds)
        finally:
            await gateway.close()
    return result, batches


async def _automatic_contrast(simulator: SimulatorThread, control: SimulatorControl, screen: Screen) -> int:
    """The same model change on a scale set in Automatic mode, done the way people did before (PATCH only)."""
    from azure.core import MatchConditions
    from azure.mgmt.compute.aio import ComputeManagementClient
    from azure.mgmt.compute.models import VirtualMachineScaleSetUpdate

    name = "vmss-auto"
    ca = str(simulator.ca_file)
    async with (
        ClientSecretCredential(
            "demo-tenant", "demo-client", "demo-secret", authority=simulator.url, connection_verify=ca
        ) as credential,
        ComputeManagementClient(
            credential, SUBSCRIPTION, base_url=simulator.url, connection_verify=ca, polling_interval=0.2
        ) as client,
    ):
        current = await client.virtual_machine_scale_sets.get(RESOURCE_GROUP, name)
        patch = VirtualMachineScaleSetUpdate(
            {
                "properties": {
                    "virtualMachineProfile": {"storageProfile": {"imageReference": {"version": TARGET_VERSION}}}
                }
            }
        )
        poller = await client.virtual_machine_scale_sets.begin_update(
            RESOURCE_GROUP, name, patch, etag=current.etag, match_condition=MatchConditions.IfNotModified
        )
        await poller.result()
    worst = control.stats()["scaleSets"][current.id]["maxConcurrentDomains"]
    screen.say(
        f"   {name} (upgradePolicy Automatic): the same image change upgraded {worst} of 5 update domains "
        "at the same moment — the outage the operator exists to prevent."
    )
    return int(worst)


async def run_demo(
    *, instances: int = 15, time_scale: float = 30.0, live: bool = True, out: TextIO = sys.stdout
) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="scaleset-image-demo-"))
    screen = Screen(out, live)
    started = time.monotonic()
    try:
        with SimulatorThread(SimulatorConfig(port=0, ca_file=workdir / "sim-ca.pem", time_scale=time_scale)) as sim:
            control = SimulatorControl(sim.url, sim.ca_file)
            for name, policy in (("vmss-web", "Manual"), ("vmss-auto", "Automatic")):
                control.create_scale_set(
                    subscriptionId=SUBSCRIPTION,
                    resourceGroup=RESOURCE_GROUP,
                    name=name,
                    capacity=instances,
                    image={"publisher": PUBLISHER, "offer": OFFER, "sku": SKU, "version": SOURCE_VERSION},
                    upgradePolicy=policy,
                    upgradeSeconds=60,
                    healthWarmupSeconds=20,
                )
            screen.say(
                f"Azure simulator on {sim.url} (CA {sim.ca_file}), time x{time_scale:g}: "
                "one instance upgrade takes ~60 s of simulated time"
            )
            screen.say("legend: · old image   ▒ upgrading or warming up   █ new image, healthy   ✗ failed")
            screen.say(
                f"\n1. ScaleSetImage vmss-web: {PUBLISHER}:{OFFER}:{SKU}:latest, strategy UpdateDomain, pause 2s"
            )
            result, batches = await _operator_rollout(sim, screen, live)
            rollout_seconds = time.monotonic() - started
            screen.say("\n2. for contrast, no operator:")
            await _automatic_contrast(sim, control, screen)
            stats = control.stats()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    web = next(v for k, v in stats["scaleSets"].items() if k.endswith("/vmss-web"))
    counts = result.status.get("instances") or {}
    screen.say("\nsummary")
    screen.say(
        f"  result               phase {result.status.get('phase')}, {counts.get('upgraded')}/"
        f"{counts.get('total')} instances on {result.status.get('targetImage')}"
    )
    screen.say(f"  batches              {batches} (one update domain each), rollout took {rollout_seconds:.1f} s")
    screen.say(
        f"  ARM requests         {sum(stats['requests'].values())}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats["requests"].items()))
    )
    screen.say(
        f"  vmss-web safety      most update domains upgrading at once: {web['maxConcurrentDomains']}, "
        f"instances upgraded twice: {web['doubleUpgrades']}, model writes: {web['modelWrites']}"
    )
    ok = result.status.get("phase") == "Succeeded" and web["maxConcurrentDomains"] == 1 and web["doubleUpgrades"] == 0
    if not ok:
        screen.say("  the rollout did not end as expected: see above")
    return 0 if ok else 1
