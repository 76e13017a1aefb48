"""What a person watching Grafana sees, proven on a real Prometheus scraping the operator during a real rollout.

Once for the module: a real Prometheus (Debian's binary, loopback port picked at run time, scrape and rule
evaluation every second, the shipped PrometheusRule loaded as its rule file) scrapes ``scaleset-image run``
(the operator process on the test control plane, under deploy/ RBAC, with ``--log-format json``) while a
10-instance, 5-update-domain scale set rolls onto a new image (about 3 s per domain). Each test then reads one
aspect from Prometheus' HTTP API, as Grafana would: every dashboard panel query and template variable, every
alert rule, progress from 0 to 1, the domain heat map moving domain by domain, and the picture
(tools/dashboard/render_rollout.py) drawn from that data. The operator's JSON log lines are read too.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.clusterkit import REPO, Kubectl, OperatorProcess, Reaper, eventually, operators_for
from component.simkit import jammy
from observability.promkit import JOB, Prometheus, rule_groups, running
from scaleset_image_operator.simulator import SimulatorControl

pytestmark = pytest.mark.cluster

DASHBOARD = REPO / "deploy" / "components" / "monitoring" / "dashboard.json"
RENDER = REPO / "tools" / "dashboard" / "render_rollout.py"
DOMAINS = 5

MANIFEST = """\
apiVersion: scaleset.dev/v1alpha1
kind: ScaleSetImage
metadata:
  name: web
  namespace: {namespace}
spec:
  scaleSet: {{subscriptionId: {subscription}, resourceGroup: rg-observability, name: {name}}}
  image:
    platform: {{publisher: Canonical, offer: 0001-com-ubuntu-server-jammy, sku: 22_04-lts-gen2, version: latest}}
  rollout:
    strategy: UpdateDomain
    pauseBetweenBatches: 0s
    healthCheck: {{mode: Auto, timeout: 10m}}
"""


@dataclass(frozen=True)
class Watched:
    namespace: str
    prometheus: Prometheus
    operator: OperatorProcess
    start: float
    end: float
    picture: Path
    rendered: subprocess.CompletedProcess[str]


def _value(sample: list[Any]) -> float:
    return float(sample[1])


@pytest.fixture(scope="module")
def watched(
    request: pytest.FixtureRequest,
    reaper: Reaper,
    kubectl: Kubectl,
    operator_kubeconfig: Path,
    azure_env: dict[str, str],
    session_control: SimulatorControl,
    prometheus_bin: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Watched]:
    folder = tmp_path_factory.mktemp("observability")
    subscription, name, namespace = str(uuid.uuid4()), f"vmss-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:10]}"
    session_control.create_scale_set(
        subscriptionId=subscription,
        resourceGroup="rg-observability",
        name=name,
        capacity=10,
        updateDomains=DOMAINS,
        upgradeSeconds=180,
        healthWarmupSeconds=30,
        image=jammy(),
    )
    kubectl.run("create", "namespace", namespace)
    manifest = folder / "web.yaml"
    manifest.write_text(MANIFEST.format(namespace=namespace, subscription=subscription, name=name))
    with operators_for(request, reaper, operator_kubeconfig, azure_env, folder) as operators:
        operator = operators.start("observed", args=("--log-format", "json", "--namespace", namespace))
        with running(
            prometheus_bin / "prometheus", folder / "prometheus", [f"127.0.0.1:{operator.metrics_port}"]
        ) as prom:
            eventually(lambda: prom.query(f'up{{job="{JOB}"}} == 1'), lambda result: len(result) == 1, timeout=30)
            start = time.time()
            kubectl.run("apply", "-f", str(manifest))
            waited = kubectl.run(
                "wait", "--for=condition=Ready", "ssi/web", "-n", namespace, "--timeout=120s", check=False, timeout=130
            )
            assert waited.returncode == 0, waited.stderr + operators.logs()
            selector = f'namespace="{namespace}", name="web"'
            eventually(
                lambda: prom.query(f'scalesetimage_phase{{{selector}, phase="Succeeded"}} == 1'),
                lambda result: len(result) == 1,
                timeout=20,
            )
            time.sleep(2.0)  # two more scrapes of the settled state, so the picture ends on it
            end = time.time()
            picture = folder / "rollout.png"
            rendered = subprocess.run(
                [
                    sys.executable,
                    str(RENDER),
                    "--prometheus",
                    prom.url,
                    "--namespace",
                    namespace,
                    "--name",
                    "web",
                    "--start",
                    f"{start - 2:.0f}",
                    "--end",
                    f"{end:.0f}",
                    "-o",
                    str(picture),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            keep = os.environ.get("SCALESET_DOCS_PICTURE")
            if keep and rendered.returncode == 0:
                shutil.copyfile(picture, keep)
            yield Watched(namespace, prom, operator, start, end, picture, rendered)
        kubectl.run("delete", "ssi", "--all", "-n", namespace, "--wait=false", check=False)
    kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def _grafana(expr: str, namespace: str) -> str:
    """The expression as Grafana sends it with the namespace and ScaleSetImage variables set to the test's."""
    return (
        expr.replace("$namespace", namespace)
        .replace("$scalesetimage", "web")
        .replace("$job", JOB)
        .replace("$__rate_interval", "15s")
    )


