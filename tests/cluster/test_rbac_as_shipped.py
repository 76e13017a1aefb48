"""The RBAC in deploy/ is minimal: what the operator's ServiceAccount may do, as ``kubectl auth can-i`` lists it.

That it is also sufficient is shown by every other test of this suite: the operator always runs with this
ServiceAccount's token.
"""

from __future__ import annotations

import pytest
from harness import ControlPlane  # tools/controlplane, put on sys.path by conftest.py

from cluster.clusterkit import OPERATOR_NAMESPACE, SERVICE_ACCOUNT, Kubectl

pytestmark = pytest.mark.cluster

Rules = dict[str, frozenset[str]]

EVERYWHERE: Rules = {
    "scalesetimages.scaleset.dev": frozenset({"get", "list", "watch", "patch"}),
    "scalesetimages.scaleset.dev/status": frozenset({"get", "patch"}),
    "events": frozenset({"create"}),
}
IN_ITS_OWN_NAMESPACE: Rules = {**EVERYWHERE, "leases.coordination.k8s.io": frozenset({"get", "create", "update"})}


def resource_rules(kubectl: Kubectl, namespace: str) -> Rules:
    """The resource rows of ``kubectl auth can-i --list -n NAMESPACE`` (non-resource URLs left out)."""
    table = kubectl.run("auth", "can-i", "--list", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:3] == ["Resources", "Non-Resource", "URLs"]
    rules: dict[str, set[str]] = {}
    for line in table[1:]:
        if line.startswith(" "):
            continue
        resource, urls, names, *verbs = line.split()
        assert (urls, names) == ("[]", "[]"), line
        rules.setdefault(resource, set()).update(" ".join(verbs).strip("[]").split())
    return {resource: frozenset(verbs) for resource, verbs in rules.items()}


@pytest.fixture
def baseline(control_plane: ControlPlane, namespace: str) -> Rules:
    """What any authenticated ServiceAccount may do (self reviews): a ServiceAccount without bindings."""
    return resource_rules(Kubectl(control_plane.service_account_kubeconfig(namespace, "nobody")), namespace)


def test_in_any_namespace_the_operator_may_only_read_and_patch_scale_set_images_and_post_events(
    operator_kubectl: Kubectl, namespace: str, baseline: Rules
) -> None:
    granted = resource_rules(operator_kubectl, namespace)
    assert {r: v for r, v in granted.items() if baseline.get(r) != v} == EVERYWHERE


def test_in_its_own_namespace_the_operator_may_also_hold_its_lease(
    operator_kubectl: Kubectl, namespace: str, baseline: Rules
) -> None:
    granted = resource_rules(operator_kubectl, OPERATOR_NAMESPACE)
    assert {r: v for r, v in granted.items() if baseline.get(r) != v} == IN_ITS_OWN_NAMESPACE


@pytest.mark.parametrize(
    ("verb", "resource", "where"),
    [
        ("get", "secrets", "--all-namespaces"),
        ("get", "secrets", OPERATOR_NAMESPACE),
        ("list", "secrets", "test"),
        ("get", "pods", "--all-namespaces"),
        ("list", "pods", OPERATOR_NAMESPACE),
        ("create", "scalesetimages.scaleset.dev", "test"),
        ("update", "scalesetimages.scaleset.dev", "test"),
        ("delete", "scalesetimages.scaleset.dev", "test"),
        ("update", "scalesetimages.scaleset.dev/status", "test"),
        ("get", "leases.coordination.k8s.io", "test"),
        ("delete", "leases.coordination.k8s.io", OPERATOR_NAMESPACE),
        ("list", "events", "test"),
        ("update", "customresourcedefinitions.apiextensions.k8s.io", "--all-namespaces"),
        ("list", "namespaces", "--all-namespaces"),
        ("create", "serviceaccounts/token", OPERATOR_NAMESPACE),
        ("impersonate", "serviceaccounts", OPERATOR_NAMESPACE),
        ("escalate", "clusterroles.rbac.authorization.k8s.io", "--all-namespaces"),
    ],
)
def test_the_operator_may_not(verb: str, resource: str, where: str, operator_kubectl: Kubectl, namespace: str) -> None:
    scope = [where] if where.startswith("--") else ["-n", namespace if where == "test" else where]
    answer = operator_kubectl.run("auth", "can-i", verb, resource, *scope, check=False)
    assert answer.stdout.strip() == "no", f"the operator may {verb} {resource} {where}"
    assert answer.returncode == 1


def test_the_service_account_kubeconfig_is_who_the_api_server_says_it_is(operator_kubectl: Kubectl) -> None:
    review = operator_kubectl.json("auth", "whoami")
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"
    assert "system:masters" not in review["status"]["userInfo"]["groups"]
