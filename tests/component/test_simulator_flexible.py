"""Flexible orchestration: the scale set and its model work, the Uniform-only instance APIs are refused."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute.aio import ComputeManagementClient

from component.simkit import ScaleSet, list_vms


@pytest.fixture
def flexible(scale_sets) -> ScaleSet:
    return scale_sets(orchestrationMode="Flexible")


async def test_a_flexible_scale_set_reads_back_as_flexible(
    compute: ComputeManagementClient, flexible: ScaleSet
) -> None:
    vmss = await compute.virtual_machine_scale_sets.get(flexible.resource_group, flexible.name)

    assert vmss.properties.orchestration_mode == "Flexible"


async def test_listing_the_instances_of_a_flexible_scale_set_is_refused_with_400(
    compute: ComputeManagementClient, flexible: ScaleSet
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await list_vms(compute, flexible)

    assert refused.value.status_code == 400
    assert refused.value.error.code == "OperationNotAllowed"
    assert "Flexible" in refused.value.error.message


async def test_the_instance_view_of_a_flexible_scale_set_is_refused_with_400(
    compute: ComputeManagementClient, flexible: ScaleSet
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await compute.virtual_machine_scale_sets.get_instance_view(flexible.resource_group, flexible.name)

    assert (refused.value.status_code, refused.value.error.code) == (400, "OperationNotAllowed")


async def test_a_manual_upgrade_with_numeric_ids_on_a_flexible_scale_set_is_refused_with_400(
    compute: ComputeManagementClient, flexible: ScaleSet
) -> None:
    with pytest.raises(HttpResponseError) as refused:
        await compute.virtual_machine_scale_sets.begin_update_instances(
            flexible.resource_group, flexible.name, {"instanceIds": ["0"]}
        )

    assert (refused.value.status_code, refused.value.error.code) == (400, "OperationNotAllowed")
