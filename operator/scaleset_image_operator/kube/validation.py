"""What the Kubernetes API server would say of a ScaleSetImage manifest, said without a cluster.

``scaleset-image plan`` and ``reconcile`` read manifests from files; they must accept exactly what ``kubectl
apply`` would have the API server accept, or a dry run would plan a spec that the cluster refuses (or skip a
misspelt field the cluster would name). So the checks come from the CRD itself, never from a second list:

- the CRD's structural ``openAPIV3Schema`` becomes a JSON Schema checked by ``jsonschema`` (``x-kubernetes-int-or-
  string`` is "integer or string", ``nullable`` adds null, a ``set`` list has unique items), with ``pattern`` matched
  by RE2, the engine the API server's Go code uses (``\\p{L}``, and ``\\w`` as ASCII only);
- fields the schema does not declare are named the way kubectl's strict field validation names them
  (``unknown field "spec.rollout.maxBatchsize"``);
- defaults are applied as the API server applies them (top-down, before the rules), then every CEL rule of
  ``x-kubernetes-validations`` is evaluated by ``cel-python`` with its own message. Transition rules (those that
  read ``oldSelf``) only run on an update, and a manifest on its own is a create, so they are left out.

Errors read like the API server's: ``spec.rollout.pauseBetweenBatches: Invalid value: 2: must be of type string``.
Not here: metadata beyond the name (labels and annotations are the API server's generic checks), admission.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import celpy
import re2
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from jsonschema import Draft7Validator, ValidationError, validators

CRD_FILE = "scalesetimages.scaleset.dev.yaml"
BLOCKING = frozenset({"required", "type", "enum"})
"""Schema failures after which the API server runs no CEL rule (its Required, TypeInvalid and NotSupported)."""
_DNS_SUBDOMAIN = re2.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class FieldError:
    """One thing the API server would refuse, at a field path such as ``spec.rollout.order[1]``."""

    path: str
    message: str
    unknown: bool = False
    """A field the schema does not declare: said as kubectl's strict field validation says it."""

    def __str__(self) -> str:
        return f'unknown field "{self.path}"' if self.unknown else f"{self.path}: {self.message}"


def crd_path() -> Path:
    """The CRD shipped inside the package (wheel and container image), else the checkout's ``crds/``."""
    packaged = resources.files("scaleset_image_operator") / "crds" / CRD_FILE
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "crds" / CRD_FILE


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not re2.search(pattern, instance):
        yield ValidationError(f"should match '{pattern}'")


_Validator = validators.extend(Draft7Validator, {"pattern": _re2_pattern})  # type: ignore[no-untyped-call]


def _json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """A structural schema node as JSON Schema (draft 7): the Kubernetes extensions become plain keywords."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out["properties"] = {name: _json_schema(child) for name, child in value.items()}
        elif key == "items":
            out["items"] = _json_schema(value)
        elif key == "additionalProperties" and isinstance(value, Mapping):
            out["additionalProperties"] = _json_schema(value)
        elif not key.startswith("x-kubernetes-") and key not in ("nullable", "format", "default", "description"):
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
    if node.get("x-kubernetes-list-type") in ("set", "map"):
        out["uniqueItems"] = node.get("x-kubernetes-list-type") == "set"
    return out


def _dotted(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) or value is None else f'"{_type(value)}"'


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, Mapping) else "null"


def _message(error: ValidationError) -> str:
    """The API server's wording for each kind of schema failure."""
    value, rule = cast(Any, error.instance), cast(Any, error.validator_value)
    if error.validator == "type":
        wanted = " or ".join(rule) if isinstance(rule, list) else rule
        return f"Invalid value: {_show(_type(value))}: must be of type {wanted}"
    if error.validator == "enum":
        return f"Unsupported value: {_show(value)}: supported values: {', '.join(_show(v) for v in rule)}"
    if error.validator == "maxItems":
        return f"Too many: {len(value)}: must have at most {rule} items"
    if error.validator == "maxLength":
        return f"Too long: may not be more than {rule} bytes"
    if error.validator == "minLength":
        return f"Invalid value: {_show(value)}: should be at least {rule} chars long"
    if error.validator == "minimum":
        return f"Invalid value: {_show(value)}: should be greater than or equal to {rule}"
    if error.validator == "maximum":
        return f"Invalid value: {_show(value)}: should be less than or equal to {rule}"
    return f"Invalid value: {_show(value)}: {error.message}"


def _field_errors(error: ValidationError) -> list[FieldError]:
    """A schema failure at the field the API server names: a missing field is named itself, not its parent."""
    if error.validator == "required" and isinstance(error.instance, Mapping):
        path = tuple(error.absolute_path)
        required = cast(list[str], error.validator_value)
        return [FieldError(_dotted((*path, n)), "Required value") for n in required if n not in error.instance]
    if error.validator == "uniqueItems" and isinstance(error.instance, list):
        seen: set[str] = set()
        for index, item in enumerate(error.instance):
            key = json.dumps(item, sort_keys=True)  # 1, "1" and true are three values, as in JSON
            if key in seen:
                return [FieldError(_dotted((*error.absolute_path, index)), f"Duplicate value: {_show(item)}")]
            seen.add(key)
    return [FieldError(_dotted(error.absolute_path), _message(error))]


