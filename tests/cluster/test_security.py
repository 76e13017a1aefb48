"""Security as a person deploying the operator would check it: transport, secrets, permissions, the container.

- ``scaleset-image run`` refuses a plain-http Azure Resource Manager endpoint at start, saying that https is
  required: azure-core sends bearer tokens over TLS only, so there is no opt-in that could work.
- TLS is verified by default: without ``SCALESET_IMAGE_CA_BUNDLE`` the operator does not trust the simulator's CA,
  gets no token and sends nothing to ARM, and says why in the ScaleSetImage's status.
- Secrets never leak: after a real rollout and failure paths (Azure refusing the identity with 403, every issued
  token revoked), nothing the operator emitted (its plain and its JSON log, the Events, the status, ``/metrics``)
  holds the client secret, an access token the identity provider issued, a JWT, or a bearer credential.
- The ServiceAccount of deploy/ may not read Secrets or touch workloads, RBAC, namespaces or other namespaces'
  Leases; it may do what it needs (a matrix complementing tests/cluster/test_rbac_as_shipped.py's list comparison).
- Every container deploy/ renders (base and every overlay) runs as the image's non-root user with a read-only root
  filesystem, without privilege escalation or capabilities.

The secret and TLS checks run against a simulator of this module's own whose identity provider remembers every
access token it issues, so the search is for the exact tokens, not only for their shape; revoking tokens there
disturbs no other test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.clusterkit import (
    JAMMY_VERSIONS,
    OPERATOR_NAMESPACE,
    Kubectl,
    OperatorProcess,
    Reaper,
    condition,
    eventually,
    free_port,
    is_ready,
    operators_for,
    scale_set_image,
    summary,
    write_manifest,
)
from cluster.test_deploy_manifests import KUSTOMIZATIONS, label, render
from component.simkit import HEALTH_WARMUP_SECONDS, TIME_SCALE, UPGRADE_SECONDS, ScaleSet, jammy
from scaleset_image_operator.simulator import SimulatorConfig, SimulatorControl, SimulatorThread
from scaleset_image_operator.simulator.auth import TokenAuthority
from unit.test_dockerfile import IMAGE_USER

pytestmark = pytest.mark.cluster

RESOURCE_GROUP = "rg-security"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
BEARER = re.compile(r"bearer\s+(?![a-z_]+=)[A-Za-z0-9._~+/-]{8,}", re.IGNORECASE)
"""A bearer credential ("Bearer <token>"), not a challenge ('Bearer authorization_uri="..."', logged by -v)."""
AUTHORIZATION_VALUE = re.compile(r"authorization['\"]?\s*[:=]\s*['\"]?(?!redacted)[A-Za-z0-9]", re.IGNORECASE)
"""An Authorization header with a value, other than azure-core's "REDACTED" (its HTTP log at -v)."""


# --- a simulator of this module's own -------------------------------------------------------------------------------


class RecordingAuthority(TokenAuthority):
    """The simulator's identity provider, remembering every access token it issues."""

    def __init__(self, lifetime_seconds: float) -> None:
        super().__init__(lifetime_seconds)
        self.tokens: list[str] = []

    def issue(self, tenant: str, client_id: str, audience: str) -> dict[str, Any]:
        answer = super().issue(tenant, client_id, audience)
        self.tokens.append(str(answer["access_token"]))
        return answer


@dataclass(frozen=True)
class PrivateAzure:
    thread: SimulatorThread
    control: SimulatorControl
    authority: RecordingAuthority
    secret: str
    """The client secret the operator is given (unique, so any copy of it is found)."""
    subscription: str

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {
            **base,
            "AZURE_AUTHORITY_HOST": self.thread.url,
            "SCALESET_IMAGE_ARM_ENDPOINT": self.thread.url,
            "SCALESET_IMAGE_CA_BUNDLE": str(self.thread.ca_file),
            "AZURE_CLIENT_SECRET": self.secret,
        }

    def scale_set(self, capacity: int = 2) -> ScaleSet:
        name = f"vmss-{uuid.uuid4().hex[:8]}"
        arm_id = self.control.create_scale_set(
            subscriptionId=self.subscription,
            resourceGroup=RESOURCE_GROUP,
            name=name,
            capacity=capacity,
            updateDomains=2,
            upgradeSeconds=UPGRADE_SECONDS,
            healthWarmupSeconds=HEALTH_WARMUP_SECONDS,
            image=jammy(),
        )
        return ScaleSet(arm_id, name, RESOURCE_GROUP, self.subscription, capacity)


