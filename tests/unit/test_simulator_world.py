"""The simulated resource provider without HTTP: a hand-driven clock makes every transition exact."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scaleset_image_operator.simulator import render
from scaleset_image_operator.simulator.clock import SimClock
from scaleset_image_operator.simulator.errors import ArmError
from scaleset_image_operator.simulator.faults import FaultBook
from scaleset_image_operator.simulator.images import ImageCatalog
from scaleset_image_operator.simulator.model import ScaleSet
from scaleset_image_operator.simulator.world import World, iso_duration_seconds

SUB = "00000000-0000-0000-0000-000000000001"
NEW_VERSION = "22.04.202411010"


class HandClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make_world() -> tuple[World, HandClock]:
    hand = HandClock()
    return World(SimClock(1.0, monotonic=hand, wall=lambda: 1_700_000_000.0), ImageCatalog.with_defaults()), hand


def scale_set(world: World, **overrides: Any) -> ScaleSet:
    body = {
        "subscriptionId": SUB,
        "resourceGroup": "rg",
        "name": "web",
        "upgradeSeconds": 60,
        "healthWarmupSeconds": 10,
    } | overrides
    return world.create_from_control(body)


def image_patch(version: str = NEW_VERSION, **extra: Any) -> dict[str, Any]:
    return {
        "properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": version, **extra}}}}
    }


def run_until(world: World, hand: HandClock, seconds: float) -> None:
    hand.t += seconds
    world.advance()


def test_a_regional_scale_set_spreads_instances_round_robin_over_five_domains() -> None:
    world, _ = make_world()
    vmss = scale_set(world, capacity=12)
    placement = [(i.update_domain, i.fault_domain, i.zone) for i in vmss.sorted_instances()]
    assert placement == [(n % 5, n % 5, None) for n in range(12)]


def test_a_zonal_scale_set_goes_round_robin_over_zones_with_fault_domain_zero() -> None:
    world, _ = make_world()
    vmss = scale_set(world, capacity=9, zones=["1", "2", "3"])
    placement = [(i.zone, i.update_domain, i.fault_domain) for i in vmss.sorted_instances()]
    assert placement == [
        ("1", 0, 0),
        ("2", 0, 0),
        ("3", 0, 0),
        ("1", 1, 0),
        ("2", 1, 0),
        ("3", 1, 0),
        ("1", 2, 0),
        ("2", 2, 0),
        ("3", 2, 0),
    ]


def test_a_model_change_in_manual_mode_upgrades_nothing_by_itself() -> None:
    world, hand = make_world()
    vmss = scale_set(world, capacity=5)
    world.update(vmss, image_patch(), if_match='"1"')
    run_until(world, hand, 600)
    assert vmss.etag == 2
    assert all(i.profile_version == 1 and i.provisioning == "Succeeded" for i in vmss.instances.values())
    assert vmss.counters.max_concurrent_domains == 0


def test_manual_upgrade_takes_the_upgrade_time_then_warms_up_to_healthy() -> None:
    world, hand = make_world()
    vmss = scale_set(world, capacity=5)
    world.update(vmss, image_patch(), if_match=None)
    operation = world.manual_upgrade(vmss, {"instanceIds": ["0"]})
    instance = vmss.instances["0"]
    assert (instance.provisioning, instance.health) == ("Updating", "Unknown")
    run_until(world, hand, 45)
    assert instance.provisioning == "Updating" and operation.status == "InProgress"
    run_until(world, hand, 30)
    assert (instance.provisioning, instance.health, instance.profile_version) == ("Succeeded", "Initializing", 2)
    assert instance.image["exactVersion"] == NEW_VERSION
    run_until(world, hand, 15)
    assert instance.health == "Healthy"
    assert operation.status == "Succeeded"


def test_automatic_mode_upgrades_every_domain_at_once() -> None:
    world, hand = make_world()
    vmss = scale_set(world, capacity=10, upgradePolicy="Automatic")
    operation = world.update(vmss, image_patch(), if_match=None)
    assert vmss.counters.max_concurrent_domains == 5
    run_until(world, hand, 120)
    assert operation.status == "Succeeded"
    assert all(i.profile_version == 2 for i in vmss.instances.values())


def test_rolling_mode_upgrades_in_batches_of_the_policy_percentage() -> None:
    world, hand = make_world()
    vmss = scale_set(world, capacity=10, upgradePolicy="Rolling")
    operation = world.update(vmss, image_patch(), if_match=None)
    assert vmss.rolling is not None
    assert [len(batch) for batch in vmss.rolling.batches] == [2, 2, 2, 2, 2]
    for _ in range(60):
        run_until(world, hand, 10)
    assert operation.status == "Succeeded"
    assert vmss.rolling.status == "Completed"
    assert vmss.counters.max_concurrent_domains <= 2


def test_rolling_mode_without_a_health_signal_is_refused() -> None:
    world, _ = make_world()
    vmss = scale_set(world, upgradePolicy="Manual", healthExtension=False)
    with pytest.raises(ArmError) as refused:
        world.update(vmss, {"properties": {"upgradePolicy": {"mode": "Rolling"}}}, if_match=None)
    assert (refused.value.status, refused.value.code) == (400, "BadRequest")


def test_a_stale_etag_is_refused_and_changes_nothing() -> None:
    world, _ = make_world()
    vmss = scale_set(world)
    world.update(vmss, image_patch(), if_match='"1"')
    with pytest.raises(ArmError) as refused:
        world.update(vmss, image_patch("22.04.202410020"), if_match='"1"')
    assert refused.value.status == 412
    assert vmss.profile["storageProfile"]["imageReference"]["version"] == NEW_VERSION


@pytest.mark.parametrize(
    ("patch", "status", "code"),
    [
        (image_patch(publisher="OtherPublisher"), 409, "PropertyChangeNotAllowed"),
        (image_patch(offer="ubuntu-24_04-lts"), 409, "PropertyChangeNotAllowed"),
        (image_patch("22.04.209901010"), 404, "PlatformImageNotFound"),
        (
            {
                "properties": {
                    "virtualMachineProfile": {"storageProfile": {"osDisk": {"image": {"uri": "https://a/b.vhd"}}}}
                }
            },
            409,
            "PropertyChangeNotAllowed",
        ),
        (
            image_patch(id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/missing"),
            400,
            "InvalidParameter",
        ),
    ],
)
def test_an_image_change_azure_refuses_leaves_the_model_as_it_was(
    patch: dict[str, Any], status: int, code: str
) -> None:
    world, _ = make_world()
    vmss = scale_set(world)
    before = (vmss.etag, vmss.profile_version, repr(vmss.resource))
    with pytest.raises(ArmError) as refused:
        world.update(vmss, patch, if_match=None)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert (vmss.etag, vmss.profile_version, repr(vmss.resource)) == before


def test_a_platform_scale_set_cannot_switch_to_a_gallery_image_even_with_the_platform_fields_cleared() -> None:
    world, _ = make_world()
    gallery = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web/versions/1.4.0"
    world.catalog.publish({"id": gallery})
    vmss = scale_set(world)
    before = (vmss.etag, vmss.profile_version)
    for reference, expected in (
        ({"id": gallery}, (400, "InvalidParameter")),  # two images named: the platform fields were not cleared
        ({"id": gallery, "publisher": None, "offer": None, "sku": None, "version": None}, (409, "OperationNotAllowed")),
    ):
        patch = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": reference}}}}
        with pytest.raises(ArmError) as refused:
            world.update(vmss, patch, if_match=None)
        assert (refused.value.status, refused.value.code) == expected
    assert (vmss.etag, vmss.profile_version) == before


def test_switching_from_a_managed_image_to_a_gallery_image_keeps_only_the_gallery_reference() -> None:
    world, _ = make_world()
    managed = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/web-2024"
    gallery = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web/versions/1.4.0"
    for image in (managed, gallery):
        world.catalog.publish({"id": image})
    vmss = scale_set(world, image={"id": managed})
    cleared = {"id": gallery, "publisher": None, "offer": None, "sku": None, "version": None}
    world.update(
        vmss, {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": cleared}}}}, if_match=None
    )
    assert vmss.profile["storageProfile"]["imageReference"] == {"id": gallery}


LEFT_OUT = object()


def put_back(world: World, vmss: ScaleSet, image_reference: Any = LEFT_OUT) -> None:
    """What ``az vmss update`` PUTs: the scale set as read, without its read-only fields, its image reference nulled
    (then set to ``image_reference``, or left out)."""
    body = copy.deepcopy(render.scale_set(vmss))
    for read_only in ("provisioningState", "uniqueId", "timeCreated"):
        body["properties"].pop(read_only)
    storage = body["properties"]["virtualMachineProfile"]["storageProfile"]
    del storage["imageReference"]
    if image_reference is not LEFT_OUT:
        storage["imageReference"] = image_reference
    world.create_or_update(SUB, "rg", "web", body, None, None)


def test_a_put_naming_only_the_version_keeps_the_publisher_offer_and_sku_of_the_model() -> None:
    world, _ = make_world()
    vmss = scale_set(world)
    before = dict(vmss.profile["storageProfile"]["imageReference"])

    put_back(world, vmss, {"version": NEW_VERSION})

    assert vmss.profile["storageProfile"]["imageReference"] == {**before, "version": NEW_VERSION}
    assert vmss.profile_version == 2


@pytest.mark.parametrize("image_reference", [LEFT_OUT, None], ids=["left out", "null"])
def test_a_put_without_an_image_reference_keeps_the_model_image_and_makes_no_new_model(image_reference: Any) -> None:
    world, _ = make_world()
    vmss = scale_set(world)
    before = dict(vmss.profile["storageProfile"]["imageReference"])

    put_back(world, vmss, image_reference)

    assert vmss.profile["storageProfile"]["imageReference"] == before
    assert vmss.profile_version == 1


def test_a_put_naming_another_style_of_image_is_refused_as_an_image_type_change() -> None:
    world, _ = make_world()
    managed = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/web"
    world.catalog.publish({"id": managed})
    vmss = scale_set(world)
    before = (vmss.etag, vmss.profile_version, repr(vmss.resource))

    with pytest.raises(ArmError) as refused:
        put_back(world, vmss, {"id": managed})

    assert (refused.value.status, refused.value.code) == (409, "OperationNotAllowed")
    assert (vmss.etag, vmss.profile_version, repr(vmss.resource)) == before


def test_a_put_without_the_read_only_properties_keeps_them() -> None:
    world, _ = make_world()
    vmss = scale_set(world)
    created = (vmss.properties["uniqueId"], vmss.properties["timeCreated"])

    put_back(world, vmss, {"version": NEW_VERSION})

    assert (vmss.properties["uniqueId"], vmss.properties["timeCreated"]) == created


def test_scaling_out_creates_instances_on_the_current_model_and_scaling_in_removes_the_highest_ids() -> None:
    world, hand = make_world()
    vmss = scale_set(world, capacity=5)
    world.update(vmss, image_patch(), if_match=None)
    world.update(vmss, {"sku": {"capacity": 7}}, if_match=None)
    run_until(world, hand, 120)
    assert sorted(vmss.instances, key=int) == ["0", "1", "2", "3", "4", "5", "6"]
    assert [vmss.instances[i].profile_version for i in ("5", "6")] == [2, 2]
    world.update(vmss, {"sku": {"capacity": 4}}, if_match=None)
    run_until(world, hand, 60)
    assert sorted(vmss.instances, key=int) == ["0", "1", "2", "3"]


def test_upgrading_an_instance_twice_for_the_same_model_is_counted() -> None:
    world, hand = make_world()
    vmss = scale_set(world, capacity=5)
    world.update(vmss, image_patch(), if_match=None)
    world.manual_upgrade(vmss, {"instanceIds": ["0"]})
    run_until(world, hand, 120)
    world.manual_upgrade(vmss, {"instanceIds": ["0"]})
    assert (vmss.counters.double_upgrades, world.counters.double_upgrades) == (1, 1)


def test_a_stuck_upgrade_finishes_only_when_the_faults_are_cleared() -> None:
    faults = FaultBook()
    hand = HandClock()
    world = World(SimClock(1.0, monotonic=hand), ImageCatalog.with_defaults(), faults)
    vmss = scale_set(world, capacity=5)
    faults.add({"kind": "stuck", "instanceIds": ["2"]})
    world.update(vmss, image_patch(), if_match=None)
    operation = world.manual_upgrade(vmss, {"instanceIds": ["2"]})
    run_until(world, hand, 3600)
    assert vmss.instances["2"].provisioning == "Updating" and operation.status == "InProgress"
    faults.clear()
    world.release_stuck()
    run_until(world, hand, 1)
    assert vmss.instances["2"].provisioning == "Succeeded"


@pytest.mark.parametrize(("text", "seconds"), [("PT0S", 0), ("PT30S", 30), ("PT1M30S", 90), ("PT2H", 7200)])
def test_iso_durations_are_read_as_azure_writes_them(text: str, seconds: float) -> None:
    assert iso_duration_seconds(text) == seconds


def test_a_model_change_is_refused_once_the_instances_reference_ten_models_and_the_model_is_kept() -> None:
    world, hand = make_world()
    vmss = scale_set(world, capacity=10)
    versions = ("22.04.202410020", "22.04.202409110")
    for k in range(9):  # the 9th change makes the 10th model its instances reference: still allowed
        world.update(vmss, image_patch(versions[k % 2]), if_match=None)
        world.manual_upgrade(vmss, {"instanceIds": [str(k)]})
        run_until(world, hand, 120)
    assert len({i.profile_version for i in vmss.instances.values()}) == 10
    before = (vmss.etag, vmss.profile_version, repr(vmss.resource))

    with pytest.raises(ArmError) as refused:
        world.update(vmss, image_patch(NEW_VERSION), if_match=None)

    assert (refused.value.status, refused.value.code) == (400, "OperationNotAllowed")
    assert f"Virtual Machine Scale Set '{vmss.name}' has reached its limit of 10 models" in refused.value.message
    assert (vmss.etag, vmss.profile_version, repr(vmss.resource)) == before
    world.update(vmss, {"sku": {"capacity": 10}, "tags": {"team": "web"}}, if_match=None)  # no new model: allowed
    world.manual_upgrade(vmss, {"instanceIds": [str(k) for k in range(10)]})
    run_until(world, hand, 120)
    world.update(vmss, image_patch(NEW_VERSION), if_match=None)
    assert vmss.profile_version == 11
