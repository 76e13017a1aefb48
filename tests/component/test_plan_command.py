"""``scaleset-image plan -f``: the rollout a ScaleSetImage would make, printed, with nothing changed in Azure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from component.simkit import JAMMY_VERSIONS, ScaleSet, gallery_image, jammy, run_plan
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


def write_manifest(path: Path, scale_set: ScaleSet, image: dict[str, object], **spec: object) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "scaleset.dev/v1alpha1",
                "kind": "ScaleSetImage",
                "metadata": {"name": "web"},
                "spec": {
                    "scaleSet": {
                        "subscriptionId": scale_set.subscription_id,
                        "resourceGroup": scale_set.resource_group,
                        "name": scale_set.name,
                    },
                    "image": image,
                    **spec,
                },
            }
        )
    )
    return path


def test_plan_prints_every_batch_with_instances_and_images_and_changes_nothing(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: object, tmp_path: Path
) -> None:
    scale_set = scale_sets(capacity=10)  # type: ignore[operator]
    writes_before = control.stats()["writes"]
    manifest = write_manifest(
        tmp_path / "ssi.yaml",
        scale_set,
        {
            "platform": {
                "publisher": "Canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts-gen2",
                "version": "latest",
            }
        },
    )
    result = run_plan(simulator, manifest)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "resolved from latest" in out and "22.04.202411010" in out
    rows = [line.split() for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert [row[:3] for row in rows if len(row) >= 5][:2] == [["0", "0", "0"], ["1", "1", "1"]]
    assert "estimated duration" in out and "nothing was changed" in out
    assert control.stats()["writes"] == writes_before
    assert control.stats()["scaleSets"][scale_set.id]["modelWrites"] == 0


def test_plan_of_an_invalid_spec_names_the_field_and_exits_2(
    simulator: SimulatorThread, scale_sets: object, tmp_path: Path
) -> None:
    scale_set = scale_sets()  # type: ignore[operator]
    manifest = write_manifest(tmp_path / "bad.yaml", scale_set, {"uri": "http://not-https/x.vhd"})
    result = run_plan(simulator, manifest)
    assert result.returncode == 2
    assert "spec.image.uri" in result.stderr


GALLERY_VERSION = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-images/providers/Microsoft.Compute/"
    "galleries/g/images/web/versions/1.0.0"
)


def no_writes(control: SimulatorControl, scale_set: ScaleSet) -> bool:
    return control.stats()["scaleSets"][scale_set.id]["modelWrites"] == 0


@pytest.mark.parametrize("mode", ["Automatic", "Rolling"])
def test_plan_refuses_a_scale_set_that_is_not_manual_as_a_real_pass_does_and_exits_3(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Any, tmp_path: Path, mode: str
) -> None:
    scale_set = scale_sets(image=jammy(), upgradePolicy=mode, healthExtension=True)
    manifest = write_manifest(tmp_path / "ssi.yaml", scale_set, {"platform": jammy(JAMMY_VERSIONS[2])})
    result = run_plan(simulator, manifest)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "UpgradePolicyNotManual" in result.stderr and f"upgradePolicy.mode {mode}" in result.stderr
    assert no_writes(control, scale_set)


def test_plan_with_enforce_says_it_would_set_the_mode_to_manual_first_and_changes_nothing(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Any, tmp_path: Path
) -> None:
    scale_set = scale_sets(image=jammy(), upgradePolicy="Automatic")
    manifest = write_manifest(
        tmp_path / "ssi.yaml", scale_set, {"platform": jammy(JAMMY_VERSIONS[2])}, upgradePolicy="Enforce"
    )
    result = run_plan(simulator, manifest)
    assert result.returncode == 0, result.stderr
    assert "would set upgradePolicy.mode from Automatic to Manual, then change the model image" in result.stdout
    assert no_writes(control, scale_set)


@pytest.mark.parametrize(
    "image",
    [
        {"platform": jammy("22.04.209912310")},
        {"id": GALLERY_VERSION.replace("/images/web/", "/images/absent/")},
        {
            "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-images/providers/"
            "Microsoft.Compute/images/absent"
        },
    ],
    ids=["platform-version", "gallery-version", "managed-image"],
)
def test_plan_of_an_image_that_does_not_exist_is_refused_as_image_not_found_and_exits_3(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Any, tmp_path: Path, image: dict[str, Any]
) -> None:
    if "platform" in image:
        scale_set = scale_sets(image=jammy())
    else:
        control.publish_image(id=GALLERY_VERSION)
        scale_set = scale_sets(image={"id": GALLERY_VERSION})
    manifest = write_manifest(tmp_path / "ssi.yaml", scale_set, image)
    result = run_plan(simulator, manifest)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "ImageNotFound" in result.stderr
    assert no_writes(control, scale_set)


@pytest.mark.parametrize(
    "image",
    [
        {"platform": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}},
        {"id": GALLERY_VERSION},
    ],
    ids=["offer-change", "platform-to-gallery"],
)
def test_plan_of_an_image_change_azure_refuses_in_place_is_refused_and_exits_3(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Any, tmp_path: Path, image: dict[str, Any]
) -> None:
    scale_set = scale_sets(image=jammy())
    manifest = write_manifest(tmp_path / "ssi.yaml", scale_set, image)
    result = run_plan(simulator, manifest)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "ImageChangeNotAllowed" in result.stderr
    assert no_writes(control, scale_set)


def test_plan_of_a_strategy_that_cannot_apply_exits_3_with_the_reason(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Any, tmp_path: Path
) -> None:
    scale_set = scale_sets(image=jammy())
    manifest = write_manifest(
        tmp_path / "ssi.yaml", scale_set, {"platform": jammy(JAMMY_VERSIONS[2])}, rollout={"strategy": "Zone"}
    )
    result = run_plan(simulator, manifest)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "StrategyNotApplicable" in result.stderr and "regional scale set" in result.stderr


def test_plan_of_a_scale_set_that_does_not_exist_exits_3(simulator: SimulatorThread, tmp_path: Path) -> None:
    absent = ScaleSet("", "vmss-absent", "rg-absent", "00000000-0000-0000-0000-0000000000ff", 0)
    manifest = write_manifest(tmp_path / "ssi.yaml", absent, {"platform": jammy(JAMMY_VERSIONS[2])})
    result = run_plan(simulator, manifest)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "ScaleSetNotFound" in result.stderr


def test_plan_that_cannot_reach_azure_over_trusted_tls_exits_1(
    simulator: SimulatorThread, scale_set: ScaleSet, tmp_path: Path
) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    manifest = write_manifest(tmp_path / "ssi.yaml", scale_set, {"platform": jammy(JAMMY_VERSIONS[2])})
    result = run_plan(simulator, manifest, SCALESET_IMAGE_CA_BUNDLE=str(stranger))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("rollout", "field"),
    [
        ({"pauseBetweenBatches": 2}, "spec.rollout.pauseBetweenBatches"),
        ({"maxBatchsize": 2}, 'unknown field "spec.rollout.maxBatchsize"'),
    ],
    ids=["pause-as-a-number", "misspelt-field"],
)
def test_plan_refuses_what_the_api_server_refuses_in_one_line_with_exit_2(
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_set: ScaleSet,
    tmp_path: Path,
    rollout: dict[str, Any],
    field: str,
) -> None:
    manifest = write_manifest(tmp_path / "ssi.yaml", scale_set, {"platform": jammy(JAMMY_VERSIONS[2])}, rollout=rollout)
    result = run_plan(simulator, manifest)
    assert result.returncode == 2, result.stdout + result.stderr
    assert field in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert no_writes(control, scale_set)


def test_plan_of_a_gallery_image_definition_names_the_version_it_would_pin(
    simulator: SimulatorThread, control: SimulatorControl, scale_sets: Any, tmp_path: Path, subscription_id: str
) -> None:
    definition = gallery_image(subscription_id)
    control.publish_image(id=f"{definition}/versions/1.0.0", targetRegions=["East US"])
    control.publish_image(id=f"{definition}/versions/1.2.0", targetRegions=["East US"])
    control.publish_image(id=f"{definition}/versions/1.3.0", targetRegions=["East US"], excludeFromLatest=True)
    scale_set = scale_sets(location="eastus", image={"id": f"{definition}/versions/1.0.0"})
    manifest = write_manifest(tmp_path / "ssi.yaml", scale_set, {"id": definition})
    result = run_plan(simulator, manifest)
    assert result.returncode == 0, result.stderr
    assert f"target image   {definition}/versions/1.2.0  (the newest eligible version" in result.stdout
    assert no_writes(control, scale_set)