def test_every_dashboard_panel_query_is_valid_and_returns_series_during_the_rollout(watched: Watched) -> None:
    queries = _panel_queries()
    assert len(queries) >= 20, "the dashboard lost panels"
    empty = []
    for title, expr in queries:
        series = watched.prometheus.query_range(_grafana(expr, watched.namespace), watched.start, watched.end + 5)
        if not any(s["values"] for s in series):
            empty.append(title)
    assert not empty, f"panels with no data for a rollout that just happened: {empty}"


def test_the_template_variables_offer_the_namespace_and_the_scalesetimage(watched: Watched) -> None:
    namespaces = watched.prometheus.api("label/namespace/values", [("match[]", "scalesetimage_phase")])
    names = watched.prometheus.api(
        "label/name/values", [("match[]", f'scalesetimage_phase{{namespace=~"{watched.namespace}"}}')]
    )
    assert watched.namespace in namespaces
    assert names == ["web"]


def test_every_alert_rule_is_valid_and_evaluated_and_none_fires_for_a_healthy_rollout(watched: Watched) -> None:
    shipped = {rule["alert"]: rule["expr"] for group in rule_groups()["groups"] for rule in group["rules"]}
    loaded = {
        rule["name"]: rule
        for group in watched.prometheus.api("rules")["groups"]
        for rule in group["rules"]
        if rule["type"] == "alerting"
    }
    assert set(loaded) == set(shipped)
    for name, rule in loaded.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"
        assert rule["lastEvaluation"] > "2000", f"{name} was never evaluated"
        for metric in sorted(set(re.findall(r"\b(scalesetimage_[a-z_]+|up)\b", shipped[name]))):
            assert watched.prometheus.query_range(metric, watched.start, watched.end), (
                f"{name} reads {metric}, which has no series"
            )
    firing = watched.prometheus.query_range('ALERTS{alertstate="firing"}', watched.start, watched.end)
    assert firing == [], f"alerts fired during a healthy rollout: {[a['metric'] for a in firing]}"
    # The operator-health alerts may be pending for the first seconds of a fresh operator (a counter needs two
    # samples for a rate; ``for: 5m`` keeps them from firing). Rollout alerts must not even be pending.
    pending = watched.prometheus.query_range('ALERTS{alertname!~"ScaleSetImageOperator.*"}', watched.start, watched.end)
    assert pending == [], f"rollout alerts pending during a healthy rollout: {[a['metric'] for a in pending]}"
    assert watched.prometheus.query("ALERTS", at=watched.end) == [], "an alert still pending after the rollout"


