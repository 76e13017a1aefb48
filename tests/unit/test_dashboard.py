"""The Grafana dashboard (tools/dashboard/build_dashboard.py): the committed JSON and ConfigMap are what the builder
writes, the JSON round-trips through grafana-foundation-sdk's models, every query is well-formed PromQL over the
families the operator really exports, and the template variables exist.

PromQL is checked offline by the small parser below (syntax, the argument types of functions and aggregations,
binary-operator rules, selector and regex validity). Whether Prometheus itself accepts the queries and returns
series is the job of the observability tests that run a real Prometheus.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import CollectorRegistry

from scaleset_image_operator.core.planner import Phase
from scaleset_image_operator.metrics import CONDITIONS, DOMAIN_STATES, INSTANCE_STATES, OperatorMetrics

REPO = Path(__file__).resolve().parents[2]
BUILDER = REPO / "tools" / "dashboard" / "build_dashboard.py"


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", BUILDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_dashboard", module)
    spec.loader.exec_module(module)
    return module


builder = load_builder()
DASHBOARD: dict[str, Any] = json.loads(builder.DASHBOARD_PATH.read_text(encoding="utf-8"))


# -- A PromQL parser, enough to reject what Prometheus would reject in these queries -----------------------------


class PromQLError(ValueError):
    pass


SCALAR, VECTOR, MATRIX, STRING = "scalar", "instant vector", "range vector", "string"
AGGREGATIONS = {
    "sum": None,
    "min": None,
    "max": None,
    "avg": None,
    "group": None,
    "stddev": None,
    "stdvar": None,
    "count": None,
    "count_values": STRING,
    "bottomk": SCALAR,
    "topk": SCALAR,
    "quantile": SCALAR,
}
# name: (argument types, how many trailing arguments are optional, return type); "..." repeats the last type.
FUNCTIONS: dict[str, tuple[tuple[str, ...], int, str]] = {
    **dict.fromkeys(("abs", "absent", "ceil", "exp", "floor", "ln", "log2", "log10"), ((VECTOR,), 0, VECTOR)),
    **dict.fromkeys(("sgn", "sort", "sort_desc", "sqrt", "timestamp"), ((VECTOR,), 0, VECTOR)),
    **dict.fromkeys(("day_of_month", "day_of_week", "days_in_month", "hour", "minute"), ((VECTOR,), 1, VECTOR)),
    **dict.fromkeys(("month", "year"), ((VECTOR,), 1, VECTOR)),
    **dict.fromkeys(("rate", "irate", "increase", "delta", "idelta", "deriv"), ((MATRIX,), 0, VECTOR)),
    **dict.fromkeys(("changes", "resets", "absent_over_time", "present_over_time"), ((MATRIX,), 0, VECTOR)),
    **{
        f"{name}_over_time": ((MATRIX,), 0, VECTOR)
        for name in ("avg", "min", "max", "sum", "count", "stddev", "stdvar", "last")
    },
    "quantile_over_time": ((SCALAR, MATRIX), 0, VECTOR),
    "histogram_quantile": ((SCALAR, VECTOR), 0, VECTOR),
    "predict_linear": ((MATRIX, SCALAR), 0, VECTOR),
    "holt_winters": ((MATRIX, SCALAR, SCALAR), 0, VECTOR),
    "clamp": ((VECTOR, SCALAR, SCALAR), 0, VECTOR),
    "clamp_max": ((VECTOR, SCALAR), 0, VECTOR),
    "clamp_min": ((VECTOR, SCALAR), 0, VECTOR),
    "round": ((VECTOR, SCALAR), 1, VECTOR),
    "label_replace": ((VECTOR, STRING, STRING, STRING, STRING), 0, VECTOR),
    "label_join": ((VECTOR, STRING, STRING, STRING, "..."), 0, VECTOR),
    "scalar": ((VECTOR,), 0, SCALAR),
    "vector": ((SCALAR,), 0, VECTOR),
    "time": ((), 0, SCALAR),
}
SET_OPS = {"and", "or", "unless"}
COMPARISONS = {"==", "!=", "<", ">", "<=", ">="}
# Binary operators from the loosest to the tightest; ^ is right-associative.
PRECEDENCE = [{"or"}, {"and", "unless"}, COMPARISONS, {"+", "-"}, {"*", "/", "%", "atan2"}, {"^"}]
KEYWORDS = {"and", "or", "unless", "atan2", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
KEYWORDS |= {"offset"}

TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?!\w)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)(?![\w:])
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
  | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=(){}\[\],:@])
    """,
    re.VERBOSE,
)
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class Matcher:
    metric: str | None
    label: str
    op: str
    value: str


