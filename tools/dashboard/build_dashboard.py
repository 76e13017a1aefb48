"""Build the Grafana dashboard of the scaleset-image operator with grafana-foundation-sdk.

Writes ``deploy/components/monitoring/dashboard.json`` and ``dashboard-configmap.yaml`` (the same JSON in a
ConfigMap labelled ``grafana_dashboard: "1"`` for Grafana's dashboard sidecar)::

    uv run python tools/dashboard/build_dashboard.py           # rewrite both files
    uv run python tools/dashboard/build_dashboard.py --check   # exit 1 if the committed files are stale

The queries use the families of ``scaleset_image_operator.metrics`` (docs/observability.md). Label values that
appear in queries (phases, instance and domain states) are spelled out here; tests/unit/test_dashboard.py checks
them against the operator's enumerations, every expression's syntax, and that the committed files are current.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "components" / "monitoring"
DASHBOARD_PATH = MONITORING / "dashboard.json"
CONFIGMAP_PATH = MONITORING / "dashboard-configmap.yaml"

UID = "scaleset-image-operator"
TITLE = "ScaleSetImage rollouts"
CONFIGMAP_NAME = "scaleset-image-operator-dashboard"
CONFIGMAP_NAMESPACE = "scaleset-image-system"
CONFIGMAP_KEY = "scaleset-image-operator.json"
DEFAULT_JOB = "scaleset-image-operator-metrics"  # the job the ServiceMonitor's Service gives (servicemonitor.yaml)

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
PanelBuilder = Builder[models.Panel]

# Enumerations of the operator (core.planner.Phase, metrics.DOMAIN_STATES); the unit test keeps them in sync.
PHASES = ("Pending", "Planned", "UpdatingModel", "RollingOut", "Paused", "Halted", "RollingBack", "Succeeded", "Failed")
MOVING_PHASES = ("UpdatingModel", "RollingOut", "RollingBack")
STOPPED_PHASES = ("Halted", "Failed")
DOMAIN_STATES = ("Pending", "Upgrading", "Succeeded", "Failed")

PHASE_COLORS = {
    "Pending": "text",
    "Planned": "purple",
    "UpdatingModel": "light-blue",
    "RollingOut": "blue",
    "Paused": "yellow",
    "Halted": "orange",
    "RollingBack": "dark-orange",
    "Succeeded": "green",
    "Failed": "red",
}
DOMAIN_COLORS = {"Pending": "text", "Upgrading": "blue", "Succeeded": "green", "Failed": "red"}
INSTANCE_COLORS = {
    "upgraded": "green",
    "upgrading": "blue",
    "pending": "text",
    "failed": "red",
    "unhealthy": "orange",
}

# Both operator replicas are scraped and only the leader exports per-ScaleSetImage series; a former leader's series
# carry other instance/pod labels. Queries therefore take `max by (namespace, name, ...)` before counting or summing,
# like the alert rules in prometheusrule.yaml.
NS = 'namespace=~"$namespace"'
ONE = 'namespace=~"$namespace", name=~"$scalesetimage"'


def selector(metric: str, matchers: str, *extra: str) -> str:
    return metric + "{" + ", ".join((matchers, *extra)) + "}"


def one_hot_code(metric: str, label: str, values: Sequence[str], by: str) -> str:
    """A one-hot family (1 on the current value's series) as one number per ``by`` group: the index of the value
    in ``values``. The first value is 0, so it needs no term."""
    terms = []
    for index, value in enumerate(values):
        if index == 0:
            continue
        term = f"max by ({by}) ({selector(metric, ONE, f'{label}={json.dumps(value)}')})"
        terms.append(term if index == 1 else f"{index} * {term}")
    return "\n+ ".join(terms)


def quantile(q: float, bucket: str, window: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({bucket}[{window}])))"


def cumulative_quantile(q: float, bucket: str, matchers: str) -> str:
    """A quantile of every observation since the process started. The per-ScaleSetImage histograms get their
    series at the first observation, so rate() or increase() over a window would never count a scale set's first
    batch or its first rollout; the cumulative buckets do."""
    return f"histogram_quantile({q}, sum by (le) ({bucket}{{{matchers}}}))"


def target(expr: str, legend: str = "__auto", ref: str = "A", *, instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    return query.instant() if instant else query.range()


def table_target(expr: str, ref: str = "A") -> prometheus.Dataquery:
    return target(expr, "__auto", ref, instant=True).format(PromQueryFormat.TABLE)


def fixed(color: str) -> models.DynamicConfigValue:
    return models.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})


def value_mappings(names: Sequence[str], colors: dict[str, str]) -> list[models.ValueMapping]:
    options = {
        str(index): models.ValueMappingResult(text=name, color=colors[name], index=index)
        for index, name in enumerate(names)
    }
    return [models.ValueMap(options=options)]


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


def organize(exclude: Sequence[str], rename: dict[str, str], order: Sequence[str]) -> models.DataTransformerConfig:
    return models.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": dict.fromkeys(exclude, True),
            "renameByName": rename,
            "indexByName": {name: index for index, name in enumerate(order)},
        },
    )


def legend(*calcs: str, as_table: bool = False) -> common_builders.VizLegendOptions:
    builder = (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .placement(common.LegendPlacement.BOTTOM)
        .display_mode(common.LegendDisplayMode.TABLE if as_table else common.LegendDisplayMode.LIST)
    )
    return builder.calcs(list(calcs)) if calcs else builder


def graph(title: str, description: str, unit: str, width: int, height: int = 8) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(legend())
    )


def single(title: str, description: str, expr: str, width: int, height: int = 5) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target(expr, "__auto", instant=True))
        .span(width)
        .height(height)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


# -- Fleet overview -------------------------------------------------------------------------------------------


def fleet_panels() -> list[PanelBuilder]:
    moving = "|".join(MOVING_PHASES)
    stopped = "|".join(STOPPED_PHASES)
    by_phase = (
        stat.Panel()
        .title("ScaleSetImages by phase")
        .description("How many ScaleSetImages are in each phase now (scalesetimage_phase is 1 for the current phase).")
        .datasource(DATASOURCE)
        .with_target(
            target(
                f"count by (phase) (max by (namespace, name, phase) ({selector('scalesetimage_phase', NS)} == 1))",
                "{{phase}}",
                instant=True,
            )
        )
        .span(9)
        .height(5)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.FIXED).fixed_color("text"))
    )
    for phase in PHASES:
        by_phase = by_phase.override_by_name(phase, [fixed(PHASE_COLORS[phase])])
    in_progress = single(
        "Rollouts in progress",
        f"ScaleSetImages whose phase is one of {', '.join(MOVING_PHASES)}.",
        f"count(max by (namespace, name) ({selector('scalesetimage_phase', NS, f'phase=~{json.dumps(moving)}')} == 1))"
        " or vector(0)",
        5,
    ).thresholds(thresholds((None, "text"), (1, "blue")))
    failures = single(
        "Failed or unhealthy instances",
        "Instances of the selected namespaces' scale sets that failed to upgrade or are unhealthy on the new image.",
        "sum(max by (namespace, name, state) ("
        + selector("scalesetimage_instances", NS, 'state=~"failed|unhealthy"')
        + ")) or vector(0)",
        5,
    ).thresholds(thresholds((None, "green"), (1, "red")))
    stopped_panel = single(
        "Rollouts halted or failed",
        "ScaleSetImages in phase Halted (waiting for a person) or Failed.",
        f"count(max by (namespace, name) ({selector('scalesetimage_phase', NS, f'phase=~{json.dumps(stopped)}')} == 1))"
        " or vector(0)",
        5,
    ).thresholds(thresholds((None, "green"), (1, "red")))
    ready = (
        table.Panel()
        .align(common.FieldTextAlignment.AUTO)
        .inspect(False)
        .title("Ready condition, phase and progress per ScaleSetImage")
        .description("One row per ScaleSetImage: its Ready condition, its phase and the share of instances on target.")
        .datasource(DATASOURCE)
        .with_target(
            table_target(
                "max by (namespace, name, status) ("
                + selector("scalesetimage_condition", NS, 'type="Ready"')
                + " == 1)",
                "A",
            )
        )
        .with_target(table_target(f"max by (namespace, name, phase) ({selector('scalesetimage_phase', NS)} == 1)", "B"))
        .with_target(
            table_target(f"max by (namespace, name) ({selector('scalesetimage_rollout_progress_ratio', NS)})", "C")
        )
        .with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            organize(
                exclude=("Time", "Value #A", "Value #B"),
                rename={"status": "Ready", "phase": "Phase", "Value #C": "Progress"},
                order=("namespace", "name", "status", "phase", "Value #C"),
            )
        )
        .override_by_name("Progress", [models.DynamicConfigValue(id_val="unit", value="percentunit")])
        .override_by_name(
            "Ready",
            [
                models.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
                models.DynamicConfigValue(
                    id_val="mappings",
                    value=[
                        models.ValueMap(
                            options={
                                "True": models.ValueMappingResult(color="green", index=0),
                                "False": models.ValueMappingResult(color="red", index=1),
                            }
                        )
                    ],
                ),
            ],
        )
        .sort_by([common_builders.TableSortByFieldState().display_name("namespace")])
        .span(24)
        .height(8)
    )
    return [by_phase, in_progress, failures, stopped_panel, ready]


# -- One scale set's rollout ----------------------------------------------------------------------------------


def rollout_panels() -> list[PanelBuilder]:
    progress = (
        graph(
            "Rollout progress",
            "Share of the scale set's instances that run the target image and are healthy (0 to 100 %).",
            "percentunit",
            12,
        )
        .min(0)
        .max(1)
        .with_target(target(f"max by (name) ({selector('scalesetimage_rollout_progress_ratio', ONE)})", "{{name}}"))
    )
    instances = (
        graph(
            "Instances by state",
            "The scale set's instances by rollout state, stacked: the stack's height is the scale set's capacity.",
            "short",
            12,
        )
        .fill_opacity(60)
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        .with_target(target(f"max by (state) ({selector('scalesetimage_instances', ONE)})", "{{state}}"))
    )
    for state, color in INSTANCE_COLORS.items():
        instances = instances.override_by_name(state, [fixed(color)])
    phase = (
        statetimeline.Panel()
        .title("Phase")
        .description("The rollout's phase over time.")
        .datasource(DATASOURCE)
        .with_target(target(one_hot_code("scalesetimage_phase", "phase", PHASES, "name"), "{{name}}"))
        .mappings(value_mappings(PHASES, PHASE_COLORS))
        .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds((None, "text")))
        .show_value(common.VisibilityMode.AUTO)
        .fill_opacity(70)
        .line_width(0)
        .merge_values(True)
        .legend(legend().show_legend(False))
        .span(24)
        .height(4)
    )
    domains = (
        statetimeline.Panel()
        .title("Domains x state")
        .description(
            "Each domain (update domain, fault domain or zone, by strategy) over time: Pending, Upgrading, Succeeded "
            "or Failed. A rollout shows as domains turning blue then green one after another."
        )
        .datasource(DATASOURCE)
        .with_target(target(one_hot_code("scalesetimage_domain_state", "state", DOMAIN_STATES, "domain"), "{{domain}}"))
        .mappings(value_mappings(DOMAIN_STATES, DOMAIN_COLORS))
        .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .thresholds(thresholds((None, "text")))
        .show_value(common.VisibilityMode.AUTO)
        .fill_opacity(70)
        .line_width(0)
        .merge_values(True)
        .legend(legend())
        .span(12)
        .height(10)
    )
    heat = (
        statetimeline.Panel()
        .title("Domains: share upgraded (heat map)")
        .description("Share of each domain's instances on the target image and healthy, from red (0 %) to green.")
        .datasource(DATASOURCE)
        .with_target(target(f"max by (domain) ({selector('scalesetimage_domain_upgraded_ratio', ONE)})", "{{domain}}"))
        .unit("percentunit")
        .min(0)
        .max(1)
        .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.CONTINUOUS_RD_YL_GR))
        .show_value(common.VisibilityMode.NEVER)
        .fill_opacity(70)
        .line_width(0)
        .merge_values(False)
        .legend(legend().show_legend(False))
        .span(12)
        .height(10)
    )
    buckets = "scalesetimage_batch_duration_seconds_bucket"
    batches = (
        stat.Panel()
        .title("Batch and rollout durations")
        .description(
            "Median and 90th percentile of the time from a batch's start until its instances run the target and are "
            "healthy (histogram quantiles, so accurate to the bucket), and the mean time from a rollout's start "
            "until Ready: all batches and rollouts of this ScaleSetImage that the leading operator process has seen."
        )
        .datasource(DATASOURCE)
        .with_target(target(cumulative_quantile(0.5, buckets, ONE), "batch p50", "A", instant=True))
        .with_target(target(cumulative_quantile(0.9, buckets, ONE), "batch p90", "B", instant=True))
        .with_target(
            target(
                f"sum({selector('scalesetimage_rollout_duration_seconds_sum', ONE)})\n"
                f"/ sum({selector('scalesetimage_rollout_duration_seconds_count', ONE)})",
                "rollout (mean)",
                "C",
                instant=True,
            )
        )
        .unit("s")
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("no batch finished")
        .span(8)
        .height(6)
    )
    images = (
        table.Panel()
        .align(common.FieldTextAlignment.AUTO)
        .inspect(False)
        .title("Current vs target image")
        .description(
            "The image of the scale set's model (what new and reimaged instances get) next to the target image of the "
            "ScaleSetImage, with the rollout's progress."
        )
        .datasource(DATASOURCE)
        .with_target(
            table_target(
                f"max by (namespace, name, model_image, target_image) ({selector('scalesetimage_info', ONE)})\n"
                "* on (namespace, name) group_left ()\n"
                f"max by (namespace, name) ({selector('scalesetimage_rollout_progress_ratio', ONE)})"
            )
        )
        .with_transformation(
            organize(
                exclude=("Time",),
                rename={"model_image": "Model image (current)", "target_image": "Target image", "Value": "Progress"},
                order=("namespace", "name", "model_image", "target_image", "Value"),
            )
        )
        .override_by_name("Progress", [models.DynamicConfigValue(id_val="unit", value="percentunit")])
        .span(16)
        .height(6)
    )
    return [progress, instances, phase, domains, heat, batches, images]


# -- Azure API health -----------------------------------------------------------------------------------------


def azure_panels() -> list[PanelBuilder]:
    requests = "scalesetimage_azure_requests_total"
    by_code = graph(
        "Azure requests by operation and code",
        "Azure Resource Manager requests per second by operation and HTTP status code.",
        "reqps",
        12,
    ).with_target(target(f"sum by (operation, code) (rate({requests}[$__rate_interval]))", "{{operation}} {{code}}"))
    errors = (
        graph(
            "Azure error ratio",
            "Share of Azure requests answered with a 4xx or 5xx status code (429 throttling included).",
            "percentunit",
            12,
        )
        .min(0)
        .with_target(
            target(
                f'(sum(rate({requests}{{code=~"4..|5.."}}[$__rate_interval])) or vector(0))\n'
                f"/ sum(rate({requests}[$__rate_interval]))",
                "all operations",
                "A",
            )
        )
        .with_target(
            target(
                f'(\n  sum by (operation) (rate({requests}{{code=~"4..|5.."}}[$__rate_interval]))\n'
                f"  or 0 * sum by (operation) (rate({requests}[$__rate_interval]))\n)\n"
                f"/ sum by (operation) (rate({requests}[$__rate_interval]))",
                "{{operation}}",
                "B",
            )
        )
    )
    throttled = (
        graph(
            "Azure throttling",
            "Answers with 429 Too Many Requests per second. Sustained throttling slows every rollout down.",
            "reqps",
            12,
        )
        .min(0)
        .with_target(target("sum(rate(scalesetimage_azure_throttled_total[$__rate_interval]))", "429 per second"))
    )
    remaining = (
        graph(
            "Azure rate-limit budget remaining",
            "Requests Azure says remain in each rate-limit policy (x-ms-ratelimit-remaining-* headers).",
            "short",
            12,
        )
        .min(0)
        .with_target(target("min by (policy) (scalesetimage_azure_ratelimit_remaining)", "{{policy}}"))
    )
    return [by_code, errors, throttled, remaining]


# -- Operator health ------------------------------------------------------------------------------------------


def operator_panels() -> list[PanelBuilder]:
    up = single(
        "Operator replicas up",
        "Scrape targets of the operator's metrics job that are up (both replicas when healthy; one of them leads).",
        'sum(up{job="$job"}) or vector(0)',
        4,
        8,
    ).thresholds(thresholds((None, "red"), (1, "orange"), (2, "green")))
    rate = graph(
        "Reconcile passes by result",
        "Reconcile passes per second by result: success, transient (retried) or degraded.",
        "ops",
        7,
    ).with_target(target("sum by (result) (rate(scalesetimage_reconcile_total[$__rate_interval]))", "{{result}}"))
    rate = rate.override_by_name("success", [fixed("green")]).override_by_name("transient", [fixed("yellow")])
    rate = rate.override_by_name("degraded", [fixed("red")])
    errors = (
        graph(
            "Reconcile error ratio",
            "Share of reconcile passes that did not end in success (transient or degraded).",
            "percentunit",
            6,
        )
        .min(0)
        .with_target(
            target(
                '(sum(rate(scalesetimage_reconcile_total{result!="success"}[$__rate_interval])) or vector(0))\n'
                "/ sum(rate(scalesetimage_reconcile_total[$__rate_interval]))",
                "not success",
            )
        )
    )
    buckets = "scalesetimage_reconcile_duration_seconds_bucket"
    latency = (
        graph("Reconcile latency", "Time one reconcile pass takes: median and 99th percentile.", "s", 7)
        .with_target(target(quantile(0.5, buckets, "$__rate_interval"), "p50", "A"))
        .with_target(target(quantile(0.99, buckets, "$__rate_interval"), "p99", "B"))
    )
    return [up, rate, errors, latency]


# -- The dashboard --------------------------------------------------------------------------------------------


def variables() -> list[Builder[models.VariableModel]]:
    datasource = dashboard_builders.DatasourceVariable("datasource").label("Data source").type("prometheus")
    namespace = (
        dashboard_builders.QueryVariable("namespace")
        .label("Namespace")
        .description("Namespaces of the ScaleSetImages shown.")
        .datasource(DATASOURCE)
        .query("label_values(scalesetimage_phase, namespace)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )
    scalesetimage = (
        dashboard_builders.QueryVariable("scalesetimage")
        .label("ScaleSetImage")
        .description("The ScaleSetImage whose rollout the second row shows.")
        .datasource(DATASOURCE)
        .query('label_values(scalesetimage_phase{namespace=~"$namespace"}, name)')
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )
    return [datasource, namespace, scalesetimage]


def job_variable() -> dashboard_builders.TextBoxVariable:
    return (
        dashboard_builders.TextBoxVariable("job")
        .label("Metrics job")
        .description("The Prometheus job that scrapes the operator (for the up panel).")
        .default_value(DEFAULT_JOB)
        .current(models.VariableOption(selected=True, text=DEFAULT_JOB, value=DEFAULT_JOB))
    )


def build() -> models.Dashboard:
    builder = (
        dashboard_builders.Dashboard(TITLE)
        .uid(UID)
        .description(
            "Rollouts of Azure VM Scale Sets onto new OS images by the scaleset-image operator, one update domain at "
            "a time: the fleet, one ScaleSetImage's rollout, Azure API health and the operator's own health."
        )
        .tags(["scaleset-image-operator", "azure", "kubernetes"])
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
    )
    for variable in variables():
        builder = builder.with_variable(variable)
    builder = builder.with_variable(job_variable())
    sections: list[tuple[str, list[PanelBuilder]]] = [
        ("Fleet overview", fleet_panels()),
        ("Rollout of $scalesetimage", rollout_panels()),
        ("Azure API health", azure_panels()),
        ("Operator health", operator_panels()),
    ]
    for title, panels in sections:
        builder = builder.with_row(dashboard_builders.Row(title))
        for panel in panels:
            builder = builder.with_panel(panel)
    dashboard = builder.build()
    for number, built in enumerate(dashboard.panels or [], start=1):
        built.id_val = number
    return dashboard


def render_dashboard(dashboard: models.Dashboard | None = None) -> str:
    """The dashboard as pretty JSON with sorted keys, so the output is stable."""
    return json.dumps(dashboard if dashboard is not None else build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def render_configmap(dashboard_json: str) -> str:
    """A ConfigMap for Grafana's dashboard sidecar; the JSON sits unchanged in a literal block scalar."""
    body = "".join(f"    {line}\n" if line else "\n" for line in dashboard_json.splitlines())
    return (
        "# Generated by tools/dashboard/build_dashboard.py from the same dashboard as dashboard.json: do not edit.\n"
        "# Grafana's dashboard sidecar (e.g. kube-prometheus-stack's grafana.sidecar.dashboards) loads ConfigMaps\n"
        '# labelled grafana_dashboard: "1" from the namespaces it searches.\n'
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        f"  name: {CONFIGMAP_NAME}\n"
        f"  namespace: {CONFIGMAP_NAMESPACE}\n"
        "  labels:\n"
        '    grafana_dashboard: "1"\n'
        "    app.kubernetes.io/name: scaleset-image-operator\n"
        "    app.kubernetes.io/part-of: scaleset-image-operator\n"
        "    app.kubernetes.io/component: monitoring\n"
        "data:\n"
        f"  {CONFIGMAP_KEY}: |\n"
        f"{body}"
    )


def outputs() -> dict[Path, str]:
    dashboard_json = render_dashboard()
    return {DASHBOARD_PATH: dashboard_json, CONFIGMAP_PATH: render_configmap(dashboard_json)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    if stale:
        names = ", ".join(str(path.relative_to(REPO)) for path in stale)
        print(f"stale: {names}; run python tools/dashboard/build_dashboard.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
