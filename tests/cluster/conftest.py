"""Fixtures of the cluster suite: a real kube-apiserver + etcd for the session, ``deploy/base`` applied once, and
the operator as a real process with the service-account token that ``deploy/`` RBAC binds.

One control plane per session (tools/controlplane/harness.py); each test gets a fresh namespace (never waited
for on deletion: there is no namespace controller), a Lease name of its own (so a replica of an earlier test can
never hold it) and the session's Azure simulator (tests/conftest.py). People act through kubectl with the admin
kubeconfig; the operator acts only through its service account.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.clusterkit import (
    CRD,
    OPERATOR_NAMESPACE,
    REPO,
    SERVICE_ACCOUNT,
    Kubectl,
    Operators,
    Reaper,
    operators_for,
    write_manifest,
)
from scaleset_image_operator.simulator import SimulatorThread

sys.path.insert(0, str(REPO / "tools" / "controlplane"))

import harness


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: runs against a real kube-apiserver + etcd with the operator as a process"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def control_plane() -> Iterator[harness.ControlPlane]:
    with harness.ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def kubectl(control_plane: harness.ControlPlane) -> Kubectl:
    """kubectl as the cluster's administrator (a person applying, steering and reading ScaleSetImages)."""
    admin = Kubectl(control_plane.kubeconfig)
    admin.run("apply", "-k", str(REPO / "deploy" / "base"))
    admin.run("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
    return admin


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: harness.ControlPlane, kubectl: Kubectl) -> Path:
    """A bound token of the ServiceAccount that deploy/base ships: the operator has what deploy/ RBAC grants."""
    return control_plane.service_account_kubeconfig(OPERATOR_NAMESPACE, SERVICE_ACCOUNT, create=False)


@pytest.fixture(scope="session")
def operator_kubectl(operator_kubeconfig: Path) -> Kubectl:
    return Kubectl(operator_kubeconfig)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace; its ScaleSetImages are deleted afterwards so later operators do not resume them."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "scalesetimages", "--all", "-n", name, "--wait=false", check=False)
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def azure_env(simulator: SimulatorThread) -> dict[str, str]:
    """The operator's Azure configuration: the simulator as ARM and as the token authority."""
    return {
        "AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "AZURE_CLIENT_ID": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "AZURE_CLIENT_SECRET": "cluster-tests",
        "AZURE_AUTHORITY_HOST": simulator.url,
        "SCALESET_IMAGE_ARM_ENDPOINT": simulator.url,
        "SCALESET_IMAGE_CA_BUNDLE": str(simulator.ca_file),
        "SCALESET_IMAGE_POLL_SECONDS": "0.3",
    }


@pytest.fixture(scope="session")
def reaper() -> Iterator[Reaper]:
    """Operators that tests stopped are awaited (SIGKILL after a grace period) at the end of the session."""
    reaper = Reaper()
    yield reaper
    reaper.reap()


@pytest.fixture
def operators(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[Operators]:
    """``operators.start(identity=None, lease=None, wait=True, args=())`` starts a ``scaleset-image run`` replica
    with the service-account kubeconfig, a Lease name of this test's own, free health and metrics ports and a log
    file in ``tmp_path``; all get SIGTERM when the test ends (SIGKILL at the end of the session if still running)."""
    with operators_for(request, reaper, operator_kubeconfig, azure_env, tmp_path) as fleet:
        yield fleet


@pytest.fixture
def apply(kubectl: Kubectl, tmp_path: Path) -> Callable[[dict[str, Any]], Any]:
    """``kubectl apply -f`` a manifest written to a file, as a user would; raises when kubectl fails."""

    def apply_(document: dict[str, Any], *, check: bool = True) -> Any:
        return kubectl.run("apply", "-f", str(write_manifest(tmp_path, document)), check=check)

    return apply_


@pytest.fixture
def read_ssi(kubectl: Kubectl, namespace: str) -> Callable[[str], dict[str, Any]]:
    """The ScaleSetImage as ``kubectl get ssi NAME -o json`` shows it."""

    def read(name: str) -> dict[str, Any]:
        return kubectl.json("get", "ssi", name, "-n", namespace)

    return read
