"""The simulator's small pure parts: image catalog, throttling buckets, clock, faults."""

from __future__ import annotations

import pytest

from scaleset_image_operator.simulator.clock import SimClock
from scaleset_image_operator.simulator.errors import ArmError
from scaleset_image_operator.simulator.faults import FaultBook
from scaleset_image_operator.simulator.images import ImageCatalog, version_key
from scaleset_image_operator.simulator.throttling import Throttler


def test_versions_are_ordered_numerically_not_as_text() -> None:
    assert sorted(["1.10.0", "1.9.0", "1.2.3"], key=version_key) == ["1.2.3", "1.9.0", "1.10.0"]


def test_latest_resolves_to_the_newest_published_platform_version() -> None:
    catalog = ImageCatalog.with_defaults()
    catalog.publish(
        {
            "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts-gen2",
            "versions": ["22.04.202501150"],
        }
    )
    resolved = catalog.resolve(
        {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-LTS-gen2",
            "version": "latest",
        },
        None,
        "eastus",
    )
    assert resolved["exactVersion"] == "22.04.202501150"


def test_an_unknown_gallery_version_fails_as_azure_does() -> None:
    with pytest.raises(ArmError) as missing:
        ImageCatalog().resolve(
            {
                "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/"
                "images/web/versions/9.9.9"
            },
            None,
            "westeurope",
        )
    assert (missing.value.status, missing.value.code) == (404, "GalleryImageNotFound")
    assert "westeurope" in missing.value.message


def test_a_bucket_refuses_once_empty_and_refills_with_simulated_time() -> None:
    throttler = Throttler()
    for _ in range(36):
        assert throttler.take("GetVMScaleSet", "sub", "vmss", now=0.0).allowed
    refused = throttler.take("GetVMScaleSet", "sub", "vmss", now=0.0)
    assert not refused.allowed
    assert refused.exhausted == "GetVMScaleSetResource"
    assert refused.retry_after == pytest.approx(5.0)
    assert refused.header.startswith("Microsoft.Compute/GetVMScaleSetResource;0,")
    assert throttler.take("GetVMScaleSet", "sub", "vmss", now=5.0).allowed


def test_buckets_are_per_resource() -> None:
    throttler = Throttler()
    for _ in range(36):
        throttler.take("GetVMScaleSet", "sub", "a", now=0.0)
    assert throttler.take("GetVMScaleSet", "sub", "b", now=0.0).allowed


def test_a_faster_clock_runs_simulated_time_faster_and_stays_continuous() -> None:
    real = [100.0]
    clock = SimClock(10.0, monotonic=lambda: real[0])
    real[0] += 2
    assert clock.now() == pytest.approx(20.0)
    clock.set_time_scale(1.0)
    assert clock.now() == pytest.approx(20.0)
    real[0] += 2
    assert clock.now() == pytest.approx(22.0)


def test_a_fault_fires_its_count_then_goes_away() -> None:
    book = FaultBook()
    book.add({"kind": "error", "match": {"method": "get", "path": "virtualMachineScaleSets/web$"}, "count": 2})
    assert book.for_request("POST", "/x/virtualMachineScaleSets/web") is None
    assert book.for_request("GET", "/x/virtualMachineScaleSets/web/virtualMachines") is None
    assert book.for_request("GET", "/x/virtualMachineScaleSets/WEB") is not None
    assert book.for_request("GET", "/x/virtualMachineScaleSets/web") is not None
    assert book.for_request("GET", "/x/virtualMachineScaleSets/web") is None


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "meteor"},
        {"kind": "error", "match": {"path": "("}},
        {"kind": "stuck"},
        {"kind": "error", "count": "many"},
    ],
)
def test_a_malformed_fault_is_refused_with_a_reason(body: dict[str, object]) -> None:
    with pytest.raises(ArmError) as refused:
        FaultBook().add(body)
    assert refused.value.status == 400


def test_a_gallery_definition_resolves_to_its_highest_version_for_the_region_not_excluded_from_latest() -> None:
    definition = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web"
    catalog = ImageCatalog()
    catalog.publish({"id": f"{definition}/versions/1.9.0", "targetRegions": ["West Europe"]})
    catalog.publish({"id": f"{definition}/versions/1.10.0", "targetRegions": ["westeurope", "East US"]})
    catalog.publish(
        {"id": f"{definition}/versions/1.11.0", "targetRegions": ["West Europe"], "excludeFromLatest": True}
    )
    catalog.publish(
        {"id": f"{definition}/versions/1.12.0", "targetRegions": [{"name": "WestEurope", "excludeFromLatest": True}]}
    )
    catalog.publish({"id": f"{definition}/versions/2.0.0", "targetRegions": ["East US"]})

    assert catalog.resolve({"id": definition}, None, "westeurope") == {"id": f"{definition}/versions/1.10.0"}
    assert catalog.resolve({"id": definition}, None, "eastus") == {"id": f"{definition}/versions/2.0.0"}
    with pytest.raises(ArmError) as none_there:
        catalog.resolve({"id": definition}, None, "northeurope")
    assert (none_there.value.status, none_there.value.code) == (400, "InvalidParameter")
