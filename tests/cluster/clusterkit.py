"""Small helpers of the cluster suite: kubectl as a user runs it, the operator as a process, manifests, waits.

Nothing here talks to the Kubernetes API except through kubectl, and nothing reaches into the operator: it is
started as ``scaleset-image run`` with the service-account kubeconfig that ``deploy/`` RBAC binds, exactly as the
Deployment runs it. The fixtures that put these together live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "scaleset-image-system"
SERVICE_ACCOUNT = "scaleset-image-operator"
CRD = "scalesetimages.scaleset.dev"
APPROVE_ANNOTATION = "scaleset.dev/approve-batch"
ABORT_ANNOTATION = "scaleset.dev/abort"

JAMMY = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"}
JAMMY_VERSIONS = ("22.04.202409110", "22.04.202410020", "22.04.202411010")
"""Published by default in the simulator, oldest first; scale sets start on the oldest."""

T = TypeVar("T")


def new_scale_set(control: Any, *, capacity: int, update_domains: int, **options: Any) -> Any:
    """A scale set on the oldest Jammy image in a subscription of its own (resource group ``rg-cluster-tests``),
    created through the simulator's control API; ``options`` are further fields of ``POST /_sim/scalesets``."""
    from component.simkit import ScaleSet, jammy

    subscription, name = str(uuid.uuid4()), f"vmss-{uuid.uuid4().hex[:8]}"
    arm_id = control.create_scale_set(
        subscriptionId=subscription,
        resourceGroup="rg-cluster-tests",
        name=name,
        capacity=capacity,
        updateDomains=update_domains,
        image=jammy(),
        **options,
    )
    return ScaleSet(arm_id, name, "rg-cluster-tests", subscription, capacity)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(probe: Callable[[], T], until: Callable[[T], bool], *, timeout: float, interval: float = 0.5) -> T:
    """Calls ``probe`` until ``until`` holds for its result; fails with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s; last result: {result!r}")
        time.sleep(interval)


# --- kubectl ---------------------------------------------------------------------------------------------------------


class KubectlError(AssertionError):
    """kubectl exited non-zero where the test expected success."""


@dataclass(frozen=True)
class Kubectl:
    """kubectl with one kubeconfig, as a person at a terminal would run it."""

    kubeconfig: Path

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        argv = ["kubectl", f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise KubectlError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
        return proc

    def json(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.run(*args, "-o", "json").stdout))


# --- ScaleSetImage manifests -----------------------------------------------------------------------------------------


def jammy(version: str) -> dict[str, Any]:
    return {"platform": {**JAMMY, "version": version}}


def scale_set_image(
    name: str,
    namespace: str,
    scale_set: Any,
    *,
    image: Mapping[str, Any] | None = None,
    rollout: Mapping[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A ScaleSetImage for a simulator scale set: UpdateDomain, no pause, health Auto; pass only what differs."""
    return {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleSet": {
                "subscriptionId": scale_set.subscription_id,
                "resourceGroup": scale_set.resource_group,
                "name": scale_set.name,
            },
            "image": dict(image or jammy(JAMMY_VERSIONS[-1])),
            "rollout": {"strategy": "UpdateDomain", "pauseBetweenBatches": "0s", **(rollout or {})},
            **spec,
        },
    }


