"""Fixtures of the observability tests: Prometheus' own tools (Debian's package, found or fetched once per session
by tools/prometheus/fetch.sh) and the monitoring component's manifests."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "components" / "monitoring"
FETCH = REPO / "tools" / "prometheus" / "fetch.sh"


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    """The folder holding ``prometheus`` and ``promtool`` (the last stdout line of fetch.sh). A failing fetch fails
    the tests with the script's own error: there is no fallback."""
    started = time.monotonic()
    proc = subprocess.run(["bash", str(FETCH)], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{FETCH.relative_to(REPO)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    lines = proc.stdout.strip().splitlines()
    folder = Path(lines[-1]) if lines else Path()
    if not (folder / "promtool").is_file() or not (folder / "prometheus").is_file():
        pytest.fail(f"fetch.sh printed {folder!s}, which holds no prometheus and promtool:\n{proc.stderr}")
    print(f"prometheus tools in {folder} ({time.monotonic() - started:.2f} s)")
    return folder


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
