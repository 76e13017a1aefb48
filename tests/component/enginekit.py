"""Builders and readers for the rollout engine's component tests (``test_engine_*.py``).

The engine is built exactly as production wires it: a real ``ClientSecretCredential`` against the simulator's
token endpoint, the ``AzureGateway`` on the real Azure SDK over HTTPS, the ``Reconciler`` and a ``LocalEngine``
holding one ScaleSetImage manifest. Nothing is patched. What the engine did is read back from the simulator
(audit, stats) or through a real ``ComputeManagementClient``, never from the engine's own memory alone.

Neighbours: ``simkit.py`` (simulator constants, builders and waits) and ``tests/conftest.py`` (the session
simulator, the ``control``, ``scale_sets`` and ``compute`` fixtures).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, NamedTuple

from azure.identity.aio import ClientSecretCredential
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import CLIENT_ID, JAMMY_VERSIONS, TENANT_ID, ScaleSet, exact_version, jammy, list_vms
from scaleset_image_operator import wiring
from scaleset_image_operator.azure.gateway import AzureGateway
from scaleset_image_operator.engine import LocalEngine
from scaleset_image_operator.reconciler import PassResult, Reconciler
from scaleset_image_operator.settings import Settings
from scaleset_image_operator.simulator import SimulatorThread

TARGET_VERSION = JAMMY_VERSIONS[2]
"""The version rollouts move to; scale sets start on ``JAMMY_VERSIONS[0]``."""

POLL_SECONDS = 0.05
"""Seconds between passes while a rollout moves (the engine sleeps at most this)."""

RUN_TIMEOUT = 10.0
"""Real seconds a test waits for the engine to settle before calling it stuck (rollouts here take 1-3 s)."""

RETRY_AFTER_CAP = 5.0
"""Longest Retry-After (real seconds) the gateway waits inside one call."""

BUDGET_SHARE = 20.0
"""The operator's own request budget: 20 times Compute's limits, because the engine polls every 50 ms here
(Azure's throttling still applies: the simulator's buckets run on simulated time)."""


class Placement(NamedTuple):
    update_domain: int
    fault_domain: int
    zone: str | None


APPROVE = "scaleset.dev/approve-batch"
ABORT = "scaleset.dev/abort"


def ssi(
    scale_set: ScaleSet,
    *,
    image: dict[str, Any] | None = None,
    version: str = TARGET_VERSION,
    dry_run: bool = False,
    upgrade_policy: str = "Require",
    annotations: dict[str, str] | None = None,
    **rollout: Any,
) -> dict[str, Any]:
    """A ScaleSetImage manifest for ``scale_set``: Ubuntu 22.04 at ``version``, no pause between batches.

    ``rollout`` keys are the camelCase keys of ``spec.rollout``; pass only what differs from the default.
    """
    return {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {
            "name": scale_set.name,
            "namespace": "default",
            "generation": 1,
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "scaleSet": {
                "subscriptionId": scale_set.subscription_id,
                "resourceGroup": scale_set.resource_group,
                "name": scale_set.name,
            },
            "image": image if image is not None else {"platform": jammy(version)},
            "rollout": {"pauseBetweenBatches": "0s"} | rollout,
            "dryRun": dry_run,
            "upgradePolicy": upgrade_policy,
        },
    }


@contextlib.asynccontextmanager
async def gateway_on(simulator: SimulatorThread, settings: Settings | None = None) -> AsyncIterator[AzureGateway]:
    """The production AzureGateway on the simulator (a real ClientSecretCredential), closed afterwards."""
    settings = settings or Settings(
        arm_endpoint=simulator.url,
        ca_bundle=simulator.ca_file,
        retry_after_cap=RETRY_AFTER_CAP,
        budget_share=BUDGET_SHARE,
    )
    ca = str(simulator.ca_file)
    async with ClientSecretCredential(
        TENANT_ID, CLIENT_ID, "any-secret", authority=simulator.url, connection_verify=ca
    ) as credential:
        gateway = wiring.gateway(settings, credential)
        try:
            yield gateway
        finally:
            await gateway.close()


@contextlib.asynccontextmanager
async def engine_on(
    simulator: SimulatorThread,
    manifest: dict[str, Any],
    *,
    status_file: Path | None = None,
    retry_after_cap: float = RETRY_AFTER_CAP,
    image_cache_seconds: float = Settings.image_cache_seconds,
) -> AsyncIterator[LocalEngine]:
    """A LocalEngine driving ``manifest`` against the simulator, its credential and gateway closed afterwards.

    With ``status_file`` the engine starts from the status written there and writes each pass's status to it,
    as a restarted operator resumes from the custom resource's status. ``image_cache_seconds`` 0 makes every pass
    resolve ``latest`` or a gallery image definition afresh."""
    settings = Settings(
        arm_endpoint=simulator.url,
        ca_bundle=simulator.ca_file,
        poll_seconds=POLL_SECONDS,
        retry_after_cap=retry_after_cap,
        budget_share=BUDGET_SHARE,
        image_cache_seconds=image_cache_seconds,
    )
    async with gateway_on(simulator, settings) as gateway:
        yield LocalEngine(Reconciler(gateway, settings, time.time), manifest, status_file)


async def run_until(
    engine: LocalEngine,
    done: Callable[[PassResult], bool],
    *,
    timeout: float = RUN_TIMEOUT,
    passes: list[PassResult] | None = None,
) -> PassResult:
    """Runs the engine pass after pass until ``done``; every pass is appended to ``passes`` when given."""
    return await engine.run(
        done, timeout=timeout, max_sleep=POLL_SECONDS, on_pass=passes.append if passes is not None else None
    )


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """The condition of type ``kind`` (Ready, Progressing, Degraded); fails when there is none."""
    for entry in status.get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    raise AssertionError(f"no {kind} condition in {status.get('conditions')!r}")


def degraded(result: PassResult) -> tuple[str, str]:
    """(reason, message) of a True Degraded condition; fails when Degraded is not True."""
    entry = condition(result.status, "Degraded")
    assert entry["status"] == "True", f"not Degraded: {result.status.get('phase')}: {result.status.get('message')}"
    return str(entry["reason"]), str(entry["message"])


def has_started_batch(index: int) -> Callable[[PassResult], bool]:
    """A ``done`` for ``run_until``: the pass that started batch ``index`` (its manualUpgrade was sent)."""

    def started(result: PassResult) -> bool:
        current = result.status.get("currentBatch") or {}
        return current.get("index") == index and bool(current.get("operation"))

    return started


def requests_of(audit: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    """The audit's ARM requests of one REST operation id, oldest first."""
    return [e for e in audit if e.get("kind") == "request" and e.get("operation") == operation]