@dataclass
class Query:
    """What a parsed expression uses: metric names, label matchers and the label names of by/on clauses."""

    metrics: set[str] = field(default_factory=set)
    matchers: list[Matcher] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise PromQLError(f"unexpected character {text[position]!r} at {position}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            value = match.group()
            if kind == "ident" and value.lower() in KEYWORDS | {"inf", "nan"}:
                kind, value = ("number", value) if value.lower() in {"inf", "nan"} else ("keyword", value.lower())
            tokens.append((kind, value))
        position = match.end()
    tokens.append(("eof", ""))
    return tokens


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0
        self.query = Query()

    # token helpers

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.at += 1
        return token

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in {"op", "keyword"}:
            self.at += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise PromQLError(f"expected {value!r}, found {self.peek()[1] or 'end of input'!r}")

    def label_list(self) -> list[str]:
        self.expect("(")
        labels: list[str] = []
        while not self.accept(")"):
            kind, name = self.take()
            if kind not in {"ident", "keyword"} or not LABEL_NAME.fullmatch(name):
                raise PromQLError(f"bad label name {name!r} in grouping")
            labels.append(name)
            if not self.accept(","):
                self.expect(")")
                break
        self.query.grouping.update(labels)
        return labels

    # grammar

    def parse(self) -> str:
        kind = self.expression(0)
        if self.peek()[0] != "eof":
            raise PromQLError(f"unexpected {self.peek()[1]!r} after the expression")
        if kind not in {SCALAR, VECTOR}:
            raise PromQLError(f"a query must give a scalar or an instant vector, not a {kind}")
        return kind

    def expression(self, level: int) -> str:
        if level == len(PRECEDENCE):
            return self.unary()
        left = self.expression(level + 1)
        while self.peek()[0] in {"op", "keyword"} and self.peek()[1] in PRECEDENCE[level]:
            operator = self.take()[1]
            returns_bool = self.accept("bool")
            if returns_bool and operator not in COMPARISONS:
                raise PromQLError("bool modifier on a non-comparison operator")
            matching = False
            if self.peek()[1] in {"on", "ignoring"}:
                self.take()
                self.label_list()
                matching = True
                if self.peek()[1] in {"group_left", "group_right"}:
                    if operator in SET_OPS:
                        raise PromQLError(f"no grouping modifier with set operator {operator}")
                    self.take()
                    if self.peek()[1] == "(":
                        self.label_list()
            # ^ is right-associative: its right side binds at the same level.
            right = self.expression(level if operator == "^" else level + 1)
            left = self.binary(operator, left, right, returns_bool=returns_bool, matching=matching)
        return left

    @staticmethod
    def binary(operator: str, left: str, right: str, *, returns_bool: bool, matching: bool) -> str:
        for side in (left, right):
            if side not in {SCALAR, VECTOR}:
                raise PromQLError(f"binary {operator} on a {side}")
        if operator in SET_OPS and (left, right) != (VECTOR, VECTOR):
            raise PromQLError(f"set operator {operator} needs instant vectors on both sides")
        if operator in COMPARISONS and (left, right) == (SCALAR, SCALAR) and not returns_bool:
            raise PromQLError("comparisons between scalars must use the bool modifier")
        if matching and (left, right) != (VECTOR, VECTOR):
            raise PromQLError("vector matching only between instant vectors")
        return VECTOR if VECTOR in (left, right) else SCALAR

    def unary(self) -> str:
        if self.peek() in {("op", "-"), ("op", "+")}:
            self.take()
            kind = self.unary()
            if kind not in {SCALAR, VECTOR}:
                raise PromQLError(f"unary operator on a {kind}")
            return kind
        return self.postfix()

    def postfix(self) -> str:
        kind, selector = self.primary()
        if self.accept("["):
            self.duration()
            if self.accept(":"):
                if self.peek()[0] == "duration":
                    self.duration()
                if kind != VECTOR:
                    raise PromQLError(f"subquery of a {kind}")
                selector = True  # a subquery takes an offset like a selector does
            elif not selector:
                raise PromQLError("ranges only on vector selectors (or subqueries, with ':')")
            self.expect("]")
            kind = MATRIX
        if self.accept("offset"):
            if not selector:
                raise PromQLError("offset only on a selector or a subquery")
            self.accept("-")
            self.duration()
        return kind

    def duration(self) -> None:
        kind, value = self.take()
        if kind != "duration":
            raise PromQLError(f"expected a duration, found {value!r}")

    def primary(self) -> tuple[str, bool]:
        """The primary expression's type, and whether it is a vector selector."""
        kind, value = self.peek()
        if kind == "number":
            self.take()
            return SCALAR, False
        if kind == "string":
            self.take()
            return STRING, False
        if (kind, value) == ("op", "("):
            self.take()
            inner = self.expression(0)
            self.expect(")")
            return inner, False
        if (kind, value) == ("op", "{"):
            return self.selector(None), True
        if kind == "ident" and value in AGGREGATIONS:
            return self.aggregation(), False
        if kind == "ident" and self.peek(1) == ("op", "("):
            return self.function(), False
        if kind == "ident":
            self.take()
            return self.selector(value), True
        raise PromQLError(f"unexpected {value or 'end of input'!r}")

    def aggregation(self) -> str:
        name = self.take()[1]
        if self.peek()[1] in {"by", "without"}:
            self.take()
            self.label_list()
        self.expect("(")
        parameter = AGGREGATIONS[name]
        if parameter is not None:
            given = self.expression(0)
            if given != parameter:
                raise PromQLError(f"{name} needs a {parameter} parameter, got a {given}")
            self.expect(",")
        body = self.expression(0)
        self.expect(")")
        if body != VECTOR:
            raise PromQLError(f"{name} aggregates an instant vector, got a {body}")
        if self.peek()[1] in {"by", "without"}:
            self.take()
            self.label_list()
        return VECTOR

    def function(self) -> str:
        name = self.take()[1]
        if name not in FUNCTIONS:
            raise PromQLError(f"unknown function {name}")
        wanted, optional, returns = FUNCTIONS[name]
        self.expect("(")
        given: list[str] = []
        while not self.accept(")"):
            given.append(self.expression(0))
            if not self.accept(","):
                self.expect(")")
                break
        variadic = bool(wanted) and wanted[-1] == "..."
        fixed = wanted[:-2] if variadic else wanted
        repeated = wanted[-2] if variadic else None
        if len(given) < len(fixed) - optional or (not variadic and len(given) > len(fixed)):
            raise PromQLError(f"{name} takes {len(fixed)} arguments, got {len(given)}")
        for index, kind in enumerate(given):
            expected = fixed[index] if index < len(fixed) else repeated
            if kind != expected:
                raise PromQLError(f"argument {index + 1} of {name} must be a {expected}, got a {kind}")
        return returns

    def selector(self, metric: str | None) -> str:
        matchers: list[Matcher] = []
        if self.accept("{"):
            while not self.accept("}"):
                kind, label = self.take()
                if kind not in {"ident", "keyword"} or not LABEL_NAME.fullmatch(label):
                    raise PromQLError(f"bad label name {label!r}")
                operator = self.take()[1]
                if operator not in {"=", "!=", "=~", "!~"}:
                    raise PromQLError(f"bad matcher operator {operator!r}")
                kind, raw = self.take()
                if kind != "string":
                    raise PromQLError(f"a matcher needs a string value, got {raw!r}")
                value = raw[1:-1] if raw.startswith("`") else ast.literal_eval(raw)
                if operator in {"=~", "!~"}:
                    try:
                        re.compile(value)
                    except re.error as error:
                        raise PromQLError(f"bad regular expression {value!r}: {error}") from error
                matchers.append(Matcher(metric, label, operator, value))
                if not self.accept(","):
                    self.expect("}")
                    break
        if metric is None:
            names = [m.value for m in matchers if m.label == "__name__" and m.op == "="]
            metric = names[0] if names else None
            if metric is not None:
                for matcher in matchers:
                    matcher.metric = metric
        if metric is None and all(matches_empty(m) for m in matchers):
            raise PromQLError("a vector selector needs a name or a matcher that does not match the empty string")
        if metric is not None:
            self.query.metrics.add(metric)
        self.query.matchers.extend(matchers)
        return VECTOR


def matches_empty(matcher: Matcher) -> bool:
    if matcher.op == "=":
        return matcher.value == ""
    if matcher.op == "!=":
        return matcher.value != ""
    found = re.fullmatch(matcher.value, "") is not None
    return found if matcher.op == "=~" else not found


def parse_promql(text: str) -> Query:
    parser = Parser(text)
    parser.parse()
    return parser.query


# -- Grafana's side: variables and the queries of the dashboard ----------------------------------------------

BUILTINS = {"__rate_interval": "1m", "__range": "6h", "__interval": "30s"}
SAMPLE_VALUES = {"namespace": "team-a", "scalesetimage": "web", "job": "scaleset-image-operator-metrics"}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def expand(text: str) -> str:
    """Substitute Grafana's variables the way Grafana would before sending the query to Prometheus."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in BUILTINS:
            return BUILTINS[name]
        if name in SAMPLE_VALUES:
            return SAMPLE_VALUES[name]
        raise AssertionError(f"unknown variable ${name} in {text!r}")

    return VARIABLE.sub(value, text)


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panels(panel) if panel.get("panels") else [])
    return found


def targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{panel['title']} [{target['refId']}]", target)
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_queries(dashboard: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """label_values(<selector>, <label>) of each query variable: its selector and label."""
    found = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"])
            assert match, f"variable {variable['name']}: not a label_values query: {variable['query']!r}"
            found[variable["name"]] = (match.group(1), match.group(2))
    return found


TARGETS = targets(DASHBOARD)
QUERIES = {name: parse_promql(expand(target["expr"])) for name, target in TARGETS}


def operator_families() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Family name -> (type, label names) of everything OperatorMetrics registers."""
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    labels = {
        collector._name: tuple(collector._labelnames)
        for collector in vars(metrics).values()
        if hasattr(collector, "_labelnames") and hasattr(collector, "_name")
    }
    families = {family.name: (family.type, labels.get(family.name, ())) for family in registry.collect()}
    assert families.keys() == labels.keys()
    return families


def exported_series() -> dict[str, tuple[str, set[str]]]:
    """Every series name the operator exposes -> (its family, the label names it may carry)."""
    names: dict[str, tuple[str, set[str]]] = {}
    for family, (kind, labels) in operator_families().items():
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
        for suffix in suffixes.get(kind, ("",)):
            extra = {"le"} if suffix == "_bucket" else set()
            names[family + suffix] = (family, set(labels) | extra)
    names["up"] = ("up", {"job", "instance", "namespace", "pod", "service", "endpoint", "container"})
    return names


# -- The tests -----------------------------------------------------------------------------------------------


def test_committed_files_are_what_the_builder_writes() -> None:
    for path, text in builder.outputs().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(REPO)} is stale: run `uv run python tools/dashboard/build_dashboard.py`"
        )
    assert builder.main(["--check"]) == 0


