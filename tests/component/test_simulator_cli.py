"""The ``scaleset-image simulator`` command: started as a user would, read at the URL it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from component.simkit import RESOURCE_GROUP

SUBSCRIPTION = "00000000-0000-0000-0000-0000000c1100"

SCALESETS_YAML = f"""\
images:
  - publisher: ComponentTests
    offer: cli-offer
    sku: server
    versions: ["1.0.0", "1.1.0"]
scalesets:
  - subscriptionId: {SUBSCRIPTION}
    resourceGroup: {RESOURCE_GROUP}
    name: from-yaml
    capacity: 3
    image: {{publisher: ComponentTests, offer: cli-offer, sku: server, version: "1.0.0"}}
"""


def scaleset_image() -> str:
    """The console script installed next to the interpreter running the tests."""
    return str(Path(sys.executable).parent / "scaleset-image")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The simulator command on a free port; yields the URL from its first line and its CA file."""
    scalesets = tmp_path / "scalesets.yaml"
    scalesets.write_text(SCALESETS_YAML)
    ca_file = tmp_path / "ca.pem"
    process = subprocess.Popen(
        [
            scaleset_image(),
            "simulator",
            "--port",
            "0",
            "--ca-file",
            str(ca_file),
            "--scalesets",
            str(scalesets),
            "--time-scale",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        url = re.search(r"https://[^\s,()]+", first_line)
        assert url, f"no URL in the first line {first_line!r} (exit code {process.poll()})"
        yield url.group(0).rstrip("/"), ca_file
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.timeout(60)
async def test_the_command_serves_the_scale_sets_of_its_yaml_file_at_the_url_it_prints(
    started: tuple[str, Path], open_compute
) -> None:
    url, ca_file = started

    async with open_compute(SUBSCRIPTION, url=url, ca_file=ca_file) as compute:
        vmss = await compute.virtual_machine_scale_sets.get(RESOURCE_GROUP, "from-yaml")
        versions = await compute.virtual_machine_images.list("eastus", "ComponentTests", "cli-offer", "server")

    assert vmss.sku.capacity == 3
    assert vmss.properties.virtual_machine_profile.storage_profile.image_reference.version == "1.0.0"
    assert [v.name for v in versions] == ["1.0.0", "1.1.0"]
    assert url.startswith("https://127.0.0.1:")
    assert ca_file.exists()
