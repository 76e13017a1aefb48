"""What deploy/ renders is what a real API server accepts, and the overlays change only what they say they change.

Every kustomization (deploy/base and each overlay under deploy/overlays, the monitoring component through its
overlay) is rendered with ``kubectl kustomize`` and sent with ``kubectl apply --dry-run=server``: the API server
validates every object (schemas, strict field validation, the NetworkPolicy and PodDisruptionBudget included), runs
admission, and persists nothing. It is the client-side apply that the README, docs/install.md and the session's
``kubectl`` fixture install with; a ``--server-side`` apply over objects a client-side apply created conflicts on the
fields the other field manager owns (the env ``fieldRef`` defaults, the last-applied annotation), which would test
the session's history rather than the manifests. The Prometheus Operator's ServiceMonitor and PrometheusRule cannot
be sent: this control plane has no monitoring.coreos.com CRDs (and none can be fetched offline), so those two get a
structural check against the Service they scrape instead; tests/observability runs the rules through promtool.

Pod Security: the API server's PodSecurity admission enforces ``restricted`` on Pods, not on Deployments (for those
it only warns), so the rendered pod template is created as a Pod (server dry run) in a namespace labelled
``pod-security.kubernetes.io/enforce=restricted``, once as rendered and once as AKS's workload-identity webhook
would mutate it; a deliberately non-compliant pod shows that the admission really refuses.
"""

from __future__ import annotations

import copy
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.clusterkit import OPERATOR_NAMESPACE, REPO, SERVICE_ACCOUNT, Kubectl, KubectlError

pytestmark = pytest.mark.cluster

DEPLOY = REPO / "deploy"
OVERLAYS = sorted(path.parent for path in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = [DEPLOY / "base", *OVERLAYS]
WORKLOAD_IDENTITY = DEPLOY / "overlays" / "aks-workload-identity"
CLIENT_SECRET = DEPLOY / "overlays" / "client-secret"
MONITORING = DEPLOY / "overlays" / "monitoring"
PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com"
OPERATOR_CONTAINER = "operator"

Document = dict[str, Any]


def label(path: Path) -> str:
    return str(path.relative_to(REPO))


def render(kubectl: Kubectl, kustomization: Path) -> list[Document]:
    """``kubectl kustomize`` of a folder, as documents."""
    return [doc for doc in yaml.safe_load_all(kubectl.run("kustomize", str(kustomization)).stdout) if doc]


def group_of(document: Document) -> str:
    api_version = str(document["apiVersion"])
    return api_version.split("/")[0] if "/" in api_version else ""


def one(documents: list[Document], kind: str, name: str | None = None) -> Document:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name or 'anything'} in the rendered manifests"
    return found[0]


def container(deployment: Document) -> Document:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == OPERATOR_CONTAINER)


def env_of(deployment: Document) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment).get("env", [])}


def write(folder: Path, documents: list[Document]) -> Path:
    path = folder / f"manifests-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def server_dry_run(kubectl: Kubectl, path: Path, *extra: str) -> str:
    """``kubectl apply --dry-run=server``: what the API server says (validation, defaults, admission), nothing
    persisted."""
    proc = kubectl.run("apply", "--dry-run=server", "-f", str(path), *extra)
    return proc.stdout + proc.stderr


