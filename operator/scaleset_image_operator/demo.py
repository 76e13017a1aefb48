"""``scaleset-image demo`` (``make demo``): a whole image rollout against the Azure simulator, shown live.

It starts the simulator on a free loopback port, creates a 5-update-domain scale set in Manual upgrade
mode, and rolls it onto a newer Ubuntu image the way the 2016 Azure procedure does, through the real Azure
SDK with a real ``azure-identity`` credential: read the model, change only the image (PATCH with
``If-Match``), then ``manualupgrade`` one update domain at a time, waiting until that domain runs the new
model and is healthy before the next. A second scale set in Automatic mode gets the same model change, to
show the outage the domain-by-domain procedure avoids. The terminal shows domains x instances as a grid.

This is wiring for people, not the operator: the operator's engine will drive the same rollout.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from azure.core import MatchConditions
from azure.core.polling import AsyncLROPoller
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetUpdate

from .simulator import SimulatorConfig, SimulatorControl, SimulatorThread

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000d0"
RESOURCE_GROUP = "rg-demo"
SOURCE = {
    "publisher": "Canonical",
    "offer": "0001-com-ubuntu-server-jammy",
    "sku": "22_04-lts-gen2",
    "version": "22.04.202409110",
}
TARGET_VERSION = "22.04.202411010"

CELLS = {
    "pending": ("·", "\033[2m"),
    "upgrading": ("▒", "\033[33m"),
    "warming": ("◔", "\033[36m"),
    "done": ("█", "\033[32m"),
    "failed": ("✗", "\033[31m"),
}


@dataclass(frozen=True)
class InstanceState:
    instance_id: str
    update_domain: int
    state: str


def classify(vm: Any) -> InstanceState:
    """Reduce one VMSS VM (listed with its instance view) to what the grid shows."""
    view = vm.instance_view
    provisioning = str(vm.provisioning_state or "")
    health = (view.vm_health.status.code if view and view.vm_health and view.vm_health.status else "") or ""
    if provisioning == "Failed" or health == "HealthState/unhealthy":
        state = "failed"
    elif provisioning in ("Updating", "Creating"):
        state = "upgrading"
    elif not vm.latest_model_applied:
        state = "pending"
    elif health in ("HealthState/initializing", "HealthState/unknown"):
        state = "warming"
    else:
        state = "done"
    return InstanceState(str(vm.instance_id), int(view.platform_update_domain if view else 0), state)


def grid(states: Sequence[InstanceState], title: str, color: bool) -> list[str]:
    """The vmsseditor heat map in a terminal: one row per update domain, one cell per instance."""
    lines = [title]
    domains = sorted({s.update_domain for s in states})
    for domain in domains:
        cells = []
        for state in sorted((s for s in states if s.update_domain == domain), key=lambda s: int(s.instance_id)):
            glyph, ansi = CELLS[state.state]
            cells.append(f"{ansi}{glyph}\033[0m" if color else glyph)
        lines.append(f"  UD {domain}  {' '.join(cells)}")
    done = sum(1 for s in states if s.state == "done")
    width = 30
    filled = round(width * done / max(1, len(states)))
    lines.append(f"  [{'#' * filled}{'-' * (width - filled)}] {done}/{len(states)} on the new image and healthy")
    return lines


class Screen:
    """Redraws the grid in place on a terminal; prints only changes otherwise."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self._drawn = 0
        self._last: list[str] = []

    def show(self, lines: list[str], status: str) -> None:
        frame = [*lines, f"  {status}"]
        if frame == self._last:
            return
        self._last = frame
        if self.live:
            if self._drawn:
                self.out.write(f"\033[{self._drawn}F")
            for line in frame:
                self.out.write(f"\033[2K{line}\n")
            self._drawn = len(frame)
        else:
            self.out.write("\n".join(frame) + "\n")
        self.out.flush()

    def say(self, text: str) -> None:
        self._drawn = 0
        self._last = []
        self.out.write(text + "\n")
        self.out.flush()


async def _observe(client: ComputeManagementClient, name: str) -> list[InstanceState]:
    return [
        classify(vm)
        async for vm in client.virtual_machine_scale_set_vms.list(RESOURCE_GROUP, name, expand="instanceView")
    ]