@pytest.fixture(scope="module")
def private_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateAzure]:
    config = SimulatorConfig(
        host="127.0.0.1",
        port=0,
        ca_file=tmp_path_factory.mktemp("private-simulator") / "ca.pem",
        time_scale=TIME_SCALE,
    )
    thread = SimulatorThread(config)
    authority = RecordingAuthority(config.token_lifetime)
    thread.simulator.tokens = authority
    with thread:
        yield PrivateAzure(
            thread,
            SimulatorControl(thread.url, thread.ca_file),
            authority,
            f"client-secret-{uuid.uuid4().hex}",
            str(uuid.uuid4()),
        )


def read(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return kubectl.json("get", "ssi", name, "-n", namespace)


# --- plain http is refused ----------------------------------------------------------------------------------------


def refused_configurations(endpoint: str) -> dict[str, tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]]:
    """name: (environment, flags, what the error must say)."""
    refusal = ("SCALESET_IMAGE_ARM_ENDPOINT", f"{endpoint!r} is plain http: https is required")
    return {
        "an http endpoint in the environment": ({"SCALESET_IMAGE_ARM_ENDPOINT": endpoint}, (), refusal),
        "an http endpoint as --arm-endpoint": ({}, ("--arm-endpoint", endpoint), refusal),
    }


