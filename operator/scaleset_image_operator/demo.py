"""``scaleset-image demo`` (``make demo``): the rollout engine on sample ScaleSetImages, shown live.

It starts the Azure simulator on a free loopback port with three 5-update-domain scale sets and shows three
scenes, each as a grid of domains x instances (the vmsseditor heat map) redrawn as Azure reports changes:

1. the operator's engine (the same reconciler the Kubernetes handlers call, with the real Azure SDK and a real
   ``azure-identity`` credential over HTTPS) rolls ``vmss-web`` (Manual mode) onto a newer Ubuntu image, one
   update domain at a time, with the Events the operator would post;
2. for contrast, the same image change on ``vmss-auto`` in Automatic mode, made the way people did before (one
   PATCH of the model): every domain upgrades at once;
3. a domain fails: the simulator's fault API fails the upgrade of one domain's instances of ``vmss-api``, and the
   operator halts the rollout there, naming them.

A summary gives each scale set's outcome, the safety counters and its ARM requests, all read from the simulator.
Every line fits the terminal's width (``shutil.get_terminal_size``: the terminal, or ``COLUMNS``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from azure.core import MatchConditions
from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetUpdate

from .azure.gateway import AzureGateway, GatewayOptions
from .core.images import Image
from .core.spec import HealthMode, ScaleSetRef
from .core.status import instance_state
from .demoview import (
    LEGEND,
    domain_states,
    grid,
    progress_bar,
    request_lines,
    request_tally,
    upgrading_domains,
    usable,
    wrap,
)
from .engine import LocalEngine, settled
from .reconciler import PassResult, Reconciler
from .settings import Settings
from .simulator import SimulatorConfig, SimulatorControl, SimulatorThread

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000d0"
RESOURCE_GROUP = "rg-demo"
PUBLISHER, OFFER, SKU = "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"
SOURCE_VERSION, TARGET_VERSION = "22.04.202409110", "22.04.202411010"
TARGET = Image.platform(PUBLISHER, OFFER, SKU, TARGET_VERSION)
UPDATE_DOMAINS = 5
FAILING_DOMAIN = 1
"""The update domain whose upgrades fail in scene 3: the second, so the first shows what a good batch looks like."""
WEB, AUTO, API = "vmss-web", "vmss-auto", "vmss-api"
POLL_SECONDS = 0.25
SCENE_TIMEOUT = 120.0


def sample_manifest(name: str, **rollout: Any) -> dict[str, Any]:
    """A sample ScaleSetImage the demo applies (also what ``examples/`` shows); ``rollout`` adds or overrides
    fields of ``spec.rollout``."""
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
            }
            | rollout,
        },
    }


def failing_instances(instances: int) -> list[str]:
    """The instances of ``FAILING_DOMAIN``: Azure puts instance k of a regional scale set in update domain k mod 5."""
    return [str(k) for k in range(instances) if k % UPDATE_DOMAINS == FAILING_DOMAIN]


class Screen:
    """Redraws the live frame in place on a terminal; prints each changed frame otherwise. Every line is fitted to
    ``width()`` (read at each frame, so a resized terminal gets lines of its new width from then on)."""

    def __init__(self, out: TextIO, live: bool, width: Callable[[], int]) -> None:
        self.out = out
        self.live = live
        self._width = width
        self._drawn = 0
        self._last: list[str] = []

    @property
    def width(self) -> int:
        return usable(self._width())

    def frame(self, lines: list[str]) -> None:
        """``lines`` no wider than ``width`` (the cursor goes back up one row per line)."""
        if lines == self._last:
            return
        self._last = lines
        if self.live and self._drawn:
            self.out.write(f"\033[{self._drawn}F")
        for line in lines:
            self.out.write(f"\033[2K{line}\n" if self.live else f"{line}\n")
        self._drawn = len(lines) if self.live else 0
        self.out.flush()

    def say(self, text: str = "", hang: int = 2) -> None:
        self._drawn = 0
        self._last = []
        for line in wrap(text, self.width, hang):
            self.out.write(line + "\n")
        self.out.flush()


@dataclass(frozen=True)
class Rollout:
    """How one ScaleSetImage's rollout ended in the demo."""

    result: PassResult
    batches: int
    seconds: float

    @property
    def phase(self) -> str:
        return str(self.result.status.get("phase"))

    @property
    def reason(self) -> str:
        conditions = self.result.status.get("conditions") or []
        for condition in conditions:
            if condition.get("type") == "Degraded" and condition.get("status") == "True":
                return str(condition.get("reason", ""))
        return ""


