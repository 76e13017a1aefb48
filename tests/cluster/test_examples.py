"""The documentation as a user meets it: examples/, the kubectl commands of the README and docs/operations.md.

Each manifest in examples/ is sent to the real API server with the shipped CRD (``kubectl apply --dry-run=server``)
and must come back with every field it wrote unchanged (nothing pruned, renamed or refused); ``scaleset-image plan``
must then plan it against a scale set made to match it in the Azure simulator, with only the subscription id
changed in a copy (the files stay as people copy them). The simulator is this module's own: the images the examples
name are published into its catalogue, which in the session's simulator every other test shares.

Every ``kubectl patch``, ``annotate`` and ``label`` of a ScaleSetImage in the docs and examples is run against the API
server, so none can go stale (the README's reference tables are rendered from the CRD itself: tests/unit/
test_reference_docs.py). The sharding overlay of docs/operations.md is rendered with ``kubectl kustomize`` and
checked by the API server.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.clusterkit import CRD, OPERATOR_NAMESPACE, REPO, Kubectl
from component.simkit import run_plan
from scaleset_image_operator.core.quantities import format_duration, parse_duration, parse_int_or_percent
from scaleset_image_operator.reconciler import ABORT_ANNOTATION, APPROVE_ANNOTATION, Resource, read_controls
from scaleset_image_operator.simulator import SimulatorConfig, SimulatorControl, SimulatorThread

pytestmark = pytest.mark.cluster

EXAMPLES_FOLDER = REPO / "examples"
EXAMPLES = sorted(EXAMPLES_FOLDER.glob("*.yaml"))
README = REPO / "README.md"
OPERATIONS = REPO / "docs" / "operations.md"
PLACEHOLDER_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
CAPACITY = 10
"""Instances of the scale set each example is planned against: 2 per update domain and per fault domain."""
ZONES = ["1", "2", "3"]

Document = dict[str, Any]


def example_id(path: Path) -> str:
    return path.name


def load(path: Path) -> Document:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path.name} is not one YAML mapping"
    return document


def the_crd() -> Document:
    return load(REPO / "crds" / f"{CRD}.yaml")


def schema_of(part: str) -> Document:
    schema = the_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(schema["properties"][part])


def field_paths(schema: Mapping[str, Any], prefix: str) -> dict[str, Mapping[str, Any]]:
    """Every property under ``schema``, recursively, by dotted path (``spec.rollout.healthCheck.mode``)."""
    found: dict[str, Mapping[str, Any]] = {}
    for name, child in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        found[path] = child
        found.update(field_paths(child, path))
        items = child.get("items") or {}
        found.update(field_paths(items, f"{path}[]"))
    return found


# --- every example ---------------------------------------------------------------------------------------------------


def test_the_examples_folder_lists_each_example_and_each_says_what_it_does_and_when_to_use_it() -> None:
    assert len(EXAMPLES) >= 15, f"examples/ holds only {[p.name for p in EXAMPLES]}"
    listed = set(re.findall(r"\]\(([\w.-]+\.yaml)\)", (EXAMPLES_FOLDER / "README.md").read_text()))
    assert listed == {p.name for p in EXAMPLES}, "examples/README.md and the files in examples/ differ"
    for path in EXAMPLES:
        text = path.read_text()
        header = text[: text.index("apiVersion:")]
        assert header.startswith("# ") and "Use it" in header, f"{path.name}: no comment header saying when to use it"
        document = load(path)
        assert "namespace" not in document["metadata"], f"{path.name} names a namespace: leave it to kubectl -n"
        assert document["spec"]["scaleSet"]["subscriptionId"] == PLACEHOLDER_SUBSCRIPTION, path.name


def kinds_of_image(paths: list[Path]) -> set[str]:
    return {next(iter(load(path)["spec"]["image"])) for path in paths}


def test_the_examples_cover_every_kind_of_image_the_crd_accepts() -> None:
    assert kinds_of_image(EXAMPLES) == set(schema_of("spec")["properties"]["image"]["properties"])
    ids = [str(load(p)["spec"]["image"]["id"]) for p in EXAMPLES if "id" in load(p)["spec"]["image"]]
    assert any("/galleries/" in i and "/versions/" in i for i in ids), "no gallery image version example"
    assert any("/providers/Microsoft.Compute/images/" in i for i in ids), "no managed image example"
    versions = {str(load(p)["spec"]["image"].get("platform", {}).get("version")) for p in EXAMPLES}
    assert "latest" in versions and len(versions - {"latest", "None"}) >= 1, "platform latest and pinned both needed"


def leaves(document: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(document, Mapping):
        for key, value in document.items():
            yield from leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list) and document:
        for position, value in enumerate(document):
            yield from leaves(value, f"{path}[{position}]")
    else:
        yield path, document


def at(document: Any, path: str) -> Any:
    node = document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return node


def has(document: Mapping[str, Any], path: str) -> bool:
    node: Any = document
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_the_api_server_accepts_the_example_with_every_field_as_written(
    example: Path, kubectl: Kubectl, namespace: str
) -> None:
    answer = kubectl.run("apply", "--dry-run=server", "-f", str(example), "-n", namespace, "-o", "json")
    accepted = json.loads(answer.stdout)
    assert "unknown field" not in answer.stderr, answer.stderr
    written = load(example)
    for path, value in leaves(written["spec"]):
        assert at(accepted["spec"], path) == value, f"{example.name}: spec.{path} came back changed"
    defaulted = {path for path, node in field_paths(schema_of("spec"), "spec").items() if "default" in node}
    missing = [path for path in defaulted if not has(accepted, path)]
    assert missing == [], f"{example.name}: the API server did not fill in {missing}"


def test_the_every_field_example_names_every_field_at_its_default() -> None:
    written = load(EXAMPLES_FOLDER / "every-field.yaml")
    fields = field_paths(schema_of("spec"), "spec")
    for path, node in fields.items():
        other_image_source = path.startswith("spec.image.") and not path.startswith("spec.image.platform")
        assert has(written, path) or other_image_source, f"every-field.yaml leaves out {path}"
        if "default" in node and not isinstance(node["default"], dict):
            assert at(written, path) == node["default"], f"every-field.yaml: {path} is not the default"


# --- scaleset-image plan -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorThread]:
    config = SimulatorConfig(
        host="127.0.0.1", port=0, ca_file=tmp_path_factory.mktemp("examples-simulator") / "ca.pem", time_scale=60.0
    )
    with SimulatorThread(config) as simulator:
        yield simulator


def previous_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """An image of the same family that the scale set runs before the rollout: version 0.0.1 of the same platform
    image or gallery image, or a managed image or VHD of another name (Azure changes these in place)."""
    kind, value = next(iter(image.items()))
    if kind == "platform":
        return {**value, "version": "0.0.1"}
    versioned = re.fullmatch(r"(?i)(.*/versions/)[^/]+", value)
    if versioned:
        return {kind: f"{versioned.group(1)}0.0.1"}
    if kind == "uri":
        return {kind: re.sub(r"(?i)\.vhd$", "-previous.vhd", value)}
    return {kind: f"{value}-previous"}


def image_key(image: Mapping[str, Any]) -> str:
    """How the plan names an image: ``publisher:offer:sku:version``, or the id or URI. Takes ``spec.image`` or the
    simulator's image body (a platform image's four fields without the ``platform`` key)."""
    if "publisher" in image:
        return ":".join(str(image[part]) for part in ("publisher", "offer", "sku", "version"))
    kind, value = next(iter(image.items()))
    return image_key(value) if kind == "platform" else str(value)


def publish_target(control: SimulatorControl, image: Mapping[str, Any]) -> None:
    kind, value = next(iter(image.items()))
    if kind != "platform":
        control.publish_image(**{kind: value})
        return
    names = {part: value[part] for part in ("publisher", "offer", "sku")}
    version = str(value["version"])
    control.publish_image(**names, versions=["0.0.2" if version.lower() == "latest" else version])


def plan_header(out: str) -> dict[str, str]:
    """The labelled lines above the table: ``{"target image": "...", "strategy": "...", ...}``."""
    lines = out.split("\n\n", 1)[0].splitlines()
    return {line[:15].strip(): line[15:].strip() for line in lines}


def plan_rows(out: str) -> list[tuple[str, str, str, str]]:
    """(batch index or "", domains or "", instance id, what changes) for every instance row of the table."""
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split()[:3] == ["batch", "domains", "instance"], out
    rows = []
    for line in table[1:]:
        change = "(already on target)" if line.rstrip().endswith("(already on target)") else line.split()[-1]
        rows.append((line[:5].strip(), line[7:17].strip(), line[18:27].strip(), change))
    return rows


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_scaleset_image_plan_plans_the_example_against_a_matching_scale_set_and_changes_nothing(
    example: Path, plan_simulator: SimulatorThread, tmp_path: Path
) -> None:
    control = SimulatorControl(plan_simulator.url, plan_simulator.ca_file)
    manifest = load(example)
    spec = manifest["spec"]
    rollout = spec.get("rollout") or {}
    strategy = rollout.get("strategy", "UpdateDomain")
    image = spec["image"]
    start = previous_image(image)
    publish_target(control, image)
    copied = copy.deepcopy(manifest)
    copied["spec"]["scaleSet"]["subscriptionId"] = str(uuid.uuid4())
    scale_set = copied["spec"]["scaleSet"]
    arm_id = control.create_scale_set(
        subscriptionId=scale_set["subscriptionId"],
        resourceGroup=scale_set["resourceGroup"],
        name=scale_set["name"],
        capacity=CAPACITY,
        image=start,
        upgradePolicy="Automatic" if spec.get("upgradePolicy") == "Enforce" else "Manual",
        **({"zones": ZONES} if strategy == "Zone" else {}),
    )
    writes_before = control.stats()["writes"]
    manifest_copy = tmp_path / example.name
    manifest_copy.write_text(yaml.safe_dump(copied))

    result = run_plan(plan_simulator, manifest_copy)

    assert result.returncode == 0, f"{example.name}: plan exited {result.returncode}:\n{result.stderr}{result.stdout}"
    out = result.stdout
    header = plan_header(out)
    assert header["scale set"] == arm_id
    assert header["model image"] == image_key(start)
    assert header["verdict"].startswith("Planned: dry run"), out
    enforce = spec.get("upgradePolicy") == "Enforce"
    policy = "Automatic (not Manual: spec.upgradePolicy Enforce)" if enforce else "Manual (ok)"
    assert header["upgrade policy"] == policy
    target = header["target image"].split()[0]
    if image_key(image).endswith(":latest"):
        assert header["target image"].endswith("(resolved from latest)"), out
        assert target.startswith(image_key(image).removesuffix("latest")) and not target.endswith(":latest")
    else:
        assert target == image_key(image)
    health = rollout.get("healthCheck") or {}
    pause = format_duration(parse_duration(rollout.get("pauseBetweenBatches", "30s")))
    timeout = format_duration(parse_duration(health.get("timeout", "10m")))
    assert header["strategy"].startswith(f"{strategy}, "), out
    for expected in (
        f"pause {pause}",
        f"health {health.get('mode', 'Auto')} (timeout {timeout})",
        f"on failure {rollout.get('onFailure', 'Halt')}",
    ):
        assert expected in header["strategy"], f"{expected!r} not in {header['strategy']!r}"
    batches, with_work = map(int, re.findall(r"(\d+) batches, (\d+) with work", header["strategy"])[0])
    assert batches == with_work > 1, f"{example.name}: the rollout is not in steps: {header['strategy']}"

    rows = plan_rows(out)
    assert sorted(int(row[2]) for row in rows) == list(range(CAPACITY)), "every instance exactly once"
    short_target = target.rsplit(":", 1)[1] if "platform" in image else target
    assert {row[3] for row in rows} == {short_target}, out
    starts = [row for row in rows if row[0]]
    assert len(starts) == batches
    if rollout.get("order"):
        assert starts[0][1] == str(rollout["order"][0]), f"{example.name}: the first batch is not order[0]:\n{out}"
    if strategy == "UpdateDomain":
        assert all("," not in row[1] for row in starts), "an update-domain batch spans two domains"
    if strategy == "Batch":
        size = parse_int_or_percent(rollout.get("maxBatchSize", 1)).of(CAPACITY, round_up=True)
        assert batches == -(-CAPACITY // size), out
    assert "nothing was changed" in out

    stats = control.stats()
    assert stats["writes"] == writes_before
    assert stats["scaleSets"][arm_id]["modelWrites"] == 0
    assert stats["scaleSets"][arm_id]["upgrades"] == 0


# --- kubectl commands in the docs ------------------------------------------------------------------------------------

STEERING_COMMAND = re.compile(r"kubectl (?:patch|annotate|label) (?:ssi|scalesetimages?) [^`\n]+")
PLACEHOLDER = re.compile(r"\b[A-Z]{2,}\b")
"""Commands written with placeholders (``NAME``, ``INDEX``) are patterns, not commands to run."""


def steering_commands() -> list[tuple[str, list[str]]]:
    """(where it is written, argv after ``kubectl``) for each distinct command, first place first."""
    found: dict[tuple[str, ...], str] = {}
    for source in (OPERATIONS, README, *EXAMPLES):
        for match in STEERING_COMMAND.finditer(source.read_text()):
            text = match.group(0).strip().rstrip(".")
            if not PLACEHOLDER.search(text):
                found.setdefault(tuple(shlex.split(text)[1:]), f"{source.relative_to(REPO)}: {text}")
    return [(where, list(argv)) for argv, where in found.items()]


def test_every_kubectl_patch_annotate_and_label_of_a_scaleset_image_in_the_docs_is_accepted(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    commands = steering_commands()
    assert len(commands) >= 10, commands
    for where, argv in commands:
        name = argv[2]
        removed = [arg[:-1] for arg in argv[3:] if arg.endswith("-") and "/" in arg]
        document = load(EXAMPLES_FOLDER / "every-field.yaml")
        document["metadata"] = {
            "name": name,
            "namespace": namespace,
            "annotations": {key: "1" if key == APPROVE_ANNOTATION else "true" for key in removed},
        }
        if "/metadata/finalizers" in " ".join(argv):
            document["metadata"]["finalizers"] = ["scaleset.dev/operator"]
        manifest = tmp_path / f"{name}.yaml"
        manifest.write_text(yaml.safe_dump(document))
        kubectl.run("delete", "ssi", name, "-n", namespace, "--ignore-not-found")
        kubectl.run("create", "-f", str(manifest))

        answer = kubectl.run(*argv, "-n", namespace, check=False)

        assert answer.returncode == 0 and "unknown field" not in answer.stderr, f"{where}\n{answer.stderr}"
        after = kubectl.json("get", "ssi", name, "-n", namespace)
        assert not after["metadata"].get("finalizers"), f"{where}: a finalizer is left"
        annotations = after["metadata"].get("annotations") or {}
        ours = {key: value for key, value in annotations.items() if key.startswith("scaleset.dev/")}
        assert set(ours) <= {APPROVE_ANNOTATION, ABORT_ANNOTATION}, f"{where}: an annotation the operator ignores"
        _, notes = read_controls(Resource(namespace, name, 1, after["spec"], {}, ours))
        assert notes == [], f"{where}: the operator would ignore it: {notes}"


# --- the sharding overlay in docs/operations.md ---------------------------------------------------------------------

SHARDS = "deploy/overlays/shards"


def documented_overlay(folder: Path) -> Path:
    """Writes the files docs/operations.md shows for the overlay (fenced YAML whose first line names the file)
    into a copy of deploy/ and crds/, and returns the overlay's folder."""
    shutil.copytree(REPO / "deploy", folder / "deploy")
    shutil.copytree(REPO / "crds", folder / "crds")
    blocks = re.findall(r"```yaml\n# (\S+)\n(.*?)```", OPERATIONS.read_text(), flags=re.DOTALL)
    written = [path for path, _ in blocks if path.startswith(f"{SHARDS}/")]
    assert sorted(written) == [f"{SHARDS}/kustomization.yaml", f"{SHARDS}/shard-b.yaml"], written
    for path, body in blocks:
        if path in written:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(body)
    return folder / SHARDS


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def flag(container: Mapping[str, Any], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in container.get("args") or [] if arg.startswith(f"{name}=")]
    assert len(values) == 1, f"{container.get('args')}: {name} given {len(values)} times"
    return values[0]