def test_check_mode_fails_on_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "dashboard.json"
    stale.write_text("{}\n", encoding="utf-8")
    configmap = tmp_path / "dashboard-configmap.yaml"
    monkeypatch.setattr(builder, "REPO", tmp_path)
    monkeypatch.setattr(builder, "DASHBOARD_PATH", stale)
    monkeypatch.setattr(builder, "CONFIGMAP_PATH", configmap)
    assert builder.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "{}\n"
    assert not configmap.exists()
    assert builder.main([]) == 0
    assert builder.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == builder.DASHBOARD_PATH.read_text(encoding="utf-8")


def test_the_builder_is_deterministic() -> None:
    assert builder.render_dashboard() == builder.render_dashboard(builder.build())


def test_json_round_trips_through_the_sdk_models() -> None:
    register_default_plugins()
    text = builder.DASHBOARD_PATH.read_text(encoding="utf-8")
    model = Dashboard.from_json(json.loads(text))
    assert json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n" == text
    assert model.uid == builder.UID
    assert model.title == builder.TITLE


def test_configmap_embeds_exactly_the_dashboard_json() -> None:
    document = yaml.safe_load(builder.CONFIGMAP_PATH.read_text(encoding="utf-8"))
    assert document["apiVersion"] == "v1"
    assert document["kind"] == "ConfigMap"
    assert document["metadata"]["name"] == "scaleset-image-operator-dashboard"
    assert document["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert list(document["data"]) == ["scaleset-image-operator.json"]
    assert document["data"]["scaleset-image-operator.json"] == builder.DASHBOARD_PATH.read_text(encoding="utf-8")


def test_layout_rows_ids_and_datasources() -> None:
    everything = panels(DASHBOARD)
    rows = [panel["title"] for panel in everything if panel["type"] == "row"]
    assert rows == ["Fleet overview", "Rollout of $scalesetimage", "Azure API health", "Operator health"]
    ids = [panel["id"] for panel in everything]
    assert len(ids) == len(set(ids))
    for panel in everything:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), panel["title"]
    assert len({(name.rsplit(" [", 1)[0]) for name, _ in TARGETS}) == len(everything) - len(rows)