@dataclass(frozen=True)
class DemoOutcome:
    web: Rollout
    api: Rollout
    automatic_domains: int
    """The most update domains of ``vmss-auto`` upgrading at the same moment (the simulator's counter)."""
    stats: Mapping[str, Any]
    """The simulator's ``/_sim/stats`` at the end, the summary's source."""

    def scale_set(self, name: str) -> Mapping[str, Any]:
        return next(v for k, v in self.stats["scaleSets"].items() if k.lower().endswith(f"/{name}"))

    @property
    def ok(self) -> bool:
        """The operator's promises held: one domain at a time, nothing upgraded twice, and the failure halted."""
        web, api = self.scale_set(WEB), self.scale_set(API)
        return (
            self.web.phase == "Succeeded"
            and self.api.phase == "Halted"
            and web["maxConcurrentDomains"] == 1
            and api["maxConcurrentDomains"] == 1
            and web["doubleUpgrades"] == 0
            and api["doubleUpgrades"] == 0
        )


def _arm_id(name: str) -> str:
    return ScaleSetRef(SUBSCRIPTION, RESOURCE_GROUP, name).arm_id


async def _operator_rollout(
    gateway: AzureGateway, settings: Settings, manifest: dict[str, Any], screen: Screen, color: bool
) -> Rollout:
    """The engine on ``manifest`` until it settles, a frame drawn after each pass that observed the scale set."""
    name = str(manifest["metadata"]["name"])
    engine = LocalEngine(Reconciler(gateway, settings, time.time), manifest)
    batches = 0
    started = time.monotonic()

    def show(result: PassResult) -> None:
        nonlocal batches
        for event in result.events:
            if event.reason == "BatchStarted":
                batches += 1
            if event.reason != "BatchSucceeded":
                screen.say(f"   event {event.type:<7} {event.reason:<17} {event.message}", hang=33)
        if result.observation is None or result.decision is None:
            return
        view, target = result.observation.scale_set, result.decision.target
        counts = result.status.get("instances") or {}
        width = screen.width
        screen.frame(
            [
                *wrap(
                    f"   {name}   phase {result.status.get('phase')}   "
                    f"update domains upgrading now: {upgrading_domains(view, target)}",
                    width,
                ),
                *grid(view, target, width, color),
                progress_bar(int(counts.get("upgraded", 0)), int(counts.get("total", 0)), width),
                *wrap(f"  {result.status.get('message', '')}", width),
            ]
        )

    result = await engine.run(settled, timeout=SCENE_TIMEOUT, on_pass=show, max_sleep=settings.poll_seconds)
    return Rollout(result, batches, time.monotonic() - started)


