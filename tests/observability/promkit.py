"""A real Prometheus for tests: Debian's binary (tools/prometheus/fetch.sh), started on a loopback port picked at
run time, scraping given targets every second and evaluating the shipped alert rules every second.

Used by the observability tests (``tests/observability``) and by the end-to-end test that watches a rollout on the
test control plane (``tests/cluster/test_observability_on_prometheus.py``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "tools" / "prometheus" / "fetch.sh"
MONITORING = REPO / "deploy" / "components" / "monitoring"
JOB = "scaleset-image-operator-metrics"
"""The job name the shipped alerts and dashboard expect (the ServiceMonitor's Service name)."""


def fetch_prometheus() -> Path:
    """The folder holding ``prometheus`` and ``promtool``; raises with fetch.sh's own error when it cannot."""
    proc = subprocess.run(["bash", str(FETCH)], capture_output=True, text=True, timeout=600, check=False)
    lines = proc.stdout.strip().splitlines()
    folder = Path(lines[-1]) if lines else Path()
    if proc.returncode != 0 or not (folder / "prometheus").is_file() or not (folder / "promtool").is_file():
        raise RuntimeError(f"{FETCH.relative_to(REPO)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    return folder


def rule_groups() -> dict[str, Any]:
    """The PrometheusRule's groups as a plain Prometheus rule file."""
    document = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return {"groups": document["spec"]["groups"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """One Prometheus process; ``query``/``query_range`` raise on any API error (invalid PromQL included)."""

    def __init__(self, binary: Path, folder: Path, targets: Sequence[str], *, rules: bool = True) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
        }
        if rules:
            (folder / "rules.yaml").write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
            config["rule_files"] = [str(folder / "rules.yaml")]
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = folder / "prometheus.log"
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-10000:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.popen.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready after {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def api(self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] = ()) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a success, else an AssertionError with Prometheus' error."""
        query = urllib.parse.urlencode(params)
        request = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                body = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise AssertionError(f"{path} {dict(params)}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self.api("query", params)
        result = data["result"]
        return result if isinstance(result, list) else [{"metric": {}, "value": result}]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        data = self.api("query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step})
        return list(data["result"])


@contextlib.contextmanager
def running(binary: Path, folder: Path, targets: Sequence[str], *, rules: bool = True) -> Iterator[Prometheus]:
    prometheus = Prometheus(binary, folder, targets, rules=rules)
    try:
        prometheus.wait_ready()
        yield prometheus
    finally:
        prometheus.stop()
