"""The README's ScaleSetImage reference and ``kubectl explain`` say the same thing: both come from the CRD.

tools/docs/reference.py renders the README's spec and status tables from the descriptions in the CRD's schema;
the README must hold exactly what it renders. The generator refuses a field without a description, a ``Default:``
line that is not the schema's default, and a status enum whose values the description does not explain, so every
field ``kubectl explain`` shows has a description that agrees with the schema. The rest of the reference (the
conditions and annotations) is written by hand and checked here to name what the operator uses.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scaleset_image_operator.core.planner import Phase
from scaleset_image_operator.core.status import PLAN_IDS_SHOWN
from scaleset_image_operator.metrics import CONDITIONS, DOMAIN_STATES, INSTANCE_STATES
from scaleset_image_operator.reconciler import ABORT_ANNOTATION, APPROVE_ANNOTATION

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tools" / "docs" / "reference.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reference", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reference", module)
    spec.loader.exec_module(module)
    return module


reference = load_generator()
CRD: dict[str, Any] = reference.load_crd()
README = (REPO / "README.md").read_text(encoding="utf-8")


def schema(*path: str) -> dict[str, Any]:
    """The schema node at ``path`` (property names; ``[]`` steps into a list's items)."""
    node: Any = reference.root_schema(CRD)
    for part in path:
        node = node["items"] if part == "[]" else node["properties"][part]
    return dict(node)


def nodes(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, child in (node.get("properties") or {}).items():
        here = f"{path}.{name}" if path else name
        yield here, child
        yield from nodes(child, here)
        yield from nodes(child.get("items") or {}, f"{here}[]")


def crd_with(change: Any) -> dict[str, Any]:
    crd = copy.deepcopy(CRD)
    change(reference.root_schema(crd)["properties"])
    return crd


# -- the README is what the CRD renders ----------------------------------------------------------------------------


def test_the_readme_reference_is_what_the_crd_renders() -> None:
    assert reference.generated_section(README) == reference.render(CRD), (
        "README.md's reference differs from the CRD's descriptions: run `make reference`"
    )


def test_every_spec_and_status_field_has_a_row_and_a_description() -> None:
    root = reference.root_schema(CRD)["properties"]
    in_schema = [path for part in ("spec", "status") for path, _ in nodes(root[part], part)]
    rows = [field.path for part in ("spec", "status") for field in reference.fields(root[part], part)]
    assert rows == in_schema
    assert len(rows) >= 70, rows
    for path, node in [(p, n) for part in ("spec", "status") for p, n in nodes(root[part], part)]:
        assert str(node.get("description", "")).strip(), f"{path}: kubectl explain would say <no description>"
    for part in ("spec", "status"):
        assert f"| `{part}.{next(iter(root[part]['properties']))}` |" in README


def test_the_status_fields_the_issue_named_are_in_the_schema() -> None:
    for path in (("instances",), ("domains",), ("plan",), ("currentBatch",), ("rollout", "id"), ("reason",)):
        assert schema("status", *path).get("description"), path


def test_each_spec_row_states_the_schemas_type_default_and_enum() -> None:
    rows = {field.path: field for field in reference.fields(schema("spec"), "spec")}
    assert rows["spec.rollout.pauseBetweenBatches"].type == "duration"
    assert rows["spec.rollout.pauseBetweenBatches"].default == "`30s`"
    assert rows["spec.rollout.maxBatchSize"].type == "int or percent"
    assert rows["spec.rollout.order"].type == "list of ints or strings"
    assert rows["spec.scaleSet.name"].default == "required"
    assert rows["spec.image.id"].default == ""
    assert rows["spec.rollout.strategy"].allowed == "`UpdateDomain`, `FaultDomain`, `Zone`, `Batch`"
    assert rows["spec.rollout"].default == "`{}`"


# -- what the generator refuses ------------------------------------------------------------------------------------


def test_a_field_without_a_description_is_refused() -> None:
    def drop(root: Any) -> None:
        del root["spec"]["properties"]["rollout"]["properties"]["healthCheck"]["properties"]["mode"]["description"]

    with pytest.raises(reference.SchemaError, match=r"spec\.rollout\.healthCheck\.mode has no description"):
        reference.render(crd_with(drop))


def test_a_default_line_that_is_not_the_schemas_default_is_refused() -> None:
    def change(root: Any) -> None:
        root["spec"]["properties"]["rollout"]["properties"]["pauseBetweenBatches"]["default"] = "1m"

    with pytest.raises(reference.SchemaError, match=r"pauseBetweenBatches: .*'Default: `1m`\.'"):
        reference.render(crd_with(change))


def test_a_default_the_schema_does_not_have_is_refused() -> None:
    def change(root: Any) -> None:
        del root["spec"]["properties"]["dryRun"]["default"]

    with pytest.raises(reference.SchemaError, match=r"spec\.dryRun: .* default the schema does not have"):
        reference.render(crd_with(change))


def test_a_status_enum_value_the_description_does_not_explain_is_refused() -> None:
    def change(root: Any) -> None:
        root["status"]["properties"]["phase"]["enum"].append("Waiting")

    with pytest.raises(reference.SchemaError, match=r"status\.phase: .*\['Waiting'\]"):
        reference.render(crd_with(change))


def test_check_mode_exits_1_on_a_stale_readme_and_writes_nothing(tmp_path: Path) -> None:
    stale = README.replace("| `spec.dryRun` | boolean |", "| `spec.dryRun` | bool |")
    readme = tmp_path / "README.md"
    readme.write_text(stale, encoding="utf-8")
    assert reference.main(["--check", "--readme", str(readme)]) == 1
    assert readme.read_text(encoding="utf-8") == stale
    assert reference.main(["--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == README


# -- the schema says what the operator does ------------------------------------------------------------------------


def test_the_schemas_phases_domain_states_and_instance_counts_are_the_operators() -> None:
    assert schema("status", "phase")["enum"] == [phase.value for phase in Phase]
    assert schema("status", "domains", "[]", "state")["enum"] == list(DOMAIN_STATES)
    assert list(schema("status", "instances")["properties"]) == ["total", *INSTANCE_STATES]


def test_the_plan_description_names_the_bound_the_status_keeps() -> None:
    bound = f"The first {PLAN_IDS_SHOWN} of its instance ids"
    assert bound in schema("status", "plan", "[]", "instanceIds")["description"]
    assert bound in README


def test_only_the_operators_memory_keeps_fields_the_schema_does_not_declare() -> None:
    preserving = [path for path, node in nodes(schema(), "") if node.get("x-kubernetes-preserve-unknown-fields")]
    assert preserving == ["status.rollout"]


def test_the_handwritten_part_of_the_reference_names_every_condition_and_annotation() -> None:
    start = README.index("\n## The ScaleSetImage reference\n")
    section = README[start : README.index("\n## ", start + 1)]
    for condition in CONDITIONS:
        assert f"| `{condition}` |" in section
    for annotation in (APPROVE_ANNOTATION, ABORT_ANNOTATION):
        assert f"| `{annotation}` |" in section