async def _automatic_contrast(
    simulator: SimulatorThread, credential: ClientSecretCredential, gateway: AzureGateway, screen: Screen, color: bool
) -> None:
    """The same model change on a scale set in Automatic mode, done the way people did before (one PATCH), watched
    by listing its instances as a person would (``az vmss list-instances``) until every one is on the new image."""
    ref = ScaleSetRef(SUBSCRIPTION, RESOURCE_GROUP, AUTO)
    ca = str(simulator.ca_file)
    async with ComputeManagementClient(
        credential, SUBSCRIPTION, base_url=simulator.url, connection_verify=ca, polling_interval=POLL_SECONDS
    ) as client:
        current = await client.virtual_machine_scale_sets.get(RESOURCE_GROUP, AUTO)
        patch = VirtualMachineScaleSetUpdate(
            {
                "properties": {
                    "virtualMachineProfile": {"storageProfile": {"imageReference": {"version": TARGET_VERSION}}}
                }
            }
        )
        poller = await client.virtual_machine_scale_sets.begin_update(
            RESOURCE_GROUP, AUTO, patch, etag=current.etag, match_condition=MatchConditions.IfNotModified
        )
        # The SDK's poller only polls while awaited: a task of its own lets the instances be drawn meanwhile.
        finished = asyncio.ensure_future(poller.result())
        deadline = time.monotonic() + SCENE_TIMEOUT
        try:
            while True:
                view = (await gateway.observe(ref, None)).scale_set
                states = [state for row in domain_states(view, TARGET).values() for state in row]
                width = screen.width
                screen.frame(
                    [
                        *wrap(
                            f"   {AUTO}   upgradePolicy Automatic   "
                            f"update domains upgrading now: {upgrading_domains(view, TARGET)}",
                            width,
                        ),
                        *grid(view, TARGET, width, color),
                        progress_bar(states.count("upgraded"), len(states), width),
                        *wrap(f"  the PATCH's operation: {poller.status()}", width),
                    ]
                )
                if finished.done() and states.count("upgraded") == len(states):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{AUTO}: not every instance on the new image after {SCENE_TIMEOUT:g}s")
                await asyncio.sleep(POLL_SECONDS)
        except BaseException:
            finished.cancel()
            raise
        await finished


async def show_demo(
    simulator: SimulatorThread, control: SimulatorControl, screen: Screen, *, instances: int = 15
) -> DemoOutcome:
    """The three scenes and the summary against a running simulator (``run_demo`` starts one)."""
    live_color = screen.live
    for name, policy in ((WEB, "Manual"), (AUTO, "Automatic"), (API, "Manual")):
        control.create_scale_set(
            subscriptionId=SUBSCRIPTION,
            resourceGroup=RESOURCE_GROUP,
            name=name,
            capacity=instances,
            updateDomains=UPDATE_DOMAINS,
            image={"publisher": PUBLISHER, "offer": OFFER, "sku": SKU, "version": SOURCE_VERSION},
            upgradePolicy=policy,
            upgradeSeconds=60,
            healthWarmupSeconds=20,
        )
    time_scale = control.clock()["timeScale"]
    screen.say(
        f"Azure simulator on {simulator.url} (CA {simulator.ca_file}), time x{time_scale:g}: "
        "one instance upgrade takes ~60 s of simulated time"
    )
    screen.say(LEGEND)
    settings = Settings(arm_endpoint=simulator.url, ca_bundle=simulator.ca_file, poll_seconds=POLL_SECONDS)
    ca = str(simulator.ca_file)
    async with ClientSecretCredential(
        "demo-tenant", "demo-client", "demo-secret", authority=simulator.url, connection_verify=ca
    ) as credential:
        gateway = AzureGateway(
            credential,
            GatewayOptions(arm_endpoint=simulator.url, arm_scope=settings.arm_scope, connection_verify=ca),
            clock=time.monotonic,
        )
        try:
            screen.say()
            screen.say(f"1. ScaleSetImage {WEB}: {PUBLISHER}:{OFFER}:{SKU}:latest, strategy UpdateDomain, pause 2s")
            web = await _operator_rollout(gateway, settings, sample_manifest(WEB), screen, live_color)

            screen.say()
            screen.say(f"2. for contrast, no operator: the same change on {AUTO}, in Automatic mode")
            await _automatic_contrast(simulator, credential, gateway, screen, live_color)
            worst = control.stats()["scaleSets"][_arm_id(AUTO)]["maxConcurrentDomains"]
            screen.say(
                f"   {AUTO}: one PATCH of the model, and Azure upgraded {worst} of {UPDATE_DOMAINS} update domains "
                "at the same moment: the outage the operator exists to prevent."
            )

            failing = failing_instances(instances)
            control.inject_fault(
                kind="fail-upgrade",
                match={"path": f"{re.escape(_arm_id(API))}$"},
                instanceIds=failing,
                count=len(failing),
            )
            screen.say()
            screen.say(
                f"3. a domain fails: the simulator will fail the upgrade of {API}'s update domain {FAILING_DOMAIN} "
                f"(instances {', '.join(failing)}; fault fail-upgrade); ScaleSetImage {API}, onFailure Halt",
                hang=3,
            )
            api = await _operator_rollout(gateway, settings, sample_manifest(API, onFailure="Halt"), screen, live_color)
            control.clear_faults()
            screen.say(
                f"   {API}: halted after update domain {FAILING_DOMAIN}; the domains after it were never touched. "
                "Fix the cause, then change any spec field to retry (onFailure: Rollback would have put the "
                "previous image back on the domains already upgraded, in reverse order)."
            )
        finally:
            await gateway.close()
    outcome = DemoOutcome(web, api, int(worst), control.stats())
    _summary(outcome, screen)
    return outcome