async def _change_image(client: ComputeManagementClient, name: str) -> AsyncLROPoller[Any]:
    """PATCH only the image version, guarded by the etag just read."""
    current = await client.virtual_machine_scale_sets.get(RESOURCE_GROUP, name)
    patch = VirtualMachineScaleSetUpdate(
        {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": TARGET_VERSION}}}}}
    )
    return await client.virtual_machine_scale_sets.begin_update(
        RESOURCE_GROUP, name, patch, etag=current.etag, match_condition=MatchConditions.IfNotModified
    )


async def _roll_domain_by_domain(client: ComputeManagementClient, screen: Screen, color: bool) -> int:
    """Manual mode: one update domain at a time, each awaited and health-checked before the next."""
    name = "vmss-web"
    screen.say(
        f"\n1. {name} (upgradePolicy Manual): change the model's image, then manualupgrade one update domain at a time"
    )
    updated = await (await _change_image(client, name)).result()
    etag = updated.etag
    states = await _observe(client, name)
    screen.say(
        f"   model now {SOURCE['publisher']}:{SOURCE['offer']}:{SOURCE['sku']}:{TARGET_VERSION} "
        f"(etag {etag}); every instance reports latestModelApplied=false"
    )
    batches = 0
    for domain in sorted({s.update_domain for s in states}):
        ids = [s.instance_id for s in states if s.update_domain == domain and s.state != "done"]
        if not ids:
            continue
        batches += 1
        poller = await client.virtual_machine_scale_sets.begin_update_instances(
            RESOURCE_GROUP, name, {"instanceIds": ids}
        )
        operation = asyncio.ensure_future(poller.result())
        while True:
            states = await _observe(client, name)
            mine = [s for s in states if s.update_domain == domain]
            if any(s.state == "failed" for s in mine):
                screen.say(f"   update domain {domain} failed: the procedure stops here")
                operation.cancel()
                return 1
            screen.show(
                grid(states, f"   {name}", color), f"upgrading update domain {domain}: instances {', '.join(ids)}"
            )
            if operation.done() and all(s.state == "done" for s in mine):
                break
            await asyncio.sleep(0.25)
        await operation
    screen.show(grid(states, f"   {name}", color), f"done: {batches} batches, one update domain each")
    return 0


async def _automatic_contrast(client: ComputeManagementClient, screen: Screen, color: bool) -> None:
    name = "vmss-auto"
    screen.say(f"\n2. {name} (upgradePolicy Automatic): the same model change upgrades every domain at once")
    poller = await _change_image(client, name)
    model_change = asyncio.ensure_future(poller.result())
    worst = 0
    for _ in range(400):
        states = await _observe(client, name)
        down = {s.update_domain for s in states if s.state == "upgrading"}
        worst = max(worst, len(down))
        screen.show(grid(states, f"   {name}", color), f"{len(down)} update domains down at the same moment")
        if all(s.state == "done" for s in states):
            break
        await asyncio.sleep(0.25)
    await model_change
    screen.say(f"   at worst {worst} of 5 update domains were upgrading at once: that is the outage.")


async def run_demo(
    *, instances: int = 15, time_scale: float = 30.0, live: bool = True, out: TextIO = sys.stdout
) -> int:
    color = live
    workdir = Path(tempfile.mkdtemp(prefix="scaleset-image-demo-"))
    config = SimulatorConfig(port=0, ca_file=workdir / "sim-ca.pem", time_scale=time_scale)
    screen = Screen(out, live)
    started = time.monotonic()
    with SimulatorThread(config) as simulator:
        control = SimulatorControl(simulator.url, simulator.ca_file)
        for name, policy in (("vmss-web", "Manual"), ("vmss-auto", "Automatic")):
            control.create_scale_set(
                subscriptionId=SUBSCRIPTION,
                resourceGroup=RESOURCE_GROUP,
                name=name,
                capacity=instances,
                image=SOURCE,
                upgradePolicy=policy,
                upgradeSeconds=60,
                healthWarmupSeconds=20,
            )
        screen.say(
            f"Azure simulator on {simulator.url} (CA {simulator.ca_file}), time x{time_scale:g}: "
            f"one instance upgrade takes ~60 s of simulated time"
        )
        screen.say("legend: · old image   ▒ upgrading   ◔ warming up   █ new image, healthy   ✗ failed")
        ca = str(simulator.ca_file)
        async with (
            ClientSecretCredential(
                "demo-tenant", "demo-client", "demo-secret", authority=simulator.url, connection_verify=ca
            ) as credential,
            ComputeManagementClient(
                credential, SUBSCRIPTION, base_url=simulator.url, connection_verify=ca, polling_interval=0.2
            ) as client,
        ):
            status = await _roll_domain_by_domain(client, screen, color)
            if status == 0:
                await _automatic_contrast(client, screen, color)
        stats = control.stats()
        per_set = {key.rsplit("/", 1)[1]: value for key, value in stats["scaleSets"].items()}
    shutil.rmtree(workdir, ignore_errors=True)
    screen.say("\nsummary")
    screen.say(f"  wall time            {time.monotonic() - started:.1f} s")
    screen.say(
        f"  ARM requests         {sum(stats['requests'].values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(stats['requests'].items()))})"
    )
    screen.say(f"  writes / throttled   {stats['writes']} / {stats['throttled']}")
    for name in ("vmss-web", "vmss-auto"):
        numbers = per_set.get(name, {})
        screen.say(
            f"  {name:<20} most update domains upgrading at once: {numbers.get('maxConcurrentDomains')}, "
            f"instances upgraded twice: {numbers.get('doubleUpgrades')}"
        )
    safe = per_set.get("vmss-web", {}).get("maxConcurrentDomains") == 1 and stats["doubleUpgrades"] == 0
    screen.say(
        "  domain-by-domain rollout kept all but one update domain serving throughout."
        if safe
        else "  SAFETY VIOLATION: see the counters above"
    )
    return status if safe else 1