def without_args(pod_spec: Mapping[str, Any]) -> Document:
    spec = copy.deepcopy(dict(pod_spec))
    for container in spec["containers"]:
        container.pop("args", None)
    return spec


def test_the_sharding_overlay_in_the_docs_runs_two_shards_that_never_select_each_others_pods(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    overlay = documented_overlay(tmp_path)
    rendered = [doc for doc in yaml.safe_load_all(kubectl.run("kustomize", str(overlay)).stdout) if doc]
    deployments = [doc for doc in rendered if doc["kind"] == "Deployment"]
    assert len(deployments) == 2
    assert {d["metadata"]["namespace"] for d in deployments} == {OPERATOR_NAMESPACE}
    templates = {d["metadata"]["name"]: d["spec"]["template"] for d in deployments}
    containers = {name: template["spec"]["containers"][0] for name, template in templates.items()}
    selectors = {flag(c, "--label-selector") for c in containers.values()}
    leases = {flag(c, "--lease-name") for c in containers.values()}
    assert selectors == {"scaleset.dev/shard=a", "scaleset.dev/shard=b"} and len(leases) == 2
    for deployment in deployments:
        for other, template in templates.items():
            if other != deployment["metadata"]["name"]:
                selector = deployment["spec"]["selector"]["matchLabels"]
                assert not matches(selector, template["metadata"]["labels"]), (
                    f"{deployment['metadata']['name']}'s selector {selector} matches the pods of {other}"
                )
    selecting = {
        "NetworkPolicy": lambda doc: doc["spec"]["podSelector"]["matchLabels"],
        "PodDisruptionBudget": lambda doc: doc["spec"]["selector"]["matchLabels"],
        "Service": lambda doc: doc["spec"]["selector"],
    }
    for document in rendered:
        if document["kind"] in selecting:
            selector = selecting[document["kind"]](document)
            assert all(matches(selector, t["metadata"]["labels"]) for t in templates.values()), document["kind"]
    shipped, copied = (without_args(t["spec"]) for t in templates.values())
    assert shipped == copied, "docs/operations.md's shard-b.yaml differs from deploy/base/deployment.yaml: update it"

    answer = kubectl.run("apply", "--dry-run=server", "-k", str(overlay))
    assert "scaleset-image-operator-shard-b created (server dry run)" in answer.stdout, answer.stdout