def test_template_variables() -> None:
    variables = {variable["name"]: variable for variable in DASHBOARD["templating"]["list"]}
    assert {"datasource", "namespace", "scalesetimage"} <= variables.keys()
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    queries = variable_queries(DASHBOARD)
    assert queries["namespace"] == ("scalesetimage_phase", "namespace")
    assert queries["scalesetimage"] == ('scalesetimage_phase{namespace=~"$namespace"}', "name")
    for name, (selector, _) in queries.items():
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert parse_promql(expand(selector)).metrics == {"scalesetimage_phase"}
    used = {
        next(g for g in match.groups() if g) for _, target in TARGETS for match in VARIABLE.finditer(target["expr"])
    }
    assert used - BUILTINS.keys() <= variables.keys()
    assert {"namespace", "scalesetimage"} <= used


@pytest.mark.parametrize(("name", "target"), TARGETS, ids=[name for name, _ in TARGETS])
def test_every_query_is_valid_promql(name: str, target: dict[str, Any]) -> None:
    parse_promql(expand(target["expr"]))
    assert target["refId"]
    assert target["expr"].strip() == target["expr"]


def test_queries_use_only_the_operator_families_and_their_labels() -> None:
    series = exported_series()
    for name, query in QUERIES.items():
        assert query.metrics, f"{name} selects no metric"
        assert query.metrics <= series.keys(), f"{name}: unknown metrics {sorted(query.metrics - series.keys())}"
        allowed = set().union(*(series[metric][1] for metric in query.metrics))
        for matcher in query.matchers:
            assert matcher.metric is not None, name
            assert matcher.label in series[matcher.metric][1], f"{name}: {matcher.metric} has no {matcher.label}"
        assert query.grouping <= allowed, f"{name}: grouping by {sorted(query.grouping - allowed)}"