def test_a_plain_http_arm_endpoint_is_refused_at_start_saying_https_is_required(
    operator_kubeconfig: Path, azure_env: dict[str, str]
) -> None:
    """``scaleset-image run`` as the Deployment runs it, once per configuration (all at once: each exits at start)."""
    base = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | azure_env
    cases = refused_configurations(f"http://127.0.0.1:{free_port()}")
    started = {
        name: subprocess.Popen(
            [
                *(sys.executable, "-m", "scaleset_image_operator.cli", "run"),
                *("--kubeconfig", str(operator_kubeconfig), "--health-port", str(free_port())),
                *flags,
            ],
            env=base | env | {"SCALESET_IMAGE_METRICS_PORT": str(free_port())},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (env, flags, _) in cases.items()
    }
    for name, process in started.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode != 0, f"{name}: started anyway:\n{out}{err}"
        for text in cases[name][2]:
            assert text in err, f"{name}: the error does not say {text!r}:\n{err}"
        assert "Traceback" not in err, f"{name}:\n{err}"
        assert len(err.strip().splitlines()) == 1, f"{name}: more than one line:\n{err}"
        assert "allow" not in err.lower(), f"{name}: the error offers an opt-in that cannot work:\n{err}"


# --- TLS is verified by default -------------------------------------------------------------------------------------


def test_without_a_ca_bundle_the_operator_does_not_trust_the_simulator_and_sends_it_nothing(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    private_azure: PrivateAzure,
    namespace: str,
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in private_azure.env(azure_env).items() if k != "SCALESET_IMAGE_CA_BUNDLE"}
    scale_set = private_azure.scale_set()
    issued = len(private_azure.authority.tokens)
    with operators_for(request, reaper, operator_kubeconfig, env, tmp_path) as operators:
        operators.start("no-ca", args=("--namespace", namespace))
        kubectl.run("apply", "-f", str(write_manifest(tmp_path, scale_set_image("web", namespace, scale_set))))

        # AuthFailed at once: a new credential would not trust the certificate either, so none is requested (the
        # attempt takes a few seconds: azure-core retries a failed connection with a backoff).
        document = eventually(
            lambda: read(kubectl, namespace, "web"),
            lambda doc: condition(doc, "Degraded").get("reason") in ("AzureTokenRefused", "AuthFailed"),
            timeout=60,
            interval=0.3,
        )

    assert private_azure.control.audit(scaleSet=scale_set.name) == [], "an ARM request reached the simulator"
    assert len(private_azure.authority.tokens) == issued, "a token was issued over an unverified connection"
    degraded = condition(document, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "AuthFailed")
    assert "TLS: the server's certificate is not trusted; set SCALESET_IMAGE_CA_BUNDLE" in degraded["message"], (
        f"the status does not say that the authority's certificate is not trusted: {degraded['message']!r}"
    )
    assert "certificate verify failed" in degraded["message"].lower() and "refused" not in degraded["message"]


# --- secrets never leak ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emitted:
    """Everything one operator run put where people and tools can read it."""

    log_format: str
    operator: OperatorProcess
    texts: dict[str, str]


def metrics_page(operator: OperatorProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def rollout_and_failures(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    operator_kubeconfig: Path,
    env: dict[str, str],
    private_azure: PrivateAzure,
    folder: Path,
    log_format: str,
) -> Emitted:
    """A real rollout; every token revoked, then the next rollout (the operator must get a fresh token and go on);
    then Azure refusing the identity (403 on the scale set). The operator runs with ``--log-format`` and
    ``--verbose``: a person debugging sees the most, HTTP headers included."""
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", namespace)
    scale_set = private_azure.scale_set()
    control = private_azure.control

    def wait(what: str, until: Any) -> dict[str, Any]:
        try:
            return eventually(lambda: read(kubectl, namespace, "web"), until, timeout=60, interval=0.3)
        except AssertionError:
            raise AssertionError(f"{log_format}: {what}: {summary(read(kubectl, namespace, 'web'))}") from None

    def on(version: str) -> Any:
        return lambda doc: is_ready(doc) and str((doc.get("status") or {}).get("modelImage")).endswith(version)

    def apply(version: str, pause: str = "0s") -> None:
        document = scale_set_image("web", namespace, scale_set, image={"platform": {**jammy(), "version": version}})
        document["spec"]["rollout"]["pauseBetweenBatches"] = pause
        kubectl.run("apply", "-f", str(write_manifest(folder, document)))

    try:
        with operators_for(request, reaper, operator_kubeconfig, env, folder) as operators:
            operator = operators.start(log_format, args=("--namespace", namespace, "--log-format", log_format, "-v"))
            apply(JAMMY_VERSIONS[1])
            wait("the first rollout did not finish", on(JAMMY_VERSIONS[1]))

            issued = len(private_azure.authority.tokens)
            control.revoke_tokens()
            apply(JAMMY_VERSIONS[2])
            wait("the rollout after the revocation did not finish", on(JAMMY_VERSIONS[2]))
            assert len(private_azure.authority.tokens) > issued, f"{log_format}: no fresh token after the revocation"

            control.inject_fault(
                kind="error",
                status=403,
                code="AuthorizationFailed",
                match={"method": "GET", "path": re.escape(scale_set.id)},
                count=-1,
            )
            apply(JAMMY_VERSIONS[2], pause="1s")
            wait(
                "a 403 was not reported",
                lambda doc: "AuthorizationFailed" in str(condition(doc, "Degraded").get("message")),
            )
            control.clear_faults()

            texts = {
                "events": kubectl.run("get", "events", "-n", namespace, "-o", "json").stdout,
                "scalesetimage": kubectl.run("get", "ssi", "web", "-n", namespace, "-o", "json").stdout,
                "metrics": metrics_page(operator),
                "healthz": json.dumps(operator.health()),
            }
            assert "scalesetimage_azure_requests_total" in texts["metrics"]
    finally:
        kubectl.run("delete", "ssi", "--all", "-n", namespace, "--wait=false", check=False)
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
    return Emitted(log_format, operator, texts)


@pytest.fixture(scope="module")
def emitted(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    private_azure: PrivateAzure,
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Emitted]:
    env = private_azure.env(azure_env)
    runs = [
        rollout_and_failures(
            request,
            reaper,
            kubectl,
            operator_kubeconfig,
            env,
            private_azure,
            tmp_path_factory.mktemp(f"secrets-{log_format}"),
            log_format,
        )
        for log_format in ("plain", "json")
    ]
    for run in runs:  # sent SIGTERM when its scenario ended: its shutdown is logged too
        run.operator.popen.wait(30)
        run.texts["log"] = run.operator.log()
    return runs


def test_the_runs_exercised_the_identity_and_emitted_what_the_search_covers(
    emitted: list[Emitted], private_azure: PrivateAzure
) -> None:
    assert len(private_azure.authority.tokens) >= 4, "each run gets a token, and a new one after the revocation"
    for run in emitted:
        events = run.texts["events"]
        assert all(reason in events for reason in ("BatchStarted", "AzureTokenRefused")), run.log_format
        assert "AuthorizationFailed" in run.texts["scalesetimage"]
        assert "scalesetimage_" in run.texts["metrics"]
    json_lines = [line for line in emitted[1].texts["log"].splitlines() if line.startswith("{")]
    assert json_lines and all(isinstance(json.loads(line), dict) for line in json_lines)


@pytest.mark.parametrize("where", ["log", "events", "scalesetimage", "metrics", "healthz"])
def test_nothing_the_operator_emits_holds_the_client_secret_a_token_or_a_bearer_credential(
    where: str, emitted: list[Emitted], private_azure: PrivateAzure
) -> None:
    for run in emitted:
        text = run.texts[where]
        context = f"{run.log_format} run, {where}"
        assert private_azure.secret not in text, f"{context}: the client secret"
        for token in private_azure.authority.tokens:
            signature = token.rsplit(".", 1)[-1]
            assert token not in text and signature not in text, f"{context}: an access token the simulator issued"
        assert not JWT.search(text), f"{context}: a JWT: {JWT.search(text)}"
        assert not BEARER.search(text), f"{context}: a bearer credential: {BEARER.search(text)}"
        assert not AUTHORIZATION_VALUE.search(text), (
            f"{context}: an Authorization value: {AUTHORIZATION_VALUE.search(text)}"
        )


# --- what the ServiceAccount may do ---------------------------------------------------------------------------------

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
FORBIDDEN_NAMESPACED = (
    ("", "secrets"),
    ("", "configmaps"),
    ("", "pods"),
    ("apps", "deployments"),
    ("", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
)
FORBIDDEN_CLUSTER = (
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("", "namespaces"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
)
NEEDED = (
    ("scaleset.dev", "scalesetimages", "", ("get", "list", "watch", "patch"), "test"),
    ("scaleset.dev", "scalesetimages", "status", ("patch",), "test"),
    ("", "events", "", ("create",), "test"),
    ("coordination.k8s.io", "leases", "", ("get", "create", "update"), OPERATOR_NAMESPACE),
)


def access_reviews(operator_kubectl: Kubectl, questions: list[dict[str, str]]) -> list[bool]:
    """The answers to SelfSubjectAccessReviews asked as the operator's ServiceAccount: what ``kubectl auth can-i``
    asks, one review per question, posted in one kubectl call."""
    reviews = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": question},
            }
            for question in questions
        ],
    }
    answer = operator_kubectl.run("create", "-f", "-", "-o", "json", input=json.dumps(reviews)).stdout
    decoder, position, allowed = json.JSONDecoder(), 0, []
    while answer[position:].strip():  # kubectl prints one JSON document per review, one after the other
        item, end = decoder.raw_decode(answer, len(answer) - len(answer[position:].lstrip()))
        allowed.append(bool(item["status"].get("allowed")))
        position = end
    assert len(allowed) == len(questions), answer[-2000:]
    return allowed


def test_the_service_account_may_not_touch_secrets_workloads_rbac_or_namespaces_anywhere(
    operator_kubectl: Kubectl, namespace: str
) -> None:
    questions = [
        {"namespace": where, "verb": verb, "group": group, "resource": resource}
        for where in (namespace, OPERATOR_NAMESPACE, "kube-system", "")
        for group, resource in FORBIDDEN_NAMESPACED
        for verb in VERBS
    ]
    questions += [
        {"namespace": "", "verb": verb, "group": group, "resource": resource}
        for group, resource in FORBIDDEN_CLUSTER
        for verb in VERBS
    ]
    questions += [
        {"namespace": where, "verb": verb, "group": "coordination.k8s.io", "resource": "leases"}
        for where in (namespace, "kube-system", "")
        for verb in VERBS
    ]
    questions += [
        {"namespace": OPERATOR_NAMESPACE, "verb": verb, "group": "coordination.k8s.io", "resource": "leases"}
        for verb in ("list", "watch", "patch", "delete")
    ]

    allowed = [q for q, yes in zip(questions, access_reviews(operator_kubectl, questions), strict=True) if yes]

    assert allowed == [], f"{len(allowed)} of {len(questions)} forbidden actions are allowed: {allowed[:10]}"


def test_the_service_account_may_do_what_the_operator_needs(operator_kubectl: Kubectl, namespace: str) -> None:
    questions = [
        {
            "namespace": namespace if where == "test" else where,
            "verb": verb,
            "group": group,
            "resource": resource,
            "subresource": subresource,
        }
        for group, resource, subresource, verbs, where in NEEDED
        for verb in verbs
    ]

    denied = [q for q, yes in zip(questions, access_reviews(operator_kubectl, questions), strict=True) if not yes]

    assert denied == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("get", "secrets", "--all-namespaces"), "no"),
        (("watch", "configmaps", "-n", OPERATOR_NAMESPACE), "no"),
        (("patch", "deployments.apps", "-n", OPERATOR_NAMESPACE), "no"),
        (("update", "leases.coordination.k8s.io", "-n", "kube-system"), "no"),
        (("patch", "scalesetimages.scaleset.dev", "--subresource=status", "-n", "default"), "yes"),
        (("update", "leases.coordination.k8s.io", "-n", OPERATOR_NAMESPACE), "yes"),
    ],
)
def test_kubectl_auth_can_i_agrees_with_the_matrix(
    operator_kubectl: Kubectl, args: tuple[str, ...], expected: str
) -> None:
    answer = operator_kubectl.run("auth", "can-i", *args, check=False)

    assert answer.stdout.strip() == expected, answer.stdout + answer.stderr


