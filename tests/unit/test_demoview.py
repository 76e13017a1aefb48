"""The demo's drawing: lines fitted to a width without cutting words, the grid of domains x instances, and the
per-scale-set request tally made from the simulator's stats."""

from __future__ import annotations

import pytest

from scaleset_image_operator.core.images import Image
from scaleset_image_operator.core.observation import Health, InstanceView, ScaleSetView
from scaleset_image_operator.demoview import grid, progress_bar, request_lines, request_tally, upgrading_domains, wrap

JAMMY = ("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2")
OLD = Image.platform(*JAMMY, "22.04.202409110")
NEW = Image.platform(*JAMMY, "22.04.202411010")
WEB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web"
AUTO = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-auto"


def instances(
    count: int, *, upgrading: frozenset[int] = frozenset(), done: frozenset[int] = frozenset()
) -> ScaleSetView:
    """``count`` instances in update domains k mod 5: ``upgrading`` ones Updating, ``done`` ones on NEW and healthy,
    the rest on OLD."""
    views = tuple(
        InstanceView(
            instance_id=str(k),
            update_domain=k % 5,
            fault_domain=k % 5,
            zone=None,
            latest_model_applied=k in done,
            image=NEW if k in done else OLD,
            provisioning_state="Updating" if k in upgrading else "Succeeded",
            power_state="running",
            health=Health.HEALTHY,
        )
        for k in range(count)
    )
    return ScaleSetView("id", "vmss-web", "eastus", "1", "Manual", "Uniform", NEW, count, "Succeeded", views)


@pytest.mark.parametrize("width", [40, 80, 200])
def test_wrapped_lines_fit_the_width_and_keep_an_image_name_whole(width: int) -> None:
    text = f"   event Normal  ModelUpdated      model image set to {NEW.key()} (was {OLD.key()})"

    lines = wrap(text, width, hang=33)

    assert all(len(line) <= width for line in lines)
    assert "".join("".join(lines).split()) == "".join(text.split())
    if width >= len(NEW.key()) + 3:
        assert any(NEW.key() in line for line in lines)


def test_a_continuation_line_hangs_under_its_first_line() -> None:
    lines = wrap("  " + "word " * 30, 40, hang=4)

    assert lines[0].startswith("  word")
    assert all(line.startswith("      word") for line in lines[1:])


def test_the_grid_has_one_row_per_update_domain_and_one_cell_per_instance() -> None:
    view = instances(15, upgrading=frozenset({1, 6, 11}), done=frozenset({0, 5, 10}))

    assert grid(view, NEW, 80, color=False) == [
        "  UD 0  █ █ █",
        "  UD 1  ▒ ▒ ▒",
        "  UD 2  · · ·",
        "  UD 3  · · ·",
        "  UD 4  · · ·",
    ]
    assert upgrading_domains(view, NEW) == 1


def test_a_domain_wider_than_the_width_goes_on_in_rows_under_its_first_cell() -> None:
    rows = grid(instances(500), NEW, 80, color=False)

    assert all(len(row) <= 80 for row in rows)
    assert rows[0].startswith("  UD 0  ·")
    assert rows[1].startswith("        ·")
    assert sum(row.count("·") for row in rows) == 500


def test_colour_codes_do_not_change_which_cells_a_row_holds() -> None:
    view = instances(500)

    plain, coloured = grid(view, NEW, 80, color=False), grid(view, NEW, 80, color=True)

    assert [line.count("·") for line in coloured] == [line.count("·") for line in plain]


@pytest.mark.parametrize("width", [40, 80, 200])
def test_the_progress_bar_fits_the_width(width: int) -> None:
    assert len(progress_bar(7, 15, width)) <= width


def test_requests_no_scale_set_owns_are_counted_apart() -> None:
    stats = {
        "requests": {"VirtualMachineScaleSets_Get": 5, "VirtualMachineScaleSets_Update": 2, "Operations_Get": 4},
        "scaleSets": {
            WEB: {"requests": {"VirtualMachineScaleSets_Get": 3, "VirtualMachineScaleSets_Update": 1}},
            AUTO: {"requests": {"VirtualMachineScaleSets_Get": 1, "VirtualMachineScaleSets_Update": 1}},
        },
    }

    tally = request_tally(stats, {WEB: "vmss-web", AUTO: "vmss-auto"})

    assert tally == [
        ("vmss-web", {"VirtualMachineScaleSets_Get": 3, "VirtualMachineScaleSets_Update": 1}),
        ("vmss-auto", {"VirtualMachineScaleSets_Get": 1, "VirtualMachineScaleSets_Update": 1}),
        ("no scale set", {"VirtualMachineScaleSets_Get": 1, "Operations_Get": 4}),
    ]
    assert request_lines(tally, 200) == [
        "  ARM requests: 11, by scale set and REST operation",
        "  vmss-web       4  VirtualMachineScaleSets_Get 3, VirtualMachineScaleSets_Update 1",
        "  vmss-auto      2  VirtualMachineScaleSets_Get 1, VirtualMachineScaleSets_Update 1",
        "  no scale set   5  Operations_Get 4, VirtualMachineScaleSets_Get 1",
    ]