def test_every_family_of_the_operator_is_on_the_dashboard() -> None:
    series = exported_series()
    shown = {series[metric][0] for query in QUERIES.values() for metric in query.metrics}
    assert shown == set(operator_families()) | {"up"}


def test_label_values_in_queries_are_ones_the_operator_exports() -> None:
    known = {
        ("scalesetimage_phase", "phase"): {phase.value for phase in Phase},
        ("scalesetimage_instances", "state"): set(INSTANCE_STATES),
        ("scalesetimage_domain_state", "state"): set(DOMAIN_STATES),
        ("scalesetimage_condition", "type"): set(CONDITIONS),
        ("scalesetimage_condition", "status"): {"True", "False"},
        ("scalesetimage_reconcile_total", "result"): {"success", "transient", "degraded"},
    }
    checked = 0
    for name, query in QUERIES.items():
        for matcher in query.matchers:
            values = known.get((matcher.metric or "", matcher.label))
            if values is None:
                continue
            checked += 1
            if matcher.op in {"=", "!="}:
                assert matcher.value in values, f"{name}: {matcher.label}={matcher.value!r}"
            else:
                alternatives = set(matcher.value.split("|"))
                assert alternatives <= values, f"{name}: {matcher.label}=~{matcher.value!r}"
    assert checked >= 10
    assert set(builder.PHASES) == {phase.value for phase in Phase}
    assert builder.DOMAIN_STATES == DOMAIN_STATES
    assert set(builder.INSTANCE_COLORS) == set(INSTANCE_STATES)