def condition(document: Mapping[str, Any], kind: str) -> dict[str, Any]:
    for item in (document.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


def is_ready(document: Mapping[str, Any]) -> bool:
    return condition(document, "Ready").get("status") == "True"


def phase(document: Mapping[str, Any]) -> str | None:
    return (document.get("status") or {}).get("phase")


def upgraded(document: Mapping[str, Any]) -> int:
    return int(((document.get("status") or {}).get("instances") or {}).get("upgraded") or 0)


def summary(document: Mapping[str, Any]) -> str:
    """One line for failure messages: phase, counts, batch, message."""
    status = document.get("status") or {}
    batch = (status.get("currentBatch") or {}).get("index")
    return (
        f"phase={status.get('phase')} upgraded={status.get('upgraded')} batch={batch} "
        f"ready={condition(document, 'Ready').get('status')} message={status.get('message')!r}"
    )


def until(
    read: Callable[[str], dict[str, Any]], name: str, what: Callable[[dict[str, Any]], bool], timeout: float = 60.0
) -> dict[str, Any]:
    """Polls ``read(name)`` (``kubectl get ssi NAME -o json``) until ``what`` holds; fails with a summary."""
    try:
        return eventually(lambda: read(name), what, timeout=timeout, interval=0.3)
    except AssertionError:
        raise AssertionError(f"ssi/{name} did not get there in {timeout:g} s: {summary(read(name))}") from None


def batch_in_flight(document: Mapping[str, Any], index: int) -> bool:
    """The rollout is upgrading batch ``index`` (its operation was started)."""
    batch = (document.get("status") or {}).get("currentBatch") or {}
    return phase(document) == "RollingOut" and batch.get("index") == index and bool(batch.get("startedAt"))


SAFETY_COUNTERS = ("upgrades", "doubleUpgrades", "maxConcurrentDomains", "modelWrites")


def counters(control: Any, scale_set: Any) -> dict[str, int]:
    """The simulator's counters for one scale set: upgrades, doubleUpgrades, maxConcurrentDomains, modelWrites."""
    for arm_id, entry in control.stats()["scaleSets"].items():
        if arm_id.lower() == scale_set.id.lower():
            return {key: int(entry[key]) for key in SAFETY_COUNTERS}
    raise AssertionError(f"{scale_set.id} is not in the simulator's stats")


# --- the operator as a process ---------------------------------------------------------------------------------------


@dataclass
class OperatorProcess:
    """One ``scaleset-image run`` replica; its stdout and stderr go to ``log_path``."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    identity: str
    lease_name: str
    health_port: int
    metrics_port: int
    argv: Sequence[str] = field(default_factory=tuple)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def health(self) -> dict[str, Any] | None:
        """What ``/healthz`` answers, or None when nothing answers."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as answer:
                return dict(json.loads(answer.read()))
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            if not self.alive:
                raise AssertionError(f"operator {self.identity} exited with {self.popen.returncode}:\n{self.log()}")
            return self.health()

        return dict(eventually(probe, lambda answer: answer is not None, timeout=timeout, interval=0.2) or {})

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as error:
            return f"<cannot read {self.log_path}: {error}>"

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, the Lease is not released."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return int(self.popen.returncode)


def start_operator_process(
    *,
    kubeconfig: Path,
    azure_env: Mapping[str, str],
    log_path: Path,
    identity: str,
    lease_name: str,
    extra_args: Sequence[str] = (),
) -> OperatorProcess:
    health_port, metrics_port = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "scaleset_image_operator.cli",
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--lease-namespace",
        OPERATOR_NAMESPACE,
        "--lease-name",
        lease_name,
        "--identity",
        identity,
        "--health-port",
        str(health_port),
        *extra_args,
    ]
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    env.update(azure_env)
    env["SCALESET_IMAGE_METRICS_PORT"] = str(metrics_port)
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent
        )
    return OperatorProcess(popen, log_path, identity, lease_name, health_port, metrics_port, argv)


def write_manifest(folder: Path, document: Mapping[str, Any]) -> Path:
    name = document["metadata"]["name"]
    path = folder / f"{name}-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False))
    return path


