"""The processes a benchmark runs against, started the way the tests and ``make demo-cluster`` start them.

- ``SimulatorProcess``: ``scaleset-image simulator`` as a process of its own (so that its CPU is not the
  benchmark's), its ``/_sim`` control API, and readers of its audit log.
- ``Cluster``: kube-apiserver + etcd (tools/controlplane), ``deploy/base`` applied, the operator's service-account
  kubeconfig, and an apiserver audit log that records only the operator's requests (``KubeAudit``): the apiserver's
  own ``apiserver_request_total`` has no user or user-agent label, its audit log has both.
- ``OperatorProcess``: ``scaleset-image run`` as a process under that service account, with settings from
  ``SCALESET_IMAGE_*`` variables; its peak RSS and CPU time from ``/proc``, its Prometheus metrics.
- ``ReadyWatcher``: ``kubectl get ssi -A -w`` in the background, remembering when each ScaleSetImage was first
  seen and first reported ``Ready=True`` (wall-clock seconds).

Times are wall-clock (``time.time()``) so that they compare with the simulator's audit timestamps.
Nothing here imports the tests: tools are not tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tools.controlplane.harness import ControlPlane

from scaleset_image_operator.settings import Settings
from scaleset_image_operator.simulator import SimulatorControl

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "scaleset-image-system"
SERVICE_ACCOUNT = "scaleset-image-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"
CRD = "scalesetimages.scaleset.dev"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A benchmark could not run (a process did not start, a rollout did not finish); the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ProcessSample:
    """What ``/proc/<pid>`` says about a process at one moment."""

    cpu_seconds: float
    """User + system CPU time since the process started."""
    peak_rss_mb: float
    """``VmHWM``: the largest resident set so far, in MiB."""
    rss_mb: float
    """``VmRSS`` now, in MiB."""


def sample_process(pid: int) -> ProcessSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    status = Path(f"/proc/{pid}/status").read_text()

    def kib(name: str) -> float:
        match = re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) / 1024 if match else 0.0

    return ProcessSample(cpu, kib("VmHWM"), kib("VmRSS"))


def _stop(popen: subprocess.Popen[bytes], grace: float) -> None:
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"<cannot read {path}: {error}>"


@dataclass
class ProcessMonitor:
    """Samples a process's RSS and CPU time every ``interval`` seconds on a thread, for the time series."""

    pid: int
    interval: float = 1.0
    samples: list[tuple[float, ProcessSample]] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=f"monitor-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.samples.append((time.time(), sample_process(self.pid)))
            self._done.wait(self.interval)

    def rss_at(self, moment: float) -> float:
        """The RSS (MiB) of the last sample taken at or before ``moment``."""
        earlier = [sample.rss_mb for at, sample in self.samples if at <= moment]
        return earlier[-1] if earlier else 0.0


# --- the Azure simulator ---------------------------------------------------------------------------------------------


_AUDIT_TIME = re.compile(r"^(?P<head>[^.+]+)(?:\.(?P<fraction>\d+))?(?P<zone>[+-]\d\d:\d\d|Z)?$")


def audit_time(text: str) -> float:
    """The simulator's audit timestamps (ARM style: seven fractional digits) as epoch seconds."""
    match = _AUDIT_TIME.match(text)
    if match is None:
        raise BenchError(f"unexpected timestamp {text!r} in the simulator's audit")
    fraction = (match.group("fraction") or "0")[:6].ljust(6, "0")
    zone = match.group("zone") or "+00:00"
    return datetime.fromisoformat(f"{match.group('head')}.{fraction}{'+00:00' if zone == 'Z' else zone}").timestamp()