@pytest.fixture
def restricted_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace where PodSecurity enforces (and warns about) the ``restricted`` profile."""
    name = f"psa-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", name)
    kubectl.run(
        "label",
        "namespace",
        name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/warn-version=latest",
    )
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def pod_from(deployment: Document, namespace: str) -> Document:
    """The Pod the Deployment's ReplicaSet would create, in ``namespace``."""
    template = copy.deepcopy(deployment["spec"]["template"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"operator-{uuid.uuid4().hex[:6]}", "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }


def as_workload_identity_webhook_mutates(pod: Document) -> Document:
    """The pod after AKS's workload-identity webhook: the projected token volume, its mount and the variables
    azure-identity reads (the webhook adds only those the container lacks)."""
    mutated = copy.deepcopy(pod)
    spec = mutated["spec"]
    spec.setdefault("volumes", []).append(
        {
            "name": "azure-identity-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": "api://AzureADTokenExchange",
                            "expirationSeconds": 3600,
                            "path": "azure-identity-token",
                        }
                    }
                ],
                "defaultMode": 420,
            },
        }
    )
    operator = next(c for c in spec["containers"] if c["name"] == OPERATOR_CONTAINER)
    operator.setdefault("volumeMounts", []).append(
        {"name": "azure-identity-token", "mountPath": "/var/run/secrets/azure/tokens", "readOnly": True}
    )
    present = {e["name"] for e in operator.get("env", [])}
    for name, value in (
        ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
        ("AZURE_TENANT_ID", "22222222-2222-2222-2222-222222222222"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ):
        if name not in present:
            operator.setdefault("env", []).append({"name": name, "value": value})
    return mutated


# --- every kustomization is accepted as rendered --------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=label)
def test_the_api_server_accepts_every_object_a_kustomization_renders(
    kubectl: Kubectl, kustomization: Path, tmp_path: Path
) -> None:
    documents = render(kubectl, kustomization)
    served = [d for d in documents if group_of(d) != PROMETHEUS_OPERATOR_GROUP]

    output = server_dry_run(kubectl, write(tmp_path, served))

    accepted = [line for line in output.splitlines() if line.endswith(" (server dry run)")]
    assert len(accepted) == len(served), output
    assert "Warning" not in output, output
    assert {d["kind"] for d in served} >= {"Deployment", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"}


def test_overlays_exist_for_workload_identity_a_client_secret_and_monitoring() -> None:
    assert {path.name for path in OVERLAYS} >= {"aks-workload-identity", "client-secret", "monitoring"}


def test_the_install_guide_s_preview_command_accepts_the_workload_identity_overlay(kubectl: Kubectl) -> None:
    proc = kubectl.run("apply", "--dry-run=server", "-k", str(WORKLOAD_IDENTITY))

    assert "deployment.apps/scaleset-image-operator configured (server dry run)" in proc.stdout
    assert "serviceaccount/scaleset-image-operator configured (server dry run)" in proc.stdout


def test_the_network_policy_admits_metrics_and_probes_and_lets_out_only_dns_the_api_server_and_https(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    documents = render(kubectl, DEPLOY / "base")
    policy = one(documents, "NetworkPolicy")
    deployment = one(documents, "Deployment")

    stored = yaml.safe_load(server_dry_run(kubectl, write(tmp_path, [policy]), "-o", "yaml"))

    spec = stored["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    ports = {(p["protocol"], p["port"]) for rule in spec["ingress"] for p in rule["ports"]}
    assert ports == {("TCP", 8080), ("TCP", 8081)}
    assert ports == {("TCP", p["containerPort"]) for p in container(deployment)["ports"]}
    assert all("from" not in rule for rule in spec["ingress"])
    egress = {(p["protocol"], p["port"]) for rule in spec["egress"] for p in rule["ports"]}
    assert egress == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)}


def test_the_disruption_budget_lets_a_drain_take_one_replica_of_two_at_a_time(kubectl: Kubectl, tmp_path: Path) -> None:
    documents = render(kubectl, DEPLOY / "base")
    budget = one(documents, "PodDisruptionBudget")
    deployment = one(documents, "Deployment")

    stored = yaml.safe_load(server_dry_run(kubectl, write(tmp_path, [budget]), "-o", "yaml"))

    assert deployment["spec"]["replicas"] == 2
    assert stored["spec"]["maxUnavailable"] == 1
    assert stored["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert stored["spec"]["selector"] == deployment["spec"]["selector"]


# --- Pod Security "restricted" --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=label)
def test_the_operator_pod_passes_pod_security_restricted(
    kubectl: Kubectl, kustomization: Path, restricted_namespace: str, tmp_path: Path
) -> None:
    deployment = one(render(kubectl, kustomization), "Deployment")
    deployment["metadata"]["namespace"] = restricted_namespace

    deployment_output = server_dry_run(kubectl, write(tmp_path, [deployment]))
    pod = kubectl.run(
        "create",
        "--dry-run=server",
        "-o",
        "yaml",
        "-f",
        str(write(tmp_path, [pod_from(deployment, restricted_namespace)])),
    )

    assert "PodSecurity" not in deployment_output, deployment_output
    assert "PodSecurity" not in pod.stderr, pod.stderr
    assert yaml.safe_load(pod.stdout)["kind"] == "Pod"


def test_the_workload_identity_pod_as_the_aks_webhook_mutates_it_passes_pod_security_restricted(
    kubectl: Kubectl, restricted_namespace: str, tmp_path: Path
) -> None:
    deployment = one(render(kubectl, WORKLOAD_IDENTITY), "Deployment")
    pod = as_workload_identity_webhook_mutates(pod_from(deployment, restricted_namespace))

    proc = kubectl.run("create", "--dry-run=server", "-f", str(write(tmp_path, [pod])))

    assert "created (server dry run)" in proc.stdout
    assert "PodSecurity" not in proc.stderr, proc.stderr


def test_pod_security_admission_refuses_an_operator_pod_that_may_escalate_privileges(
    kubectl: Kubectl, restricted_namespace: str, tmp_path: Path
) -> None:
    pod = pod_from(one(render(kubectl, DEPLOY / "base"), "Deployment"), restricted_namespace)
    next(c for c in pod["spec"]["containers"] if c["name"] == OPERATOR_CONTAINER)["securityContext"][
        "allowPrivilegeEscalation"
    ] = True

    with pytest.raises(KubectlError, match=r'violates PodSecurity "restricted:latest": allowPrivilegeEscalation'):
        kubectl.run("create", "--dry-run=server", "-f", str(write(tmp_path, [pod])))


# --- what the overlays change ---------------------------------------------------------------------------------------


def without(document: Document, *paths: tuple[str, ...]) -> Document:
    """A copy of ``document`` with the fields at ``paths`` removed (missing ones ignored)."""
    copied = copy.deepcopy(document)
    for path in paths:
        node = copied
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return copied


def test_the_workload_identity_overlay_annotates_the_service_account_the_pods_run_as(kubectl: Kubectl) -> None:
    documents = render(kubectl, WORKLOAD_IDENTITY)
    deployment = one(documents, "Deployment")
    account = one(documents, "ServiceAccount", deployment["spec"]["template"]["spec"]["serviceAccountName"])

    assert (account["metadata"]["name"], account["metadata"]["namespace"]) == (SERVICE_ACCOUNT, OPERATOR_NAMESPACE)
    assert account["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "replace-with-managed-identity-client-id"
    }
    assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert "azure.workload.identity/use" not in deployment["metadata"].get("labels", {})
    assert account.get("automountServiceAccountToken") is not False


def test_the_workload_identity_overlay_leaves_the_tenant_to_the_webhook(kubectl: Kubectl) -> None:
    """The webhook adds only the variables a container lacks: an AZURE_TENANT_ID in the Deployment (a placeholder
    left in place, or the wrong tenant) would override the one it injects, and sign-in would fail. Another tenant
    is named on the ServiceAccount (``azure.workload.identity/tenant-id``), where the webhook reads it."""
    documents = render(kubectl, WORKLOAD_IDENTITY)

    assert "AZURE_TENANT_ID" not in env_of(one(documents, "Deployment"))
    assert "replace-with-tenant-id" not in yaml.safe_dump_all(documents)


def test_the_workload_identity_overlay_changes_nothing_else_of_the_base(kubectl: Kubectl) -> None:
    base = {(d["kind"], d["metadata"]["name"]): d for d in render(kubectl, DEPLOY / "base")}
    overlay = {(d["kind"], d["metadata"]["name"]): d for d in render(kubectl, WORKLOAD_IDENTITY)}
    key = ("Deployment", "scaleset-image-operator")
    deployment = overlay[key]
    deployment["spec"]["template"]["metadata"]["labels"].pop("azure.workload.identity/use")
    account = ("ServiceAccount", SERVICE_ACCOUNT)
    overlay[account] = without(overlay[account], ("metadata", "annotations"))

    assert overlay == base


def test_the_client_secret_overlay_gives_azure_identity_its_environment_credential(kubectl: Kubectl) -> None:
    env = env_of(one(render(kubectl, CLIENT_SECRET), "Deployment"))

    assert env["AZURE_TENANT_ID"] == "replace-with-tenant-id"
    assert env["AZURE_CLIENT_ID"] == "replace-with-application-client-id"
    assert env["AZURE_CLIENT_SECRET"] == {
        "secretKeyRef": {"name": "scaleset-image-operator-azure", "key": "client-secret"}
    }


GUIDE = REPO / "docs" / "install.md"


def own_overlay_from_the_guide(folder: Path, client_id: str, registry: str) -> str:
    """The kustomization of docs/install.md step 7 (deploy/overlays/my-aks), as a shell would write it, with its
    paths made relative to ``folder`` and the monitoring component switched on as the guide says to."""
    heredoc = re.search(r"cat > deploy/overlays/my-aks/kustomization.yaml <<EOF\n(.*?)\nEOF\n", GUIDE.read_text(), re.S)
    assert heredoc, "docs/install.md has no 'cat > deploy/overlays/my-aks/kustomization.yaml <<EOF' block"
    text = heredoc.group(1).replace("$CLIENT_ID", client_id).replace("$ACR_SERVER", registry)
    assert "$" not in text, f"a shell variable the test does not fill in: {text}"
    text = re.sub(r"^# (components:)$", r"\1", text, flags=re.M)
    text = re.sub(r"^# {3}(- \S+).*$", r"  \1", text, flags=re.M)
    my_aks = DEPLOY / "overlays" / "my-aks"
    for relative in ("../../components/monitoring", "../aks-workload-identity"):
        text = text.replace(relative, os.path.relpath((my_aks / relative).resolve(), folder))
    return text


def test_the_install_guide_s_own_overlay_sets_the_identity_the_image_and_monitoring(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    client_id, registry = "11111111-1111-1111-1111-111111111111", "myregistry.azurecr.io"
    (tmp_path / "kustomization.yaml").write_text(own_overlay_from_the_guide(tmp_path, client_id, registry))

    documents = render(kubectl, tmp_path)

    assert "replace-with" not in yaml.safe_dump_all(documents)
    assert one(documents, "ServiceAccount")["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": client_id
    }
    deployment = one(documents, "Deployment")
    assert "AZURE_TENANT_ID" not in env_of(deployment), "the webhook injects the tenant; a value here would win"
    assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert container(deployment)["image"] == f"{registry}/scaleset-image-operator:0.1.0"
    assert {"ServiceMonitor", "PrometheusRule"} <= {d["kind"] for d in documents}


def test_the_install_guide_names_every_overlay_and_only_kustomizations_that_exist() -> None:
    guide = GUIDE.read_text()
    named = set(re.findall(r"(?:-k|kubectl kustomize) (deploy/[\w/-]+)", guide)) - {"deploy/overlays/my-aks"}

    assert named <= {label(path) for path in KUSTOMIZATIONS}, named
    assert [label(path) for path in OVERLAYS if label(path) not in guide] == []


def test_the_uninstall_command_finds_everything_the_overlay_installed(kubectl: Kubectl) -> None:
    installed = render(kubectl, WORKLOAD_IDENTITY)

    proc = kubectl.run("delete", "--dry-run=server", "-k", str(WORKLOAD_IDENTITY))

    deleted = [line for line in proc.stdout.splitlines() if line.endswith(" deleted (server dry run)")]
    assert len(deleted) == len(installed), proc.stdout + proc.stderr


# --- the monitoring component (no Prometheus Operator CRDs here) ----------------------------------------------------


def test_this_control_plane_has_no_prometheus_operator_crds_so_those_objects_are_checked_by_structure(
    kubectl: Kubectl,
) -> None:
    served = kubectl.run("api-resources", f"--api-group={PROMETHEUS_OPERATOR_GROUP}", "-o", "name").stdout.split()

    assert served == []


def test_the_service_monitor_scrapes_the_metrics_port_of_the_operator_service(kubectl: Kubectl) -> None:
    documents = render(kubectl, MONITORING)
    monitor = one(documents, "ServiceMonitor")
    service = one(documents, "Service")

    assert monitor["apiVersion"] == f"{PROMETHEUS_OPERATOR_GROUP}/v1"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"] == OPERATOR_NAMESPACE
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in port_names
    assert all(endpoint["path"] == "/metrics" for endpoint in monitor["spec"]["endpoints"])


def test_the_prometheus_rule_holds_alerts_each_with_an_expression_a_severity_and_a_runbook(kubectl: Kubectl) -> None:
    rule = one(render(kubectl, MONITORING), "PrometheusRule")

    assert rule["apiVersion"] == f"{PROMETHEUS_OPERATOR_GROUP}/v1"
    assert rule["metadata"]["namespace"] == OPERATOR_NAMESPACE
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]
    assert alerts
    for alert in alerts:
        assert alert["expr"].strip(), alert["alert"]
        assert alert["labels"]["severity"], alert["alert"]
        assert alert["annotations"].get("runbook_url") or alert["annotations"].get("runbook"), alert["alert"]


def test_the_monitoring_overlay_is_the_base_plus_the_component(kubectl: Kubectl) -> None:
    base = {(d["kind"], d["metadata"]["name"]) for d in render(kubectl, DEPLOY / "base")}
    monitoring = {(d["kind"], d["metadata"]["name"]) for d in render(kubectl, MONITORING)}

    assert {kind for kind, _ in monitoring - base} == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    assert base <= monitoring


def test_a_failed_apply_names_the_object_the_api_server_refused(kubectl: Kubectl, tmp_path: Path) -> None:
    """The dry run is a real check: a NetworkPolicy with an impossible port is refused."""
    policy = one(render(kubectl, DEPLOY / "base"), "NetworkPolicy")
    policy["spec"]["ingress"][0]["ports"][0]["port"] = 70000

    with pytest.raises(KubectlError, match=r"NetworkPolicy.*scaleset-image-operator.*Invalid value: 70000"):
        server_dry_run(kubectl, write(tmp_path, [policy]))