# --- the containers deploy/ runs --------------------------------------------------------------------------------------

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"}


def pod_specs(documents: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for document in documents:
        if document["kind"] not in WORKLOADS:
            continue
        spec = document["spec"]
        if document["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if document["kind"] != "Pod":
            spec = spec["template"]["spec"]
        found.append((f"{document['kind']}/{document['metadata']['name']}", spec))
    return found


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=label)
def test_every_container_runs_as_the_non_root_image_user_on_a_read_only_root_filesystem(
    kubectl: Kubectl, kustomization: Path
) -> None:
    uid, gid = (int(part) for part in IMAGE_USER.split(":"))
    workloads = pod_specs(render(kubectl, kustomization))
    assert workloads, f"{label(kustomization)} renders no workload"
    for workload, pod in workloads:
        pod_context = pod.get("securityContext") or {}
        assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True, workload
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            where = f"{label(kustomization)} {workload} container {container['name']}"
            context = container.get("securityContext") or {}

            effective = {**pod_context, **context}  # a container's setting overrides the pod's

            assert effective.get("runAsNonRoot") is True, where
            assert effective.get("runAsUser") in (None, uid), where
            assert effective.get("runAsGroup") in (None, gid), where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("privileged") is not True, where
            assert (context.get("capabilities") or {}).get("drop") == ["ALL"], where
            assert not (context.get("capabilities") or {}).get("add"), where
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v], f"{workload} mounts a host path"


def test_the_rendered_manifests_carry_no_secret_values(kubectl: Kubectl) -> None:
    for kustomization in KUSTOMIZATIONS:
        text = yaml.safe_dump_all(render(kubectl, kustomization))
        assert "kind: Secret" not in text, f"{label(kustomization)} ships a Secret: it should name one, not carry it"
        assert not JWT.search(text), label(kustomization)
