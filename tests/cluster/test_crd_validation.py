"""The CRD as deploy/ installs it rejects bad ScaleSetImages at ``kubectl apply``, naming the field.

No operator runs here: this is the API server's schema, defaults and CEL rules at work.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from cluster.clusterkit import Kubectl

pytestmark = pytest.mark.cluster

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"


def valid(namespace: str, name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleSet": {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg-web", "name": "vmss-web"},
            "image": {
                "platform": {
                    "publisher": "Canonical",
                    "offer": "0001-com-ubuntu-server-jammy",
                    "sku": "22_04-lts-gen2",
                    "version": "22.04.202410020",
                }
            },
        },
    }


def with_spec(namespace: str, **changes: Any) -> dict[str, Any]:
    document = valid(namespace)
    for dotted, value in changes.items():
        node = document["spec"]
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return document


BAD_SPECS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "a subscription id that is not a GUID": (
        {"scaleSet__subscriptionId": "my-subscription"},
        ("spec.scaleSet.subscriptionId",),
    ),
    "a scale set without a resource group": (
        {"scaleSet": {"subscriptionId": SUBSCRIPTION, "name": "vmss-web"}},
        ("spec.scaleSet.resourceGroup", "Required value"),
    ),
    "two image sources": (
        {"image__id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/images/web"},
        ("spec.image", "exactly one of platform, id"),
    ),
    "no image source": ({"image": {}}, ("spec.image", "exactly one")),
    "an image version that is not a version": (
        {"image__platform__version": "newest"},
        ("spec.image.platform.version",),
    ),
    "an unmanaged image that is not a VHD": ({"image": {"uri": "http://x/disk.img"}}, ("spec.image.uri",)),
    "an unknown strategy": ({"rollout__strategy": "AllAtOnce"}, ("spec.rollout.strategy", "Unsupported value")),
    "two update domains at once": (
        {"rollout__maxBatchSize": 2},
        ("spec.rollout", "maxBatchSize must be 1 with the UpdateDomain strategy"),
    ),
    "a pause that is not a duration": (
        {"rollout__pauseBetweenBatches": "a while"},
        ("spec.rollout.pauseBetweenBatches",),
    ),
    "a pause longer than a day": (
        {"rollout__pauseBetweenBatches": "48h"},
        ("spec.rollout.pauseBetweenBatches", "at most 24h"),
    ),
    "a health timeout under a second": (
        {"rollout__healthCheck__timeout": "10ms"},
        ("spec.rollout.healthCheck.timeout", "between 1s and 24h"),
    ),
    "a percentage over 100": (
        {"rollout__maxUnhealthyInstances": "150%"},
        ("spec.rollout.maxUnhealthyInstances",),
    ),
    "an unknown approval mode": ({"rollout__approval": "Manager"}, ("spec.rollout.approval", "Unsupported value")),
    "an unknown failure policy": ({"rollout__onFailure": "Retry"}, ("spec.rollout.onFailure", "Unsupported value")),
    "a dryRun that is not a boolean": ({"dryRun": "yes"}, ("spec.dryRun", "boolean")),
    "an unknown upgrade policy": ({"upgradePolicy": "Force"}, ("spec.upgradePolicy", "Unsupported value")),
}


@pytest.mark.parametrize("case", BAD_SPECS, ids=[c.replace(" ", "-") for c in BAD_SPECS])
def test_kubectl_apply_rejects_a_bad_spec_with_a_message_naming_the_field(
    case: str, apply: Callable[..., Any], kubectl: Kubectl, namespace: str
) -> None:
    changes, expected = BAD_SPECS[case]
    answer = apply(with_spec(namespace, **changes), check=False)
    assert answer.returncode != 0, f"{case} was accepted: {answer.stdout}"
    assert "is invalid" in answer.stderr
    for text in expected:
        assert text in answer.stderr
    assert kubectl.run("get", "ssi", "-n", namespace, "-o", "name").stdout == ""


def test_a_spec_without_rollout_settings_gets_the_documented_defaults(
    apply: Callable[..., Any], read_ssi: Callable[[str], dict[str, Any]], namespace: str
) -> None:
    apply(valid(namespace))
    spec = read_ssi("web")["spec"]
    assert spec["rollout"] == {
        "strategy": "UpdateDomain",
        "maxBatchSize": 1,
        "pauseBetweenBatches": "30s",
        "healthCheck": {"mode": "Auto", "timeout": "10m"},
        "maxUnhealthyInstances": 0,
        "onFailure": "Halt",
        "paused": False,
        "approval": "None",
    }
    assert spec["dryRun"] is False
    assert spec["upgradePolicy"] == "Require"


def test_the_scale_set_of_a_scale_set_image_cannot_be_changed(
    apply: Callable[..., Any], read_ssi: Callable[[str], dict[str, Any]], namespace: str
) -> None:
    apply(valid(namespace))
    moved = copy.deepcopy(valid(namespace))
    moved["spec"]["scaleSet"]["name"] = "vmss-other"
    answer = apply(moved, check=False)
    assert answer.returncode != 0
    assert "spec.scaleSet" in answer.stderr
    assert "scaleSet is immutable" in answer.stderr
    assert read_ssi("web")["spec"]["scaleSet"]["name"] == "vmss-web"


def test_the_image_of_a_scale_set_image_can_be_changed(
    apply: Callable[..., Any], read_ssi: Callable[[str], dict[str, Any]], namespace: str
) -> None:
    apply(valid(namespace))
    newer = valid(namespace)
    newer["spec"]["image"]["platform"]["version"] = "latest"
    apply(newer)
    document = read_ssi("web")
    assert document["spec"]["image"]["platform"]["version"] == "latest"
    assert document["metadata"]["generation"] == 2