def test_progress_goes_from_0_to_1_and_never_back(watched: Watched) -> None:
    series = watched.prometheus.query_range(
        f'max(scalesetimage_rollout_progress_ratio{{namespace="{watched.namespace}", name="web"}})',
        watched.start,
        watched.end,
    )
    values = [_value(sample) for sample in series[0]["values"]]
    assert values[0] == 0.0
    assert values[-1] == 1.0
    assert values == sorted(values), f"progress went back: {values}"
    steps = sorted(set(values))
    assert len(steps) >= 4, f"expected the batches to show as steps between 0 and 1, saw {steps}"


def test_the_domain_heat_map_changes_domain_by_domain(watched: Watched) -> None:
    series = watched.prometheus.query_range(
        f'max by (domain) (scalesetimage_domain_upgraded_ratio{{namespace="{watched.namespace}", name="web"}})',
        watched.start,
        watched.end,
    )
    assert len(series) == DOMAINS
    began: dict[str, float] = {}
    done: dict[str, float] = {}
    for domain in series:
        label = domain["metric"]["domain"]
        moving = [float(t) for t, v in domain["values"] if float(v) > 0]
        finished = [float(t) for t, v in domain["values"] if float(v) == 1.0]
        assert moving and finished, f"domain {label} never moved: {domain['values']}"
        began[label], done[label] = moving[0], finished[0]
        assert float(domain["values"][-1][1]) == 1.0
    order = sorted(began, key=lambda d: began[d])
    assert len({began[d] for d in order}) == DOMAINS, f"domains began together: {began}"
    for previous, following in itertools.pairwise(order):
        assert began[following] >= done[previous], (
            f"domain {following} moved at {began[following]} before domain {previous} was done at {done[previous]}"
        )


def test_the_rollout_picture_is_drawn_from_prometheus(watched: Watched) -> None:
    assert watched.rendered.returncode == 0, watched.rendered.stderr
    drawn = json.loads(watched.rendered.stdout)
    assert len(drawn["domains"]) == DOMAINS
    assert "upgraded" in drawn["states"]
    assert drawn["target"].startswith("Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:")
    data = watched.picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000


def test_json_logs_carry_one_line_per_event_with_namespace_name_batch_and_domains(watched: Watched) -> None:
    lines = [line for line in watched.operator.log().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line that is not JSON: {line!r}")
    ours = [r for r in records if r.get("namespace") == watched.namespace and r.get("scalesetimage") == "web"]
    reasons = [r["reason"] for r in ours]
    assert reasons.count("BatchStarted") == DOMAINS
    assert reasons.count("BatchSucceeded") == DOMAINS
    assert "ModelUpdated" in reasons
    assert reasons[-1] == "RolloutSucceeded"
    started = [r for r in ours if r["reason"] == "BatchStarted"]
    assert [r["batch"] for r in started] == list(range(DOMAINS))
    assert all(len(r["domains"]) == 1 for r in started)
    assert len({r["domains"][0] for r in started}) == DOMAINS
    assert all({"timestamp", "severity", "message", "phase", "target"} <= set(r) for r in ours)
    assert all(
        r["object"]
        == {"apiVersion": "scaleset.dev/v1alpha1", "kind": "ScaleSetImage"}
        | {"namespace": watched.namespace, "name": "web"}
        for r in ours
    )
    assert all(r["severity"] == "info" for r in ours)


def test_the_domains_x_state_panel_shows_one_domain_upgrading_at_a_time(watched: Watched) -> None:
    selector = f'namespace="{watched.namespace}", name="web"'
    upgrading = watched.prometheus.query_range(
        f'count(max by (domain) (scalesetimage_domain_state{{{selector}, state="Upgrading"}}) == 1) or vector(0)',
        watched.start,
        watched.end,
    )
    counts = [_value(sample) for sample in upgrading[0]["values"]]
    assert max(counts) == 1, f"domains upgrading at once, second by second: {counts}"
    succeeded = watched.prometheus.query_range(
        f'count(max by (domain) (scalesetimage_domain_state{{{selector}, state="Succeeded"}}) == 1) or vector(0)',
        watched.start,
        watched.end,
    )
    done = [int(_value(sample)) for sample in succeeded[0]["values"]]
    assert done == sorted(done)
    assert set(range(DOMAINS + 1)) <= set(done), f"domains done, second by second: {done}"