def _failed_names(rollout: Rollout) -> str:
    """The instances a halted rollout names, as Azure names them (``{scale set}_{id}``)."""
    observation = rollout.result.observation
    if observation is None or rollout.result.decision is None:
        return str(rollout.result.status.get("message", ""))
    view, target = observation.scale_set, rollout.result.decision.target
    bad = [
        f"{view.name}_{i.instance_id}"
        for i in view.instances
        if instance_state(i, target, HealthMode.AUTO) in ("failed", "unhealthy")
    ]
    return f"{', '.join(bad)} failed"


def _summary(outcome: DemoOutcome, screen: Screen) -> None:
    web, api = outcome.web, outcome.api
    done, halted = web.result.status.get("instances") or {}, api.result.status.get("instances") or {}
    screen.say()
    screen.say("summary")
    screen.say(
        f"  {WEB:<13} {web.phase}: {done.get('upgraded')}/{done.get('total')} instances on the new image and "
        f"healthy, {web.batches} batches of one update domain in {web.seconds:.1f} s",
        hang=16,
    )
    screen.say(
        f"  {AUTO:<13} Automatic mode: {outcome.automatic_domains} of {UPDATE_DOMAINS} update domains upgrading "
        "at the same moment",
        hang=16,
    )
    screen.say(
        f"  {API:<13} {api.phase} ({api.reason}) at update domain {FAILING_DOMAIN}: {_failed_names(api)}; "
        f"{halted.get('upgraded')} upgraded, {halted.get('pending')} left on the old image",
        hang=16,
    )
    screen.say()
    screen.say("  safety, from the simulator's counters:")
    screen.say(f"  {'':<13} {'most domains at once':>20} {'upgraded twice':>15} {'model writes':>13}", hang=0)
    for name in (WEB, AUTO, API):
        counters = outcome.scale_set(name)
        screen.say(
            f"  {name:<13} {counters['maxConcurrentDomains']:>20} {counters['doubleUpgrades']:>15} "
            f"{counters['modelWrites']:>13}",
            hang=0,
        )
    screen.say()
    tally = request_tally(outcome.stats, {_arm_id(name): name for name in (WEB, AUTO, API)})
    for line in request_lines(tally, screen.width):
        screen.say(line, hang=0)
    screen.say(
        f"  ({AUTO}'s include the reads that drew its grid, a scale set GET and a VM list each)",
        hang=3,
    )
    if not outcome.ok:
        screen.say("  the demo did not end as expected: see above")


async def run_demo(
    *,
    instances: int = 15,
    time_scale: float = 30.0,
    live: bool = True,
    out: TextIO = sys.stdout,
    width: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="scaleset-image-demo-"))
    screen = Screen(out, live, width)
    try:
        with SimulatorThread(SimulatorConfig(port=0, ca_file=workdir / "sim-ca.pem", time_scale=time_scale)) as sim:
            outcome = await show_demo(sim, SimulatorControl(sim.url, sim.ca_file), screen, instances=instances)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if outcome.ok else 1
