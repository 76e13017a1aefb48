"""The documented manual procedure with the real Azure CLI (PyPI ``azure-cli``, unmodified) against the simulator.

What a person does by hand, as docs/simulator.md ("Using the Azure CLI") gives it: register the simulator as a
cloud, sign in as a service principal, find the new image version, change the model's version with
``az vmss update --set``, then ``az vmss update-instances`` one update domain at a time. The only settings are the
client-side ones Azure Stack users set (see ``AzureCli``). Each ``az`` starts in about a second, so the test keeps
to one scale set and 17 commands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from component.simkit import (
    CLIENT_ID,
    JAMMY,
    JAMMY_VERSIONS,
    NOBLE,
    NOBLE_VERSIONS,
    TENANT_ID,
    TIME_SCALE,
    AzureCli,
    ScaleSet,
    jammy,
    scale_set_stats,
)
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

CLI_TIME_SCALE = 30.0
"""The CLI waits the ``Retry-After`` of an operation's status (30 s simulated) between polls, or its own 30 real
seconds when the value is 0. At 30 simulated seconds per real second the value reads 1, the fastest pace at which
the CLI still polls as Azure tells it to (docs/simulator.md, "Using the Azure CLI")."""


@pytest.fixture
def cli_paced_clock(control: SimulatorControl) -> Iterator[None]:
    """The session simulator at ``CLI_TIME_SCALE`` for the test, then back at the suite's scale."""
    control.set_clock(CLI_TIME_SCALE)
    yield
    control.set_clock(TIME_SCALE)


@pytest.fixture
def az(azure_cli_executable: Path, simulator: SimulatorThread, tmp_path: Path) -> AzureCli:
    return AzureCli(azure_cli_executable, tmp_path / "azure", simulator.ca_file)


def update_domains(instances: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Instance ids by update domain, from ``az vmss list-instances --expand instanceView``."""
    domains: dict[int, list[str]] = defaultdict(list)
    for instance in instances:
        domains[int(instance["instanceView"]["platformUpdateDomain"])].append(str(instance["instanceId"]))
    return dict(sorted(domains.items()))


def domains_in_upgrade_order(transitions: list[dict[str, Any]], domain_of: dict[str, int]) -> list[int]:
    """From the audit's provisioning transitions (oldest first): the update domain of every run of upgrades, each
    run lasting from its first ``Updating`` to its last instance's ``Succeeded``. A domain that starts while another
    is still upgrading fails here, naming both."""
    order: list[int] = []
    updating: dict[str, int] = {}
    for transition in transitions:
        instance = str(transition["instanceId"])
        if transition["to"] == "Updating":
            others = {domain for domain in updating.values() if domain != domain_of[instance]}
            assert not others, f"update domain {domain_of[instance]} started while {others} were upgrading"
            if not updating:
                order.append(domain_of[instance])
            updating[instance] = domain_of[instance]
        elif transition["from"] == "Updating":
            updating.pop(instance, None)
    return order


def test_the_documented_manual_procedure_with_the_real_azure_cli_upgrades_one_update_domain_at_a_time(
    az: AzureCli,
    simulator: SimulatorThread,
    control: SimulatorControl,
    scale_sets: Callable[..., ScaleSet],
    cli_paced_clock: None,
) -> None:
    scale_set = scale_sets(capacity=10, image=jammy(JAMMY_VERSIONS[0]))
    group, name = scale_set.resource_group, scale_set.name
    target = ["--resource-group", group, "--name", name]

    az.run("cloud", "register", "--name", "Simulator", "--endpoint-resource-manager", simulator.url)
    az.run("cloud", "set", "--name", "Simulator")
    signed_in = az.json(
        "login", "--service-principal", "--username", CLIENT_ID, "--password", "any-secret", "--tenant", TENANT_ID
    )
    az.run("account", "set", "--subscription", scale_set.subscription_id)
    account = az.json("account", "show")

    assert scale_set.subscription_id in {entry["id"] for entry in signed_in}
    assert {entry["tenantId"] for entry in signed_in} == {TENANT_ID}
    assert (account["id"], account["environmentName"]) == (scale_set.subscription_id, "Simulator")
    assert account["user"] == {"name": CLIENT_ID, "type": "servicePrincipal"}

    filters = ["--publisher", JAMMY["publisher"], "--offer", JAMMY["offer"], "--sku", JAMMY["sku"]]
    jammy_images = az.json("vm", "image", "list", "--all", *filters)
    every_image = az.json("vm", "image", "list", "--all")
    newest = max(jammy_images, key=lambda image: tuple(int(part) for part in image["version"].split(".")))["version"]

    assert [image["version"] for image in jammy_images] == list(JAMMY_VERSIONS)
    assert newest == JAMMY_VERSIONS[-1]
    published = {":".join((*JAMMY.values(), v)) for v in JAMMY_VERSIONS}
    published |= {":".join((*NOBLE.values(), v)) for v in NOBLE_VERSIONS}
    assert published <= {image["urn"] for image in every_image}

    before = az.json("vmss", "show", *target)
    instances = az.json("vmss", "list-instances", *target, "--expand", "instanceView")
    view = az.json("vmss", "get-instance-view", *target)
    domains = update_domains(instances)

    assert before["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] == JAMMY_VERSIONS[0]
    assert domains == {d: [str(i) for i in range(10) if i % 5 == d] for d in range(5)}
    assert view["virtualMachine"]["statusesSummary"] == [{"code": "ProvisioningState/succeeded", "count": 10}]

    after = az.json(
        "vmss", "update", *target, "--set", f"virtualMachineProfile.storageProfile.imageReference.version={newest}"
    )

    assert after["virtualMachineProfile"]["storageProfile"]["imageReference"] == {**JAMMY, "version": newest}

    for ids in domains.values():
        az.run("vmss", "update-instances", *target, "--instance-ids", *ids)
    upgraded = az.json("vmss", "list-instances", *target)

    assert {(vm["latestModelApplied"], vm["storageProfile"]["imageReference"]["exactVersion"]) for vm in upgraded} == {
        (True, newest)
    }
    transitions = control.audit(scaleSet=scale_set.id, kind="transition")
    provisioning = [entry for entry in transitions if entry["field"] == "provisioning"]
    domain_of = {instance: domain for domain, ids in domains.items() for instance in ids}
    assert domains_in_upgrade_order(provisioning, domain_of) == [0, 1, 2, 3, 4]
    stats = scale_set_stats(control.stats(), scale_set)
    assert (stats["maxConcurrentDomains"], stats["doubleUpgrades"], stats["upgrades"]) == (1, 0, 10)
    assert stats["modelWrites"] == 1
