"""The PrometheusRule's alerts: valid for promtool, firing for each bad case and silent for healthy rollouts in the
promtool unit tests (rules_test.yaml), documented with runbook text, written against the metric families the
operator really exports, and shipped by a kustomize component that renders with deploy/base."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from scaleset_image_operator.metrics import OperatorMetrics

from .conftest import MONITORING, REPO

RULES_TEST = Path(__file__).with_name("rules_test.yaml")
SEVERITIES = {"warning", "critical"}
METRICS_JOB = "scaleset-image-operator-metrics"
EXPECTED_ALERTS = {
    "ScaleSetImageRolloutStuck",
    "ScaleSetImageInstancesFailed",
    "ScaleSetImageInstancesUnhealthy",
    "ScaleSetImageRolloutHalted",
    "ScaleSetImageDrift",
    "ScaleSetImageAzureThrottled",
    "ScaleSetImageOperatorDown",
    "ScaleSetImageOperatorNotReconciling",
}


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def write_rules(path: Path, spec: dict[str, Any], *, annotations: bool) -> Path:
    spec = copy.deepcopy(spec)
    if not annotations:
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def unit_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(RULES_TEST.read_text())["tests"]
    return tests


def exported_series_names() -> set[str]:
    """Every series name the operator's registry can expose (families with no children yet included)."""
    names = set()
    for family in OperatorMetrics(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created")}
        else:
            names.add(family.name)
    return names


def test_the_rule_has_every_alert_of_the_issue(alert_rules: list[dict[str, Any]]) -> None:
    assert {rule["alert"] for rule in alert_rules} == EXPECTED_ALERTS


def test_promtool_check_rules_accepts_the_groups(
    promtool: Path, prometheus_rule: dict[str, Any], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "alerts.rules.yaml", prometheus_rule["spec"], annotations=True)
    result = run(promtool, "check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_fire_for_bad_cases_and_stay_silent_for_healthy_rollouts(
    promtool: Path, prometheus_rule: dict[str, Any], tmp_path: Path
) -> None:
    # promtool compares annotations exactly; the rule tests pin expressions, `for` and labels (see rules_test.yaml).
    assert yaml.safe_load(RULES_TEST.read_text())["rule_files"] == ["alerts.rules.yaml"]
    write_rules(tmp_path / "alerts.rules.yaml", prometheus_rule["spec"], annotations=False)
    shutil.copy(RULES_TEST, tmp_path / "rules_test.yaml")
    result = run(promtool, "test", "rules", "rules_test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_fires_in_a_bad_case_and_is_silent_in_the_healthy_group() -> None:
    fired: set[str] = set()
    silent_when_healthy: set[str] = set()
    for group in unit_tests():
        for case in group.get("alert_rule_test", []):
            if case["exp_alerts"]:
                fired.add(case["alertname"])
            elif group["name"].startswith("healthy"):
                silent_when_healthy.add(case["alertname"])
    assert fired == EXPECTED_ALERTS
    assert silent_when_healthy == EXPECTED_ALERTS


def test_every_alert_has_a_severity_and_runbook_text(alert_rules: list[dict[str, Any]]) -> None:
    for rule in alert_rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name} has no {key}"
        assert len(re.findall(r"[.:]\s", annotations["runbook"] + " ")) >= 2, f"{name}: runbook is not a few sentences"


def test_annotations_use_only_labels_the_alert_has(alert_rules: list[dict[str, Any]]) -> None:
    """A ``{{ $labels.x }}`` the alert does not carry renders as "<no value>": compare with the labels the alert
    fires with in the promtool tests (promtool checked those are exactly the alert's labels)."""
    fired_labels: dict[str, set[str]] = {}
    for group in unit_tests():
        for case in group.get("alert_rule_test", []):
            for alert in case["exp_alerts"]:
                fired_labels.setdefault(case["alertname"], set()).update(alert.get("exp_labels", {}))
    for rule in alert_rules:
        used = set(re.findall(r"\$labels\.([a-zA-Z_]\w*)", " ".join(rule["annotations"].values())))
        assert used <= fired_labels[rule["alert"]], f"{rule['alert']}: {used - fired_labels[rule['alert']]}"


def test_expressions_and_unit_test_series_use_the_exported_metric_families(
    alert_rules: list[dict[str, Any]],
) -> None:
    exported = exported_series_names()
    in_rules = {name for rule in alert_rules for name in re.findall(r"\bscalesetimage_\w+", rule["expr"])}
    assert in_rules, "no scalesetimage_ series in the expressions"
    assert in_rules <= exported, in_rules - exported
    in_tests = {series["series"].split("{", 1)[0] for group in unit_tests() for series in group.get("input_series", [])}
    assert {name for name in in_tests if name.startswith("scalesetimage_")} <= exported
    assert in_tests <= exported | {"up"}


def test_operator_down_matches_the_job_the_service_monitor_produces(alert_rules: list[dict[str, Any]]) -> None:
    down = next(rule for rule in alert_rules if rule["alert"] == "ScaleSetImageOperatorDown")
    assert f'job="{METRICS_JOB}"' in down["expr"]
    service = yaml.safe_load((REPO / "deploy" / "base" / "service.yaml").read_text())
    assert service["metadata"]["name"] == METRICS_JOB  # the Prometheus Operator names the job after the Service


def test_the_component_renders_with_the_base(tmp_path: Path) -> None:
    """A Component cannot render alone: render an overlay with deploy/base and the component. kustomize refuses
    absolute paths, so the overlay in tmp_path names them relative to itself."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not on PATH (needed for `kubectl kustomize`)")
    component = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert component["kind"] == "Component"
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(REPO / "deploy" / "base", tmp_path)],
        "components": [os.path.relpath(MONITORING, tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    result = run(kubectl, "kustomize", tmp_path)
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)

    (rule,) = by_kind["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    source = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["spec"] == source["spec"]

    (monitor,) = by_kind["ServiceMonitor"]
    services = [s for s in by_kind["Service"] if s["metadata"]["name"] == METRICS_JOB]
    assert len(services) == 1
    service = services[0]
    namespace = service["metadata"]["namespace"]
    assert monitor["metadata"]["namespace"] == rule["metadata"]["namespace"] == namespace
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "the ServiceMonitor does not select the Service"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["interval"] == "30s"
    assert endpoint["honorLabels"] is True  # keep the ScaleSetImage's `namespace` label (see servicemonitor.yaml)