def count_requests(control: Any, scale_set: ScaleSet, operation: str) -> int:
    """How many ARM requests of ``operation`` on ``scale_set`` the simulator has answered."""
    return len(requests_of(control.audit(scaleSet=scale_set.name, kind="request"), operation))


def upgrade_starts(control: Any, scale_set: ScaleSet) -> list[dict[str, Any]]:
    """Every instance transition into ``Updating`` on ``scale_set``, oldest first."""
    return [
        e
        for e in control.audit(scaleSet=scale_set.name, kind="transition")
        if e.get("field") == "provisioning" and e.get("to") == "Updating"
    ]


async def placement(compute: ComputeManagementClient, scale_set: ScaleSet) -> dict[str, Placement]:
    """Where Azure put each instance, by instance id (one VM list, as the operator reads it)."""
    return {
        str(vm.instance_id): Placement(
            vm.properties.instance_view.platform_update_domain,
            vm.properties.instance_view.platform_fault_domain,
            (vm.zones or [None])[0],
        )
        for vm in await list_vms(compute, scale_set)
    }


async def model_version(compute: ComputeManagementClient, scale_set: ScaleSet) -> str | None:
    """The image version the scale set's model names now."""
    vmss = await compute.virtual_machine_scale_sets.get(scale_set.resource_group, scale_set.name)
    return vmss.virtual_machine_profile.storage_profile.image_reference.version


async def instance_versions(compute: ComputeManagementClient, scale_set: ScaleSet) -> dict[str, str | None]:
    """The image version each instance runs, by instance id."""
    return {str(vm.instance_id): exact_version(vm) for vm in await list_vms(compute, scale_set)}
