"""Fixtures of the observability tests: promtool (from the session's ``prometheus_bin``, tests/conftest.py) and the
monitoring component's manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "components" / "monitoring"


@pytest.fixture(scope="session")
def promtool(prometheus_bin: Path) -> Path:
    return prometheus_bin / "promtool"


@pytest.fixture(scope="session")
def prometheus_rule() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return document


@pytest.fixture(scope="session")
def alert_rules(prometheus_rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in prometheus_rule["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
