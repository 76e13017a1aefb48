"""Crash safety: the rollout engine is SIGKILLed at random moments of rollouts and restarted, and the rollouts
still converge with no instance upgraded twice and never two update domains at once.

The engine runs as a real process (``scaleset-image reconcile``) with its status in a file, written once per
pass as the operator writes the custom resource's status; the simulator's safety counters are the judge.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

PUBLISHER, OFFER, SKU = "Contoso", "web-base", "2024-gen2"
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
SEED = 20261125
MIN_KILLS = 20


def manifest(subscription: str, name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {
            "scaleSet": {"subscriptionId": subscription, "resourceGroup": "rg-crash", "name": name},
            "image": {"platform": {"publisher": PUBLISHER, "offer": OFFER, "sku": SKU, "version": version}},
            "rollout": {"pauseBetweenBatches": "1s"},
        },
    }


def engine_env(simulator: SimulatorThread) -> dict[str, str]:
    return {
        **os.environ,
        "AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "AZURE_CLIENT_ID": "crash-test",
        "AZURE_CLIENT_SECRET": "not-a-secret",
        "AZURE_AUTHORITY_HOST": simulator.url,
        "SCALESET_IMAGE_ARM_ENDPOINT": simulator.url,
        "SCALESET_IMAGE_CA_BUNDLE": str(simulator.ca_file),
        "SCALESET_IMAGE_POLL_SECONDS": "0.2",
    }


def roll_with_kills(
    workdir: Path, simulator: SimulatorThread, document: dict[str, Any], rng: random.Random
) -> tuple[int, str]:
    """Run the engine until it exits on its own, killing it at random moments after it has made passes.
    Returns the number of kills that landed after at least one pass, and the final phase."""
    path = workdir / "ssi.yaml"
    path.write_text(yaml.safe_dump(document))
    status_file = workdir / "status.json"
    command = [
        sys.executable,
        "-m",
        "scaleset_image_operator.cli",
        "reconcile",
        "-f",
        str(path),
        "--status-file",
        str(status_file),
        "--timeout",
        "240",
    ]
    kills = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        process = subprocess.Popen(
            command, env=engine_env(simulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        passes_before_kill = rng.randint(1, 4)
        for seen, _line in enumerate(process.stdout, start=1):
            if seen >= passes_before_kill:
                time.sleep(rng.uniform(0.0, 0.3))
                break
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            kills += 1
            continue
        process.wait(timeout=10)
        assert process.stderr is not None
        errors = process.stderr.read()
        assert process.returncode == 0, f"engine exited {process.returncode}: {errors[-2000:]}"
        return kills, json.loads(status_file.read_text())["phase"]
    raise AssertionError("the rollout did not converge within 300 s of kills")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkilled_engines_converge_without_double_upgrades_or_two_domains_at_once(
    simulator: SimulatorThread, control: SimulatorControl, subscription_id: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    control.publish_image(publisher=PUBLISHER, offer=OFFER, sku=SKU, versions=VERSIONS)
    name = f"vmss-crash-{rng.randrange(10**6)}"
    arm_id = control.create_scale_set(
        subscriptionId=subscription_id,
        resourceGroup="rg-crash",
        name=name,
        capacity=10,
        image={"publisher": PUBLISHER, "offer": OFFER, "sku": SKU, "version": VERSIONS[0]},
        upgradeSeconds=240,
        healthWarmupSeconds=30,
    )
    total_kills = 0
    rollouts = 0
    for version in VERSIONS[1:]:
        kills, phase = roll_with_kills(tmp_path, simulator, manifest(subscription_id, name, version), rng)
        rollouts += 1
        total_kills += kills
        assert phase == "Succeeded"
        if total_kills >= MIN_KILLS:
            break
    counters = control.stats()["scaleSets"][arm_id]
    print(f"crash safety: seed {SEED}, {rollouts} rollouts, {total_kills} kills after a pass, {counters}")
    assert total_kills >= MIN_KILLS
    assert counters["doubleUpgrades"] == 0
    assert counters["maxConcurrentDomains"] == 1
    assert counters["upgrades"] == 10 * rollouts
    assert counters["modelWrites"] == rollouts
