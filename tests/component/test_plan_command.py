"""``scaleset-image plan -f``: the rollout a ScaleSetImage would make, printed, with nothing changed in Azure."""

from __future__ import annotations

from pathlib import Path

import yaml

from component.simkit import ScaleSet, run_plan
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread


def write_manifest(path: Path, scale_set: ScaleSet, image: dict[str, object]) -> Path:
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