def test_state_timelines_map_every_code_to_its_state() -> None:
    """The phase and domain timelines encode one-hot families as numbers; the value mappings name each number."""
    expected = {"Phase": builder.PHASES, "Domains x state": DOMAIN_STATES}
    for panel in panels(DASHBOARD):
        if panel["title"] in expected:
            options = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
            assert {key: value["text"] for key, value in options.items()} == {
                str(index): state for index, state in enumerate(expected[panel["title"]])
            }
            expr = panel["targets"][0]["expr"]
            for index, state in enumerate(expected[panel["title"]][1:], start=1):
                assert (f'="{state}"' in expr) and (index == 1 or f"{index} * max by" in expr), (panel["title"], state)


# -- The parser rejects what Prometheus rejects ---------------------------------------------------------------

VALID = [
    "sum by (phase) (scalesetimage_phase == 1)",
    'sum(rate(x_total{code=~"4..|5.."}[5m])) / sum(rate(x_total[5m]))',
    "histogram_quantile(0.9, sum by (le) (rate(x_bucket[1h30m])))",
    "count(x == 1) or vector(0)",
    "a * on (namespace, name) group_left () b",
    "a * on (namespace, name) group_left (model_image) b",
    "max_over_time((max by (namespace, name) (x))[30m:1m]) == 1",
    "x offset 30m",
    "rate(x[5m] offset 1h)",
    'label_join(x, "dst", ",", "a", "b")',
    "-x ^ 2 ^ 3",
    "1 < bool 2",
    'label_replace(x, "a", "$1", "b", "(.*)")',
    "topk(3, x) without (instance)",
    '{__name__="x", job!=""}',
]
INVALID = [
    "sum(rate(foo[5m]) ",
    "rate(foo)",
    "rate(foo[5m]",
    "foo[5m]",
    "sum(foo[5m])",
    "histogram_quantile(sum(x), x)",
    "nosuch(x)",
    'x{a~"b"}',
    'x{a=~"("}',
    'x{a="b"',
    "x{a=b}",
    '{a=""}',
    "1 < 2",
    "1 and x",
    "x + on (a) group_left (b) y or z and on (a) group_left w",
    "x y",
    "sum by (le (x)",
    "x[5]",
    "(x + y)[5m]",
    "topk(x)",
    "x == bool",
    "x + bool y",
    "1 @",
    "sum(x) offset 5m",
    'label_join(x, "dst")',
]


@pytest.mark.parametrize("expr", VALID)
def test_parser_accepts_valid_promql(expr: str) -> None:
    parse_promql(expr)


@pytest.mark.parametrize("expr", INVALID)
def test_parser_rejects_invalid_promql(expr: str) -> None:
    with pytest.raises(PromQLError):
        parse_promql(expr)