def _apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """Fill absent fields that have a default, top-down (a default object gets its own fields' defaults)."""
    if isinstance(value, dict):
        for name, child in (schema.get("properties") or {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = _apply_defaults(value[name], child)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_apply_defaults(item, schema["items"]) for item in value]
    return value


@dataclass(frozen=True)
class _Rule:
    path: tuple[str, ...]
    """Where the rule sits: property names from the root (rules under ``items`` are not used by this CRD)."""
    program: Any
    message: str


class ManifestValidator:
    """Validates ScaleSetImage documents against one CRD version's schema and rules."""

    def __init__(self, crd: Mapping[str, Any], version: str = "v1alpha1") -> None:
        spec = crd["spec"]
        served = next(v for v in spec["versions"] if v["name"] == version)
        self.api_version = f"{spec['group']}/{version}"
        self.kind = str(spec["names"]["kind"])
        self._schema: Mapping[str, Any] = served["schema"]["openAPIV3Schema"]
        self._validator = _Validator(_json_schema(self._schema))
        environment = celpy.Environment()
        self._rules = tuple(
            _Rule(
                path, environment.program(environment.compile(rule["rule"])), str(rule.get("message") or rule["rule"])
            )
            for path, node in _nodes(self._schema, ())
            for rule in node.get("x-kubernetes-validations") or ()
            if "oldSelf" not in rule["rule"]
        )

    @classmethod
    def from_crd_file(cls, path: Path | None = None) -> ManifestValidator:
        return cls(yaml.safe_load((path or crd_path()).read_text()))

    def validate(self, document: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
        """The document with the CRD's defaults applied, and everything the API server would refuse in it."""
        identity = self._identity(document)
        if identity:
            return dict(document), identity
        unknown = self._unknown_fields(document, self._schema, ())
        if unknown:
            return dict(document), unknown  # strict decoding fails before the schema is looked at
        failures = list(self._validator.iter_errors(document))
        errors = sorted({error for e in failures for error in _field_errors(e)}, key=lambda e: e.path)
        defaulted = _apply_defaults(copy.deepcopy(dict(document)), self._schema)
        if any(e.validator in BLOCKING for e in failures):
            # "some validation rules were not checked because the object was invalid": the API server evaluates
            # no rule of an object with a missing field, a wrong type or a value outside an enum.
            return defaulted, errors
        return defaulted, errors + self._rule_errors(defaulted)

    def _identity(self, document: Mapping[str, Any]) -> list[FieldError]:
        if document.get("apiVersion") != self.api_version or document.get("kind") != self.kind:
            found = f"{document.get('apiVersion')!s}, kind {document.get('kind')!s}"
            return [FieldError("apiVersion", f"expected {self.api_version}, kind {self.kind} (found {found})")]
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        if not isinstance(name, str) or not name:
            return [FieldError("metadata.name", "Required value: name is required")]
        if len(name) > 253 or not _DNS_SUBDOMAIN.search(name):
            return [
                FieldError(
                    "metadata.name",
                    f"Invalid value: {_show(name)}: a lowercase RFC 1123 subdomain must consist of lower case "
                    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                )
            ]
        return []

    def _unknown_fields(self, value: Any, schema: Mapping[str, Any], path: tuple[str | int, ...]) -> list[FieldError]:
        if isinstance(value, Mapping) and "properties" in schema:
            declared = schema["properties"]
            if schema.get("x-kubernetes-preserve-unknown-fields"):
                return []
            errors = [
                FieldError(_dotted((*path, name)), "unknown field", unknown=True)
                for name in value
                if name not in declared
            ]
            for name, child in declared.items():
                if name in value:
                    errors += self._unknown_fields(value[name], child, (*path, name))
            return errors
        if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
            return [e for i, item in enumerate(value) for e in self._unknown_fields(item, schema["items"], (*path, i))]
        return []

    def _rule_errors(self, document: Mapping[str, Any]) -> list[FieldError]:
        errors = []
        for rule in self._rules:
            node: Any = document
            for name in rule.path:
                node = node.get(name) if isinstance(node, Mapping) else None
            if node is None:
                continue
            try:
                passed = bool(rule.program.evaluate({"self": json_to_cel(node)}))
            except (CELEvalError, ValueError, TypeError) as error:
                passed, rule_message = False, f"{rule.message} ({error})"
            else:
                rule_message = rule.message
            if not passed:
                errors.append(FieldError(_dotted(rule.path), f"Invalid value: {_show(node)}: {rule_message}"))
        return errors


def _nodes(schema: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    yield path, schema
    for name, child in (schema.get("properties") or {}).items():
        yield from _nodes(child, (*path, name))
