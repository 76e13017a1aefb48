"""``scaleset-image plan`` accepts exactly what the API server accepts, and names the same fields when it refuses.

Every example manifest and a corpus of invalid ones go to both: ``kubectl apply --dry-run=server --validate=strict``
against the real kube-apiserver with the CRD as shipped, and the ``plan`` command run in-process with the session
simulator as Azure. A manifest the API server refuses must make ``plan`` exit 2 naming the same field paths; one it
accepts must get past ``plan``'s validation (the plan itself may still be refused by Azure, exit 3: the example's
scale set does not exist in the simulator).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.clusterkit import Kubectl
from cluster.test_crd_validation import BAD_SPECS, valid, with_spec
from component.simkit import plan_variables
from scaleset_image_operator import cli
from scaleset_image_operator.simulator import SimulatorThread

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
FIELD = re.compile(r"\b((?:spec|metadata)(?:\.[A-Za-z]+|\[\d+\])*)")


def examples() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "ScaleSetImage":
                yield f"example {path.name} {document['metadata']['name']}", document


def invalid(**changes: Any) -> dict[str, Any]:
    return with_spec("placeholder", **changes)


def replaced(path: str, value: Any) -> dict[str, Any]:
    document = valid("placeholder")
    node: Any = document
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return document


MORE_INVALID: dict[str, dict[str, Any]] = {
    "a pause given as a number": invalid(rollout__pauseBetweenBatches=2),
    "a misspelt rollout field": invalid(rollout__maxBatchsize=2),
    "a misspelt top-level spec field": invalid(dryrun=True),
    "an unknown field inside the platform image": invalid(image__platform__plan="x"),
    "a spec that is a string": replaced("spec", "hello"),
    "a rollout that is a list": invalid(rollout=[]),
    "a version that YAML reads as a number": invalid(image__platform__version=22.04),
    "an upper-case object name": replaced("metadata.name", "Web"),
    "a domain listed twice": invalid(rollout__order=[1, 1]),
    "a domain that is no number": invalid(rollout__order=["x"]),
    "order with the Batch strategy": invalid(rollout__strategy="Batch", rollout__order=[0]),
    "a zero batch size": invalid(rollout__strategy="Batch", rollout__maxBatchSize=0),
    "a zero percent batch size": invalid(rollout__strategy="Batch", rollout__maxBatchSize="0%"),
    "a negative unhealthy count": invalid(rollout__maxUnhealthyInstances=-1),
    "an unknown health mode": invalid(rollout__healthCheck__mode="Sometimes"),
    "a health timeout of two days": invalid(rollout__healthCheck__timeout="48h"),
    "a paused flag that is a string": invalid(rollout__paused="no"),
    "a resource group with a slash": invalid(scaleSet__resourceGroup="rg/web"),
    "a platform publisher with a non-ASCII letter": invalid(image__platform__publisher="Canonica\u0142"),
}

VALID_VARIANTS: dict[str, dict[str, Any]] = {
    "a resource group with a non-ASCII letter": invalid(scaleSet__resourceGroup="rg-w\u00e9b"),
    "a batch of 20 percent": invalid(rollout__strategy="Batch", rollout__maxBatchSize="20%"),
    "zones named as strings": invalid(rollout__strategy="Zone", rollout__order=["2", "1"]),
    "a pause of one and a half hours": invalid(rollout__pauseBetweenBatches="1h30m"),
}


def corpus() -> list[tuple[str, dict[str, Any]]]:
    cases = list(examples())
    cases += [(f"bad: {name}", with_spec("placeholder", **changes)) for name, (changes, _) in BAD_SPECS.items()]
    cases += [(f"bad: {name}", document) for name, document in MORE_INVALID.items()]
    cases += [(f"good: {name}", document) for name, document in VALID_VARIANTS.items()]
    return cases


CORPUS = corpus()


@pytest.fixture
def plan_environment(monkeypatch: pytest.MonkeyPatch, simulator: SimulatorThread) -> None:
    """The variables a person sets to point ``plan`` at the simulator (as ARM and as the token authority)."""
    for name, value in plan_variables(simulator).items():
        monkeypatch.setenv(name, value)


def test_the_corpus_holds_every_example_and_many_invalid_manifests() -> None:
    assert sum(1 for label, _ in CORPUS if label.startswith("example")) >= 17
    assert sum(1 for label, _ in CORPUS if label.startswith("bad")) >= 30


@pytest.mark.usefixtures("plan_environment")
@pytest.mark.parametrize(("label", "document"), CORPUS, ids=[label for label, _ in CORPUS])
def test_plan_accepts_what_the_api_server_accepts_and_names_the_fields_it_refuses(
    label: str,
    document: dict[str, Any],
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = copy.deepcopy(document)
    manifest["metadata"]["namespace"] = namespace
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(manifest))

    server = kubectl.run("apply", "--dry-run=server", "--validate=strict", "-f", str(path), check=False)
    code = cli.main(["plan", "-f", str(path)])
    said = capsys.readouterr().err

    if server.returncode == 0:
        assert code != cli.EXIT_INPUT, f"{label}: the API server accepts it, plan refused it:\n{said}"
        assert not label.startswith("bad"), f"{label}: the API server accepted a manifest meant to be invalid"
    else:
        assert code == cli.EXIT_INPUT, f"{label}: the API server refuses it ({server.stderr}), plan exited {code}"
        assert len(said.strip().splitlines()) == 1, f"{label}: not one line:\n{said}"
        assert set(FIELD.findall(said)) == set(FIELD.findall(server.stderr)), (
            f"{label}: different fields\n  API server: {server.stderr.strip()}\n  plan:       {said.strip()}"
        )