class SimulatorProcess:
    """``scaleset-image simulator --port 0`` in a process of its own; ``url``, ``ca_file`` and ``control``."""

    def __init__(self, folder: Path, time_scale: float) -> None:
        self.folder = folder
        self.time_scale = time_scale
        self.ca_file = folder / "sim-ca.pem"
        self.log_path = folder / "simulator.log"
        self.url = ""
        self._popen: subprocess.Popen[bytes] | None = None
        self._control: SimulatorControl | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise BenchError("the simulator is not running")
        return self._popen.pid

    @property
    def control(self) -> SimulatorControl:
        if self._control is None:
            raise BenchError("the simulator is not running")
        return self._control

    def __enter__(self) -> Self:
        argv = [
            sys.executable,
            "-m",
            "scaleset_image_operator.cli",
            "simulator",
            "--port",
            "0",
            "--ca-file",
            str(self.ca_file),
            "--time-scale",
            f"{self.time_scale:g}",
        ]
        with self.log_path.open("wb") as log:
            self._popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_child_env()
            )
        deadline = time.monotonic() + 60
        while not self.url:
            match = re.search(r"listening on (https://\S+)", self.log_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
            elif self._popen.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BenchError(f"the simulator did not start:\n{_tail(self.log_path)}")
            else:
                time.sleep(0.1)
        self._control = SimulatorControl(self.url, self.ca_file, timeout=120)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._popen is not None:
            _stop(self._popen, 10)

    def audit_since(self, seq: int, kind: str | None = None) -> list[dict[str, Any]]:
        """The simulator's audit entries after ``seq`` (all kinds, or one: ``request``, ``operation``, ...)."""
        return self.control.audit(since=seq, **({"kind": kind} if kind else {}))

    def newest_seq(self, since: int = 0) -> int:
        """The newest audit sequence number (reads only the entries after ``since``)."""
        return max((int(entry["seq"]) for entry in self.control.audit(since=since)), default=since)

    def sample(self) -> ProcessSample:
        return sample_process(self.pid)


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# --- the Kubernetes control plane -------------------------------------------------------------------------------------


AUDIT_POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["{OPERATOR_USER}"]
  - level: None
"""


@dataclass(frozen=True)
class KubeRequests:
    """Requests the operator's service account made to kube-apiserver in a window, by verb and resource."""

    by_kind: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


class KubeAudit:
    """The apiserver's audit log (JSON lines), holding only the operator's requests (see ``AUDIT_POLICY``)."""

    def __init__(self, folder: Path) -> None:
        self.policy = folder / "audit-policy.yaml"
        self.log = folder / "kube-audit.log"
        self.policy.write_text(AUDIT_POLICY)

    def apiserver_args(self) -> list[str]:
        return [
            f"--audit-policy-file={self.policy}",
            f"--audit-log-path={self.log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",
        ]

    def mark(self) -> int:
        """A position in the log; ``requests_since(mark)`` counts what came after it."""
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def requests_since(self, mark: int, until: int | None = None) -> KubeRequests:
        """One count per request (audit id), named ``VERB resource[/subresource]``."""
        seen: dict[str, str] = {}
        try:
            with self.log.open("rb") as log:
                log.seek(mark)
                data = log.read() if until is None else log.read(max(0, until - mark))
        except FileNotFoundError:
            data = b""
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if (event.get("user") or {}).get("username") != OPERATOR_USER:
                continue
            ref = event.get("objectRef") or {}
            resource = str(ref.get("resource") or event.get("requestURI", "?").split("?")[0])
            if ref.get("subresource"):
                resource = f"{resource}/{ref['subresource']}"
            seen[str(event.get("auditID"))] = f"{str(event.get('verb', '?')).upper()} {resource}"
        return KubeRequests(dict(Counter(seen.values())))


class Cluster:
    """The test control plane with ``deploy/base`` applied and the operator's service-account kubeconfig."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.audit = KubeAudit(folder)
        self.control_plane = ControlPlane(extra_apiserver_args=self.audit.apiserver_args())
        self.operator_kubeconfig = Path()

    def __enter__(self) -> Self:
        self.control_plane.start()
        try:
            self.kubectl("apply", "-k", str(REPO / "deploy" / "base"))
            self.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
            self.operator_kubeconfig = self.control_plane.service_account_kubeconfig(
                OPERATOR_NAMESPACE, SERVICE_ACCOUNT, create=False, duration="6h"
            )
        except BaseException:
            self.control_plane.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.control_plane.stop()

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.control_plane.kubectl(*args, input=input).stdout

    def apply(self, documents: Sequence[Mapping[str, Any]]) -> None:
        """``kubectl apply -f`` of a file holding the documents, as a person would."""
        path = self.folder / f"apply-{time.monotonic_ns()}.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)}))
        self.kubectl("apply", "-f", str(path))

    def pids(self) -> dict[str, int]:
        """The process ids of etcd and kube-apiserver (for CPU figures)."""
        processes = getattr(self.control_plane, "_processes", [])
        return {str(p.name): int(p.popen.pid) for p in processes}


# --- the operator --------------------------------------------------------------------------------------------------


def scaled_settings(time_scale: float, poll_seconds: float) -> dict[str, str]:
    """The operator's timing settings at the simulator's time scale: its defaults (or ``poll_seconds``), which are
    meant for Azure's clock, divided by ``time_scale`` (rates multiplied), as ``SCALESET_IMAGE_*`` variables."""
    defaults = Settings()
    return {
        "SCALESET_IMAGE_POLL_SECONDS": f"{poll_seconds / time_scale:.6g}",
        "SCALESET_IMAGE_STEADY_SECONDS": f"{defaults.steady_seconds / time_scale:.6g}",
        "SCALESET_IMAGE_RETRY_AFTER_CAP": f"{defaults.retry_after_cap / time_scale:.6g}",
        "SCALESET_IMAGE_MAX_REQUEUE": f"{defaults.max_requeue / time_scale:.6g}",
        "SCALESET_IMAGE_BUDGET_SHARE": f"{defaults.budget_share * time_scale:.6g}",
        "SCALESET_IMAGE_IMAGE_CACHE_SECONDS": f"{defaults.image_cache_seconds / time_scale:.6g}",
    }


class OperatorProcess:
    """``scaleset-image run`` with the service-account kubeconfig, the simulator as Azure, a Lease of its own."""

    def __init__(self, cluster: Cluster, simulator: SimulatorProcess, settings: Mapping[str, str], name: str) -> None:
        self.log_path = cluster.folder / f"operator-{name}.log"
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.settings = dict(settings)
        self._argv = [
            sys.executable,
            "-m",
            "scaleset_image_operator.cli",
            "run",
            "--kubeconfig",
            str(cluster.operator_kubeconfig),
            "--lease-namespace",
            OPERATOR_NAMESPACE,
            "--lease-name",
            f"bench-{name}",
            "--identity",
            f"bench-{name}",
            "--health-port",
            str(self.health_port),
        ]
        self._env = _child_env(
            {
                "AZURE_TENANT_ID": TENANT_ID,
                "AZURE_CLIENT_ID": CLIENT_ID,
                "AZURE_CLIENT_SECRET": "benchmark",
                "AZURE_AUTHORITY_HOST": simulator.url,
                "SCALESET_IMAGE_ARM_ENDPOINT": simulator.url,
                "SCALESET_IMAGE_CA_BUNDLE": str(simulator.ca_file),
                "SCALESET_IMAGE_METRICS_PORT": str(self.metrics_port),
                **settings,
            }
        )
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise BenchError("the operator is not running")
        return self._popen.pid

    def __enter__(self) -> Self:
        self._log = self.log_path.open("ab")
        self._popen = subprocess.Popen(
            self._argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=self._env
        )
        deadline = time.monotonic() + 60
        while True:
            if self._popen.poll() is not None:
                self.__exit__(None, None, None)
                raise BenchError(f"the operator exited with {self._popen.returncode}:\n{_tail(self.log_path)}")
            health = self._health()
            if health is not None and health.get("leading"):
                return self
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BenchError(f"the operator did not lead within 60 s:\n{_tail(self.log_path)}")
            time.sleep(0.2)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._popen is not None:
            _stop(self._popen, 20)
        if self._log is not None:
            self._log.close()

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"the operator exited:\n{_tail(self.log_path)}")

    def _health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as answer:
                return dict(json.loads(answer.read()))
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def sample(self) -> ProcessSample:
        return sample_process(self.pid)

    def metrics(self) -> dict[str, float]:
        """The operator's Prometheus metrics: ``name{labels}`` -> value (one line each)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
        return values


# --- watching ScaleSetImages ----------------------------------------------------------------------------------------


_WATCH_TEMPLATE = (
    '{.type}{" "}{.object.metadata.namespace}{" "}{.object.metadata.name}{" "}'
    '{.object.status.conditions[?(@.type=="Ready")].status}{"\\n"}'
)


@dataclass
class ReadyWatcher:
    """``kubectl get scalesetimages -A --watch``: when each ScaleSetImage was first seen and first Ready, and how
    often it changed. When the apiserver ends the watch, kubectl is started again (its fresh list repeats every
    object as ADDED, which changes nothing here)."""

    kubeconfig: Path
    log_path: Path
    first_seen: dict[str, float] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)
    modified: Counter[str] = field(default_factory=Counter)
    """MODIFIED watch events per ScaleSetImage: writes that actually changed the object."""
    restarts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)
    _popen: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="ready-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        if self._popen is not None:
            _stop(self._popen, 5)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        argv = [
            "kubectl",
            f"--kubeconfig={self.kubeconfig}",
            "get",
            "scalesetimages",
            "--all-namespaces",
            "--watch",
            "--output-watch-events",
            "--request-timeout=0",
            "-o",
            f"jsonpath={_WATCH_TEMPLATE}",
        ]
        with self.log_path.open("ab") as log:
            while not self._done.is_set():
                self._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
                assert self._popen.stdout is not None
                for raw in self._popen.stdout:
                    self._line(raw.decode(errors="replace").split(), time.time())
                self._popen.wait()
                if not self._done.is_set():
                    self.restarts += 1
                    self._done.wait(0.2)

    def _line(self, parts: list[str], now: float) -> None:
        if len(parts) < 3:
            return
        kind, key = parts[0], f"{parts[1]}/{parts[2]}"
        with self._lock:
            self.first_seen.setdefault(key, now)
            if kind == "MODIFIED":
                self.modified[key] += 1
            if len(parts) > 3 and parts[3] == "True":
                self.ready_at.setdefault(key, now)

    def wait_ready(
        self,
        keys: Sequence[str],
        timeout: float,
        operator: OperatorProcess | None = None,
        *,
        partial: bool = False,
    ) -> dict[str, float]:
        """Blocks until every key (``namespace/name``) was Ready and returns their Ready times; after ``timeout``
        seconds raises, or with ``partial`` returns those that were Ready."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                missing = [key for key in keys if key not in self.ready_at]
                if not missing or (partial and time.monotonic() > deadline):
                    return {key: self.ready_at[key] for key in keys if key in self.ready_at}
            if operator is not None:
                operator.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{len(missing)} of {len(keys)} ScaleSetImages were not Ready within {timeout:g} s "
                    f"(e.g. {', '.join(missing[:5])})"
                )
            time.sleep(0.05)

    def seen(self, key: str) -> float | None:
        with self._lock:
            return self.first_seen.get(key)

    def changes(self, keys: Sequence[str]) -> int:
        """Writes so far that changed these ScaleSetImages (MODIFIED watch events; creation not included)."""
        with self._lock:
            return sum(self.modified[key] for key in keys)


@contextlib.contextmanager
def work_folder(keep: bool) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="scaleset-bench-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
