"""``parse_spec``: every rule of the ScaleSetImage contract (the CRD; README, "spec"), and its promise never to raise.

Specs are built from one valid minimal spec; each test changes only the fields it is about. Paths in
``a_spec`` use ``__`` between keys (``rollout__healthCheck__timeout``); ``REMOVED`` deletes a key.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleset_image_operator.core.images import Image, ImageKind
from scaleset_image_operator.core.quantities import IntOrPercent
from scaleset_image_operator.core.spec import (
    MAX_ORDER_ENTRIES,
    Approval,
    HealthMode,
    OnFailure,
    Problem,
    RolloutPolicy,
    ScaleSetImageSpec,
    ScaleSetRef,
    Strategy,
    UpgradePolicyRule,
    parse_spec,
)

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
JAMMY = {
    "publisher": "Canonical",
    "offer": "0001-com-ubuntu-server-jammy",
    "sku": "22_04-lts-gen2",
    "version": "22.04.202410020",
}
GALLERY_VERSION = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/g"
    "/images/web/versions/1.4.0"
)
MANAGED_IMAGE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-images/providers/Microsoft.Compute/images/web-1.4.0"
SHARED = "/SharedGalleries/00000000-0000-0000-0000-000000000000-SHAREDGALLERY/Images/web/Versions/1.4.0"
COMMUNITY = "/CommunityGalleries/web-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/Images/web/Versions/1.4.0"
VHD = "https://account.blob.core.windows.net/vhds/custom.vhd"
HUGE = 10**5000

REMOVED = object()


def a_spec(**changes: Any) -> dict[str, Any]:
    """A valid minimal spec with ``changes`` applied (``rollout__strategy="Zone"`` sets spec.rollout.strategy)."""
    spec: dict[str, Any] = {
        "scaleSet": {"subscriptionId": SUBSCRIPTION, "resourceGroup": "rg-web", "name": "vmss-web"},
        "image": {"platform": dict(JAMMY)},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = spec
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is REMOVED:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return spec


def parsed(raw: Any) -> ScaleSetImageSpec:
    spec, problems = parse_spec(raw)
    assert problems == (), [str(p) for p in problems]
    assert spec is not None
    return spec


def problems_of(raw: Any) -> list[Problem]:
    spec, problems = parse_spec(raw)
    assert spec is None
    assert problems, "a rejected spec names at least one problem"
    return list(problems)


def fields_of(raw: Any) -> list[str]:
    return [p.field for p in problems_of(raw)]


# -- a valid spec ----------------------------------------------------------------------------------------------


def test_a_minimal_spec_parses_with_the_documented_defaults() -> None:
    spec = parsed(a_spec())
    assert spec == ScaleSetImageSpec(
        ScaleSetRef(SUBSCRIPTION, "rg-web", "vmss-web"),
        Image.platform("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "22.04.202410020"),
    )
    assert spec.rollout == RolloutPolicy(
        strategy=Strategy.UPDATE_DOMAIN,
        order=(),
        max_batch_size=IntOrPercent(1),
        pause_seconds=30.0,
        health_mode=HealthMode.AUTO,
        health_timeout_seconds=600.0,
        max_unhealthy=IntOrPercent(0),
        on_failure=OnFailure.HALT,
        paused=False,
        approval=Approval.NONE,
    )
    assert (spec.dry_run, spec.upgrade_policy) == (False, UpgradePolicyRule.REQUIRE)


def test_the_scale_set_reference_names_its_arm_id() -> None:
    assert parsed(a_spec()).scale_set.arm_id == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web"
    )


def test_every_field_written_is_read() -> None:
    spec = parsed(
        a_spec(
            rollout={
                "strategy": "FaultDomain",
                "order": [2, 0],
                "maxBatchSize": "40%",
                "pauseBetweenBatches": "1m30s",
                "healthCheck": {"mode": "ApplicationHealth", "timeout": "15m"},
                "maxUnhealthyInstances": 2,
                "onFailure": "Rollback",
                "paused": True,
                "approval": "AfterFirstBatch",
            },
            dryRun=True,
            upgradePolicy="Enforce",
        )
    )
    assert spec.rollout == RolloutPolicy(
        strategy=Strategy.FAULT_DOMAIN,
        order=(2, 0),
        max_batch_size=IntOrPercent(40, percent=True),
        pause_seconds=90.0,
        health_mode=HealthMode.APPLICATION_HEALTH,
        health_timeout_seconds=900.0,
        max_unhealthy=IntOrPercent(2),
        on_failure=OnFailure.ROLLBACK,
        paused=True,
        approval=Approval.AFTER_FIRST_BATCH,
    )
    assert (spec.dry_run, spec.upgrade_policy) == (True, UpgradePolicyRule.ENFORCE)


# -- image sources ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(
            {"platform": JAMMY},
            Image.platform("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "22.04.202410020"),
            id="platform",
        ),
        pytest.param(
            {"platform": {**JAMMY, "version": "latest"}},
            Image.platform("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "latest"),
            id="platform-latest",
        ),
        pytest.param({"id": GALLERY_VERSION}, Image.of(ImageKind.ID, GALLERY_VERSION), id="gallery-version-id"),
        pytest.param({"id": MANAGED_IMAGE}, Image.of(ImageKind.ID, MANAGED_IMAGE), id="managed-image-id"),
        pytest.param({"sharedGalleryImageId": SHARED}, Image.of(ImageKind.SHARED_GALLERY, SHARED), id="shared"),
        pytest.param(
            {"communityGalleryImageId": COMMUNITY}, Image.of(ImageKind.COMMUNITY_GALLERY, COMMUNITY), id="community"
        ),
        pytest.param({"uri": VHD}, Image.of(ImageKind.URI, VHD), id="uri"),
        pytest.param({"platform": {}, "id": "", "uri": VHD}, Image.of(ImageKind.URI, VHD), id="empty-others-ignored"),
    ],
)
def test_each_image_source_is_read_as_that_kind_of_image(image: dict[str, Any], expected: Image) -> None:
    assert parsed(a_spec(image=image)).image == expected


@pytest.mark.parametrize(
    ("image", "found"),
    [
        pytest.param({}, "none", id="nothing"),
        pytest.param({"platform": None, "id": ""}, "none", id="only-empty-values"),
        pytest.param({"platform": JAMMY, "id": GALLERY_VERSION}, "platform, id", id="platform-and-id"),
        pytest.param({"sharedGalleryImageId": SHARED, "uri": VHD}, "sharedGalleryImageId, uri", id="shared-and-uri"),
        pytest.param(
            {
                "platform": JAMMY,
                "id": GALLERY_VERSION,
                "sharedGalleryImageId": SHARED,
                "communityGalleryImageId": COMMUNITY,
                "uri": VHD,
            },
            "platform, id, sharedGalleryImageId, communityGalleryImageId, uri",
            id="all-five",
        ),
    ],
)
def test_an_image_must_name_exactly_one_source(image: dict[str, Any], found: str) -> None:
    [problem] = problems_of(a_spec(image=image))
    assert problem.field == "spec.image"
    assert f"(found: {found})" in problem.message


@pytest.mark.parametrize(
    ("image", "field"),
    [
        pytest.param(
            {"id": "/resourceGroups/rg/providers/Microsoft.Compute/images/x"}, "spec.image.id", id="id-no-sub"
        ),
        pytest.param(
            {"id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Storage/images/x"},
            "spec.image.id",
            id="id-other-provider",
        ),
        pytest.param(
            {"id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/disks/d"},
            "spec.image.id",
            id="id-not-an-image",
        ),
        pytest.param({"id": 42}, "spec.image.id", id="id-a-number"),
        pytest.param({"id": ["/subscriptions/x"]}, "spec.image.id", id="id-a-list"),
        pytest.param({"sharedGalleryImageId": GALLERY_VERSION}, "spec.image.sharedGalleryImageId", id="shared-arm-id"),
        pytest.param(
            {"sharedGalleryImageId": "/SharedGalleries/g"}, "spec.image.sharedGalleryImageId", id="shared-cut"
        ),
        pytest.param({"communityGalleryImageId": SHARED}, "spec.image.communityGalleryImageId", id="community-shared"),
        pytest.param({"uri": "http://account.blob.core.windows.net/vhds/x.vhd"}, "spec.image.uri", id="uri-http"),
        pytest.param({"uri": "https://account.blob.core.windows.net/vhds/x.img"}, "spec.image.uri", id="uri-not-vhd"),
        pytest.param({"uri": "account.blob.core.windows.net/vhds/x.vhd"}, "spec.image.uri", id="uri-no-scheme"),
        pytest.param({"platform": "Canonical:ubuntu:22_04:latest"}, "spec.image.platform", id="platform-urn-string"),
        pytest.param({"platform": {**JAMMY, "sku": None}}, "spec.image.platform.sku", id="platform-no-sku"),
        pytest.param({"platform": {**JAMMY, "offer": "  "}}, "spec.image.platform.offer", id="platform-blank-offer"),
        pytest.param({"platform": {**JAMMY, "publisher": "Can onical"}}, "spec.image.platform.publisher", id="space"),
        pytest.param({"platform": {**JAMMY, "sku": "22:04"}}, "spec.image.platform.sku", id="colon-in-name"),
        pytest.param({"platform": {**JAMMY, "publisher": 7}}, "spec.image.platform.publisher", id="name-a-number"),
        pytest.param({"platform": {**JAMMY, "version": None}}, "spec.image.platform.version", id="no-version"),
    ],
)
def test_a_malformed_image_is_reported_on_its_own_field(image: dict[str, Any], field: str) -> None:
    assert field in fields_of(a_spec(image=image))


@pytest.mark.parametrize("version", ["latest", "Latest", "LATEST", "1.0", "1.4.0", "22.04.202410020", "1.2.3.4"])
def test_a_version_is_latest_or_two_to_four_numbers(version: str) -> None:
    assert parsed(a_spec(image__platform={**JAMMY, "version": version})).image.version == version


@pytest.mark.parametrize("version", ["1", "1.2.3.4.5", "v1.2", "1.2-beta", "1..2", ".1.2", "latest1", "22.04.x"])
def test_any_other_version_is_refused_with_a_hint(version: str) -> None:
    [problem] = problems_of(a_spec(image__platform={**JAMMY, "version": version}))
    assert problem.field == "spec.image.platform.version"
    assert 'use "latest" or a version such as' in problem.message


@pytest.mark.parametrize("version", ["", 22.04, 2204, None])
def test_a_version_must_be_a_non_empty_string(version: Any) -> None:
    assert fields_of(a_spec(image__platform={**JAMMY, "version": version})) == ["spec.image.platform.version"]


@pytest.mark.parametrize("version", ["\u0661.\u0662", "\U0001d7d9.\U0001d7da", "22.\u0660\u0664"])
def test_a_version_is_written_in_ascii_digits(version: str) -> None:
    # ``\d`` matches any Unicode digit; Azure's versions are ASCII, so these would reach the model and fail there.
    assert fields_of(a_spec(image__platform={**JAMMY, "version": version})) == ["spec.image.platform.version"]


# -- the scale set ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"scaleSet": REMOVED}, "spec.scaleSet", id="missing"),
        pytest.param({"scaleSet": "vmss-web"}, "spec.scaleSet", id="a-string"),
        pytest.param({"scaleSet__subscriptionId": REMOVED}, "spec.scaleSet.subscriptionId", id="no-subscription"),
        pytest.param({"scaleSet__resourceGroup": ""}, "spec.scaleSet.resourceGroup", id="empty-resource-group"),
        pytest.param({"scaleSet__name": "   "}, "spec.scaleSet.name", id="blank-name"),
        pytest.param({"scaleSet__name": 12}, "spec.scaleSet.name", id="name-a-number"),
    ],
)
def test_the_scale_set_and_each_of_its_fields_are_required(change: dict[str, Any], field: str) -> None:
    assert field in fields_of(a_spec(**change))


def test_an_empty_scale_set_object_is_refused_like_a_missing_one() -> None:
    assert set(fields_of(a_spec(scaleSet={}))) >= {
        "spec.scaleSet.subscriptionId",
        "spec.scaleSet.resourceGroup",
        "spec.scaleSet.name",
    }


@pytest.mark.parametrize(
    "subscription",
    [
        "not-a-guid",
        "00000000-0000-0000-0000-00000000000",
        "00000000-0000-0000-0000-0000000000000",
        "{00000000-0000-0000-0000-000000000000}",
        "00000000000000000000000000000000",
        "0000000g-0000-0000-0000-000000000000",
        "/subscriptions/00000000-0000-0000-0000-000000000000",
        " 00000000-0000-0000-0000-000000000000",
    ],
)
def test_a_subscription_id_must_be_a_guid(subscription: str) -> None:
    [problem] = problems_of(a_spec(scaleSet__subscriptionId=subscription))
    assert problem.field == "spec.scaleSet.subscriptionId"
    assert "GUID" in problem.message


def test_a_subscription_id_guid_may_use_upper_case() -> None:
    subscription = "ABCDEF01-2345-6789-ABCD-EF0123456789"
    assert parsed(a_spec(scaleSet__subscriptionId=subscription)).scale_set.subscription_id == subscription


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resourceGroup", "rg-web_(1).prod"),
        ("resourceGroup", "r"),
        ("resourceGroup", "g" * 90),
        ("resourceGroup", "rg-ñandú"),
        ("name", "v"),
        ("name", "0vmss"),
        ("name", "vmss-web_1.a"),
        ("name", "v" * 64),
    ],
)
def test_names_azure_allows_are_accepted(field: str, value: str) -> None:
    assert parsed(a_spec(**{f"scaleSet__{field}": value})).scale_set == ScaleSetRef(
        SUBSCRIPTION, value if field == "resourceGroup" else "rg-web", value if field == "name" else "vmss-web"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("resourceGroup", "g" * 91, id="rg-too-long"),
        pytest.param("resourceGroup", "rg web", id="rg-space"),
        pytest.param("resourceGroup", "rg/web", id="rg-slash"),
        pytest.param("resourceGroup", "rg#web", id="rg-hash"),
        pytest.param("name", "v" * 65, id="name-too-long"),
        pytest.param("name", "-vmss", id="name-leading-dash"),
        pytest.param("name", "_vmss", id="name-leading-underscore"),
        pytest.param("name", "vmss/web", id="name-slash"),
        pytest.param("name", "vmss web", id="name-space"),
        pytest.param("name", "vmss\u200bweb", id="name-zero-width-space"),
        pytest.param("name", "\uff56\uff4d\uff53\uff53", id="name-fullwidth"),
        pytest.param("name", "vmss\u202eweb", id="name-rtl-override"),
    ],
)
def test_names_azure_refuses_are_reported_with_what_is_allowed(field: str, value: str) -> None:
    [problem] = problems_of(a_spec(**{f"scaleSet__{field}": value}))
    assert problem.field == f"spec.scaleSet.{field}"
    assert "letters, digits" in problem.message


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"scaleSet__subscriptionId": SUBSCRIPTION + "\n"}, id="subscriptionId"),
        pytest.param({"scaleSet__resourceGroup": "rg-web\n"}, id="resourceGroup"),
        pytest.param({"scaleSet__name": "vmss-web\n"}, id="name"),
        pytest.param({"image__platform": {**JAMMY, "version": "22.04.202410020\n"}}, id="version"),
        pytest.param({"image__platform": {**JAMMY, "sku": "22_04-lts-gen2\n"}}, id="sku"),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_valid_value(change: dict[str, Any]) -> None:
    # A YAML block scalar (``name: |``) ends in a newline; it would end up inside an ARM URL or the model.
    [(path, value)] = change.items()
    field = "spec." + path.replace("__", ".")
    if isinstance(value, dict):
        field += "." + next(k for k in value if value[k] != JAMMY.get(k))
    assert fields_of(a_spec(**change)) == [field]


# -- rollout.order ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "order", "expected"),
    [
        ("UpdateDomain", [3, 1], (3, 1)),
        ("UpdateDomain", [0, 1, 2, 3, 4], (0, 1, 2, 3, 4)),
        ("UpdateDomain", [99], (99,)),
        ("FaultDomain", [2, 0, 1], (2, 0, 1)),
        ("Zone", ["3", "1"], ("3", "1")),
        ("Zone", [2, "1"], ("2", "1")),
        ("UpdateDomain", [], ()),
        ("UpdateDomain", list(range(MAX_ORDER_ENTRIES)), tuple(range(MAX_ORDER_ENTRIES))),
    ],
)
def test_an_explicit_order_is_read_as_domains_of_the_strategy(
    strategy: str, order: list[Any], expected: tuple[Any, ...]
) -> None:
    assert parsed(a_spec(rollout={"strategy": strategy, "order": order, "maxBatchSize": 1})).rollout.order == expected


@pytest.mark.parametrize(
    ("strategy", "order", "field"),
    [
        pytest.param("UpdateDomain", "0,1,2", "spec.rollout.order", id="not-a-list"),
        pytest.param("UpdateDomain", {"0": 1}, "spec.rollout.order", id="an-object"),
        pytest.param("Batch", [0, 1], "spec.rollout.order", id="batch-has-no-domains"),
        pytest.param("UpdateDomain", [0, -1], "spec.rollout.order[1]", id="negative"),
        pytest.param("UpdateDomain", [100], "spec.rollout.order[0]", id="too-high"),
        pytest.param("UpdateDomain", ["1"], "spec.rollout.order[0]", id="a-string-for-update-domain"),
        pytest.param("FaultDomain", [1.0], "spec.rollout.order[0]", id="a-float"),
        pytest.param("UpdateDomain", [True], "spec.rollout.order[0]", id="a-boolean"),
        pytest.param("UpdateDomain", [None], "spec.rollout.order[0]", id="null"),
        pytest.param("UpdateDomain", [[0]], "spec.rollout.order[0]", id="nested-list"),
        pytest.param("Zone", ["east"], "spec.rollout.order[0]", id="zone-a-word"),
        pytest.param("Zone", ["123"], "spec.rollout.order[0]", id="zone-three-digits"),
        pytest.param("Zone", [True], "spec.rollout.order[0]", id="zone-a-boolean"),
        pytest.param("Zone", [1.5], "spec.rollout.order[0]", id="zone-a-float"),
        pytest.param("Zone", [{"zone": "1"}], "spec.rollout.order[0]", id="zone-an-object"),
        pytest.param("UpdateDomain", [1, 2, 1], "spec.rollout.order", id="duplicate"),
        pytest.param("Zone", ["1", 1], "spec.rollout.order", id="duplicate-zone-spelled-twice"),
        pytest.param(
            "UpdateDomain", list(range(MAX_ORDER_ENTRIES + 1)), "spec.rollout.order", id="more-entries-than-domains"
        ),
    ],
)
def test_an_order_that_cannot_be_followed_is_reported(strategy: str, order: Any, field: str) -> None:
    assert field in fields_of(a_spec(rollout={"strategy": strategy, "order": order}))


def test_every_bad_order_entry_is_reported_not_only_the_first() -> None:
    assert fields_of(a_spec(rollout__order=[0, "x", 1, -4])) == ["spec.rollout.order[1]", "spec.rollout.order[3]"]


def test_a_huge_order_list_is_refused_at_once() -> None:
    [problem] = problems_of(a_spec(rollout__order=list(range(100_000))))
    assert (problem.field, problem.message) == ("spec.rollout.order", "has 100000 entries; at most 100 domains exist")


# -- rollout.maxBatchSize --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "size", "expected"),
    [
        ("UpdateDomain", 1, IntOrPercent(1)),
        ("UpdateDomain", "1", IntOrPercent(1)),
        ("FaultDomain", 2, IntOrPercent(2)),
        ("FaultDomain", "50%", IntOrPercent(50, percent=True)),
        ("Zone", 3, IntOrPercent(3)),
        ("Batch", 5, IntOrPercent(5)),
        ("Batch", "20%", IntOrPercent(20, percent=True)),
        ("Batch", "100%", IntOrPercent(100, percent=True)),
        ("Batch", " 7 ", IntOrPercent(7)),
        ("Batch", None, IntOrPercent(1)),
    ],
)
def test_max_batch_size_is_a_count_or_a_percentage(strategy: str, size: Any, expected: IntOrPercent) -> None:
    assert parsed(a_spec(rollout={"strategy": strategy, "maxBatchSize": size})).rollout.max_batch_size == expected


@pytest.mark.parametrize("size", [2, "3", "50%", "100%", "1%"])
def test_update_domains_go_one_at_a_time(size: Any) -> None:
    [problem] = problems_of(a_spec(rollout__maxBatchSize=size))
    assert problem.field == "spec.rollout.maxBatchSize"
    assert "must be 1 with the UpdateDomain strategy" in problem.message


@pytest.mark.parametrize("strategy", ["UpdateDomain", "FaultDomain", "Zone", "Batch"])
@pytest.mark.parametrize("size", [0, "0", "0%"])
def test_a_batch_of_nothing_is_refused_whatever_the_strategy(strategy: str, size: Any) -> None:
    [problem] = problems_of(a_spec(rollout={"strategy": strategy, "maxBatchSize": size}))
    assert (problem.field, problem.message) == ("spec.rollout.maxBatchSize", "must be at least 1 (or 1%)")


@pytest.mark.parametrize("size", [-1, "-1", "abc", "101%", "1000%", "20 %", "%", 1.5, 2.0, True, False, [2], {"n": 2}])
def test_a_max_batch_size_that_is_no_count_is_reported(size: Any) -> None:
    assert fields_of(a_spec(rollout={"strategy": "Batch", "maxBatchSize": size})) == ["spec.rollout.maxBatchSize"]


# -- rollout.maxUnhealthyInstances -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, IntOrPercent(0)),
        (3, IntOrPercent(3)),
        ("10%", IntOrPercent(10, percent=True)),
        ("0%", IntOrPercent(0, True)),
    ],
)
def test_max_unhealthy_instances_is_a_count_or_a_percentage(value: Any, expected: IntOrPercent) -> None:
    assert parsed(a_spec(rollout__maxUnhealthyInstances=value)).rollout.max_unhealthy == expected


@pytest.mark.parametrize("value", [-1, "lots", "101%", True, 0.5])
def test_a_max_unhealthy_that_is_no_count_is_reported(value: Any) -> None:
    assert fields_of(a_spec(rollout__maxUnhealthyInstances=value)) == ["spec.rollout.maxUnhealthyInstances"]


# -- durations -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("1h0m0s", 3600.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        ("0s", 0.0),
        (" 45s ", 45.0),
        ("24h", 86400.0),
        (0, 0.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_a_pause_is_a_go_duration_or_a_number_of_seconds(written: Any, seconds: float) -> None:
    assert parsed(a_spec(rollout__pauseBetweenBatches=written)).rollout.pause_seconds == seconds


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("30", id="bare-number-string"),
        pytest.param("-5s", id="negative"),
        pytest.param("1d", id="days"),
        pytest.param("1h 30m", id="inner-space"),
        pytest.param("30S", id="upper-case-unit"),
        pytest.param("s", id="unit-only"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("PT30S", id="iso-8601"),
        pytest.param("30s later", id="trailing-words"),
        pytest.param(-1, id="negative-number"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="inf"),
        pytest.param(True, id="boolean"),
        pytest.param([30], id="list"),
        pytest.param({"seconds": 30}, id="object"),
        pytest.param("24h1s", id="over-a-day"),
        pytest.param(86400.5, id="over-a-day-number"),
        pytest.param("99999999999999999999h", id="absurd"),
        pytest.param("9" * 400 + "s", id="overflows-to-infinity"),
        pytest.param(1e308, id="largest-float"),
    ],
)
def test_a_pause_that_is_no_duration_or_over_a_day_is_reported(written: Any) -> None:
    assert fields_of(a_spec(rollout__pauseBetweenBatches=written)) == ["spec.rollout.pauseBetweenBatches"]


@pytest.mark.parametrize(("written", "seconds"), [("1s", 1.0), ("10m", 600.0), ("24h", 86400.0), (90, 90.0)])
def test_a_health_timeout_is_between_a_second_and_a_day(written: Any, seconds: float) -> None:
    assert parsed(a_spec(rollout__healthCheck__timeout=written)).rollout.health_timeout_seconds == seconds


@pytest.mark.parametrize("written", [0, "0s", "500ms", 0.5, "24h1s", "48h", "never", -10])
def test_a_health_timeout_outside_a_second_to_a_day_is_reported(written: Any) -> None:
    assert fields_of(a_spec(rollout__healthCheck__timeout=written)) == ["spec.rollout.healthCheck.timeout"]


# -- enums and booleans ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "written", "attribute", "expected"),
    [
        ("rollout__strategy", "Zone", "strategy", Strategy.ZONE),
        ("rollout__strategy", "FaultDomain", "strategy", Strategy.FAULT_DOMAIN),
        ("rollout__healthCheck__mode", "ProvisioningState", "health_mode", HealthMode.PROVISIONING_STATE),
        ("rollout__healthCheck__mode", "None", "health_mode", HealthMode.NONE),
        ("rollout__onFailure", "Rollback", "on_failure", OnFailure.ROLLBACK),
        ("rollout__approval", "EachBatch", "approval", Approval.EACH_BATCH),
    ],
)
def test_each_enum_takes_its_documented_values(path: str, written: str, attribute: str, expected: Any) -> None:
    assert getattr(parsed(a_spec(**{path: written})).rollout, attribute) is expected


def test_the_upgrade_policy_rule_takes_enforce() -> None:
    assert parsed(a_spec(upgradePolicy="Enforce")).upgrade_policy is UpgradePolicyRule.ENFORCE


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("rollout__strategy", "spec.rollout.strategy"),
        ("rollout__healthCheck__mode", "spec.rollout.healthCheck.mode"),
        ("rollout__onFailure", "spec.rollout.onFailure"),
        ("rollout__approval", "spec.rollout.approval"),
        ("upgradePolicy", "spec.upgradePolicy"),
    ],
)
@pytest.mark.parametrize("written", ["updatedomain", "Rolling", "", 1, True, ["Zone"], {"value": "Zone"}])
def test_an_enum_value_outside_its_set_is_reported_with_the_allowed_values(path: str, field: str, written: Any) -> None:
    [problem] = problems_of(a_spec(**{path: written}))
    assert problem.field == field
    assert problem.message.startswith("must be one of ")


@pytest.mark.parametrize(("path", "field"), [("rollout__paused", "spec.rollout.paused"), ("dryRun", "spec.dryRun")])
@pytest.mark.parametrize("written", ["true", "false", "yes", 1, 0, "", [True], {"on": True}])
def test_a_boolean_must_be_true_or_false_not_something_like_it(path: str, field: str, written: Any) -> None:
    [problem] = problems_of(a_spec(**{path: written}))
    assert problem.field == field
    assert problem.message.startswith("must be true or false")


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_read(value: bool) -> None:
    spec = parsed(a_spec(rollout__paused=value, dryRun=value))
    assert (spec.rollout.paused, spec.dry_run) == (value, value)


# -- shapes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, Problem("spec", "is required")),
        ([], Problem("spec", "must be an object, not list")),
        ("scaleSet: x", Problem("spec", "must be an object, not str")),
        (42, Problem("spec", "must be an object, not int")),
    ],
)
def test_a_spec_that_is_no_object_is_reported_first(raw: Any, problem: Problem) -> None:
    assert problems_of(raw)[0] == problem


def test_an_empty_spec_names_both_required_fields() -> None:
    assert set(fields_of({})) >= {"spec.scaleSet", "spec.image"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"image": REMOVED}, "spec.image"),
        ({"image": VHD}, "spec.image"),
        ({"image": [{"uri": VHD}]}, "spec.image"),
        ({"rollout": "fast"}, "spec.rollout"),
        ({"rollout": ["UpdateDomain"]}, "spec.rollout"),
        ({"rollout__healthCheck": "10m"}, "spec.rollout.healthCheck"),
    ],
)
def test_an_object_field_of_the_wrong_type_is_reported_on_that_field(change: dict[str, Any], field: str) -> None:
    assert field in fields_of(a_spec(**change))


def test_every_problem_is_reported_in_one_pass() -> None:
    raw = a_spec(
        scaleSet__subscriptionId="nope",
        image={"uri": "ftp://x"},
        rollout={"strategy": "Sideways", "maxBatchSize": -1, "pauseBetweenBatches": "soon", "paused": "no"},
        dryRun="maybe",
    )
    assert fields_of(raw) == [
        "spec.scaleSet.subscriptionId",
        "spec.image.uri",
        "spec.rollout.strategy",
        "spec.rollout.maxBatchSize",
        "spec.rollout.pauseBetweenBatches",
        "spec.rollout.paused",
        "spec.dryRun",
    ]


def test_a_problem_reads_as_field_then_message() -> None:
    assert str(Problem("spec.rollout.paused", "must be true or false, not 'yes'")) == (
        "spec.rollout.paused: must be true or false, not 'yes'"
    )


def test_unknown_fields_are_ignored() -> None:
    assert parsed(a_spec(replicas=3, rollout__surge=True)) == parsed(a_spec())


def test_parsing_does_not_change_the_spec_it_was_given() -> None:
    raw = a_spec(rollout={"strategy": "Zone", "order": ["1", 2], "maxBatchSize": "50%"})
    before = copy.deepcopy(raw)
    parse_spec(raw)
    assert raw == before


# -- hostile values: parse_spec never raises -------------------------------------------------------------------

ODD_TEXT = st.text(max_size=30) | st.sampled_from(
    ["\x00", "\ud800", "\u202e", "\ufeff", "\U0001d7d8", "\u0661\u0662", "²", "latest\n", "1%", "-0", "1e3", "NaN"]
)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | ODD_TEXT
    | st.sampled_from([0, 1, 99, 100, -1, 2**63, "30s", "20%", "Zone", "Batch", SUBSCRIPTION, VHD])
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)
SPEC_PATHS = [
    "scaleSet",
    "scaleSet__subscriptionId",
    "scaleSet__resourceGroup",
    "scaleSet__name",
    "image",
    "image__platform",
    "image__platform__version",
    "image__platform__publisher",
    "image__id",
    "image__uri",
    "image__sharedGalleryImageId",
    "rollout",
    "rollout__strategy",
    "rollout__order",
    "rollout__maxBatchSize",
    "rollout__pauseBetweenBatches",
    "rollout__healthCheck",
    "rollout__healthCheck__mode",
    "rollout__healthCheck__timeout",
    "rollout__maxUnhealthyInstances",
    "rollout__onFailure",
    "rollout__paused",
    "rollout__approval",
    "dryRun",
    "upgradePolicy",
]
HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_answered(raw: Any) -> None:
    spec, problems = parse_spec(raw)
    if spec is None:
        assert problems
        assert all(isinstance(p, Problem) and p.field.startswith("spec") and p.message for p in problems)
        assert all(isinstance(str(p), str) for p in problems)
    else:
        assert isinstance(spec, ScaleSetImageSpec)
        assert problems == ()


@HOSTILE
@given(JSON)
def test_any_json_value_as_the_spec_is_answered_without_raising(raw: Any) -> None:
    assert_answered(raw)


@HOSTILE
@given(st.dictionaries(st.sampled_from(SPEC_PATHS), JSON, min_size=1, max_size=4))
def test_any_json_value_in_any_field_of_a_valid_spec_is_answered_without_raising(changes: dict[str, Any]) -> None:
    assert_answered(a_spec(**changes))


@pytest.mark.parametrize(
    "path",
    [
        "rollout__pauseBetweenBatches",
        "rollout__healthCheck__timeout",
        "rollout__maxBatchSize",
        "rollout__maxUnhealthyInstances",
        "rollout__strategy",
        "rollout__healthCheck__mode",
        "rollout__onFailure",
        "rollout__approval",
        "upgradePolicy",
        "rollout__paused",
        "dryRun",
    ],
)
@pytest.mark.parametrize("value", [HUGE, -HUGE, 10**400], ids=["huge", "huge-negative", "beyond-float"])
def test_an_absurdly_large_number_is_answered_not_raised(path: str, value: int) -> None:
    # YAML (``scaleset-image plan -f``) reads integers of any size; a spec is never a reason to crash.
    assert_answered(a_spec(**{path: value}))


@pytest.mark.parametrize("strategy", ["UpdateDomain", "Zone"])
@pytest.mark.parametrize("value", [HUGE, 10**400], ids=["huge", "beyond-float"])
def test_an_absurdly_large_domain_is_reported_not_raised(strategy: str, value: int) -> None:
    assert fields_of(a_spec(rollout={"strategy": strategy, "order": [value]})) == ["spec.rollout.order[0]"]


def test_a_megabyte_name_is_reported_in_a_few_words_not_quoted_whole() -> None:
    [problem] = problems_of(a_spec(scaleSet__name="v" * 1_000_000))
    assert problem.field == "spec.scaleSet.name"
    assert len(problem.message) <= 401


@pytest.mark.parametrize("path", ["rollout__strategy", "rollout__paused", "rollout__maxBatchSize", "dryRun"])
def test_a_huge_number_is_named_not_printed(path: str) -> None:
    [problem] = problems_of(a_spec(**{path: HUGE}))
    assert "a number too large" in problem.message


def test_deeply_nested_wrong_types_are_reported_not_raised() -> None:
    nested: Any = "Zone"
    for _ in range(200):
        nested = {"strategy": [nested]}
    assert fields_of(a_spec(rollout__strategy=nested, rollout__order=[nested], dryRun=nested)) == [
        "spec.rollout.strategy",
        "spec.rollout.order[0]",
        "spec.dryRun",
    ]