class Operators:
    """Starts ``scaleset-image run`` replicas for one test (or module) and stops them all afterwards."""

    def __init__(self, kubeconfig: Path, azure_env: Mapping[str, str], folder: Path, lease_name: str) -> None:
        self.kubeconfig = kubeconfig
        self.azure_env = dict(azure_env)
        self.folder = folder
        self.lease_name = lease_name
        self.started: list[OperatorProcess] = []

    def start(
        self, identity: str | None = None, *, lease: str | None = None, wait: bool = True, args: Sequence[str] = ()
    ) -> OperatorProcess:
        """A new replica; with ``wait``, returns once its ``/healthz`` answers."""
        identity = identity or f"replica-{len(self.started)}"
        process = start_operator_process(
            kubeconfig=self.kubeconfig,
            azure_env=self.azure_env,
            log_path=self.folder / f"operator-{len(self.started)}-{identity}.log",
            identity=identity,
            lease_name=lease or self.lease_name,
            extra_args=args,
        )
        self.started.append(process)
        if wait:
            process.wait_healthy()
        return process

    def terminate_all(self) -> None:
        """SIGTERM to every replica still running (the caller waits for them, and SIGKILLs the slow ones)."""
        for process in self.started:
            if process.alive:
                with contextlib.suppress(OSError):
                    process.popen.send_signal(signal.SIGTERM)

    def logs(self) -> str:
        return "".join(
            f"\n===== operator {p.identity} (exit {p.popen.returncode}) {p.log_path} =====\n{p.log()[-20000:]}"
            for p in self.started
        )


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call"))


class Reaper:
    """Waits for the replicas that tests have sent SIGTERM, SIGKILLing those still running after a grace period.

    kopf takes about 6 s to shut down; waiting at the end of the session instead of after each test keeps the
    suite short. Replicas stop watching at once on SIGTERM, so a stopping one never acts in a later test.
    """

    def __init__(self) -> None:
        self.stopping: list[OperatorProcess] = []

    def reap(self, grace: float = 20.0) -> None:
        deadline = time.monotonic() + grace
        for process in self.stopping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            process.kill()
        self.stopping.clear()


@contextlib.contextmanager
def operators_for(
    request: pytest.FixtureRequest, reaper: Reaper, kubeconfig: Path, azure_env: dict[str, str], folder: Path
) -> Iterator[Operators]:
    """Replicas for one test or module: sent SIGTERM afterwards (then SIGKILL, see :class:`Reaper`), their logs
    printed if a test using them failed."""
    failed_before = request.session.testsfailed
    operators = Operators(kubeconfig, azure_env, folder, f"ssi-test-{uuid.uuid4().hex[:8]}")
    try:
        yield operators
    finally:
        operators.terminate_all()
        reaper.stopping.extend(operators.started)
        if request.session.testsfailed > failed_before or _failed(request):
            print(operators.logs())


def restart_apiserver(control_plane: Any, kubectl: Kubectl, grace: float = 5.0) -> dict[str, float]:
    """Stops kube-apiserver (SIGTERM; SIGKILL after ``grace`` s) and starts it again with the same command line, port
    and etcd; returns how long stopping, starting and the whole outage took (seconds).

    The harness (tools/controlplane/harness.py) has no restart, so this swaps the kube-apiserver process it holds for
    a new one of the same class (its ``stop()`` then stops the new one). With the operator's watches open,
    kube-apiserver does not finish a graceful shutdown within 5 s; the short grace keeps the outage (about 7 s)
    below the operator's Lease renew deadline (10 s), beyond which the leader legitimately gives up leading.
    """
    processes = control_plane._processes
    index = next(i for i, p in enumerate(processes) if p.name == "kube-apiserver")
    old = processes[index]
    argv = [str(arg) for arg in old.popen.args]
    began = time.monotonic()
    old.stop(grace)
    stopped = time.monotonic()
    log = control_plane.work_dir / f"kube-apiserver-restart-{int(time.time() * 1000)}.log"
    processes[index] = new = type(old)("kube-apiserver", argv, log)

    def ready() -> bool:
        if new.exited() is not None:
            raise AssertionError(f"kube-apiserver exited after the restart:\n{new.tail()}")
        return kubectl.run("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0

    eventually(ready, bool, timeout=60, interval=0.2)
    ready_at = time.monotonic()
    return {"stop": stopped - began, "start": ready_at - stopped, "outage": ready_at - began}
