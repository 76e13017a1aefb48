"""The baseline: the 2016 "upgrade a VM scale set" procedure as it was scripted, on ``azure.mgmt.compute.aio``.

``vmssupgrade.py`` (gbowerman/vmsstools, 2016; the azurerm REST wrappers) did, for one update domain per run:

1. GET the scale set's model; if its image version differs from the new one, set it and PUT the whole model back;
2. list the scale set's VMs with their instance views and pick the instance ids of the update domain;
3. POST ``manualupgrade`` for them;
4. GET the scale set's instance view, sleep 5 s, and repeat until it reads ``ProvisioningState/succeeded``
   (the check comes before the sleep, so each run ends one interval after seeing success).

A person (or a shell loop) ran it once per update domain. This module runs it the same way, domain after domain,
with the same pause between domains as the operator is given, so that both have the same ideal time.

One difference, on purpose: the original looked only at the scale set's own ``statuses``. Today's Compute (and the
simulator) leave that at ``succeeded`` while instances upgrade, so that check would not wait at all and the next
domain would start while the previous one is down. This script also requires the instance view's
``virtualMachine.statusesSummary`` to read ``succeeded`` for every instance, which is what the original meant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceRequiredIDs

SUCCEEDED = "ProvisioningState/succeeded"


@dataclass(frozen=True)
class DomainRun:
    domain: int
    instance_ids: tuple[str, ...]
    upgrade_requested: float
    """Wall-clock time the manualupgrade POST returned."""
    seen_done: float
    """Wall-clock time the instance view first read succeeded."""
    polls: int


@dataclass
class BaselineRun:
    started: float
    finished: float = 0.0
    model_written: bool = False
    domains: list[DomainRun] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def _reads_succeeded(view: Mapping[str, Any]) -> bool:
    statuses = [str(s.get("code")) for s in view.get("statuses") or []]
    summary = [str(s.get("code")) for s in (view.get("virtualMachine") or {}).get("statusesSummary") or []]
    return SUCCEEDED in statuses and all(code == SUCCEEDED for code in summary)


async def upgrade_one_domain(
    compute: ComputeManagementClient,
    resource_group: str,
    name: str,
    new_version: str,
    domain: int,
    *,
    poll_seconds: float,
    clock: Callable[[], float],
) -> tuple[DomainRun, bool]:
    """One run of the script for one update domain; also says whether it wrote the model."""
    model = await compute.virtual_machine_scale_sets.get(resource_group, name)
    reference = model["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
    wrote = False
    if reference.get("version") != new_version:
        reference["version"] = new_version
        await compute.virtual_machine_scale_sets.begin_create_or_update(resource_group, name, model, polling=False)
        wrote = True
    views = [vm async for vm in compute.virtual_machine_scale_set_vms.list(resource_group, name, expand="instanceView")]
    ids = sorted(
        (
            str(vm["instanceId"])
            for vm in views
            if vm["properties"]["instanceView"].get("platformUpdateDomain") == domain
        ),
        key=lambda text: (len(text), text),
    )
    await compute.virtual_machine_scale_sets.begin_update_instances(
        resource_group, name, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=ids), polling=False
    )
    requested = clock()
    polls = 0
    seen_done = 0.0
    while not seen_done:
        view = await compute.virtual_machine_scale_sets.get_instance_view(resource_group, name)
        polls += 1
        if _reads_succeeded(view):
            seen_done = clock()
        await asyncio.sleep(poll_seconds)
    return DomainRun(domain, tuple(ids), requested, seen_done, polls), wrote


async def run_baseline(
    *,
    url: str,
    ca_file: Path,
    subscription_id: str,
    resource_group: str,
    name: str,
    new_version: str,
    domains: int,
    poll_seconds: float,
    pause_seconds: float,
    clock: Callable[[], float] = time.time,
) -> BaselineRun:
    """The script once per update domain ``0 .. domains-1``, with ``pause_seconds`` between runs."""
    run = BaselineRun(started=clock())
    credential = ClientSecretCredential(
        "72f988bf-86f1-41af-91ab-2d7cd011db47", "vmssupgrade", "baseline", authority=url, connection_verify=str(ca_file)
    )
    async with (
        credential,
        ComputeManagementClient(credential, subscription_id, base_url=url, connection_verify=str(ca_file)) as compute,
    ):
        for domain in range(domains):
            if domain:
                await asyncio.sleep(pause_seconds)
            record, wrote = await upgrade_one_domain(
                compute, resource_group, name, new_version, domain, poll_seconds=poll_seconds, clock=clock
            )
            run.model_written = run.model_written or wrote
            run.domains.append(record)
    run.finished = clock()
    return run
