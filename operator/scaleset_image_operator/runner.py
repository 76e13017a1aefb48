"""``scaleset-image run``: the operator process.

Loads the Kubernetes client configuration (kubeconfig as kubectl finds it, or in-cluster), waits to lead
(a Lease, unless leader election is off), then runs kopf's engine with our handlers on its own registry until
SIGTERM/SIGINT or the loss of leadership; on SIGTERM the leader hands the Lease back once kopf has stopped, so a
standby leads within seconds. ``/healthz`` on the health port answers from the start, for the
standby too (a standby that failed its liveness probe would be restarted for no reason); it runs on the
same event loop as kopf, so a blocked loop fails it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry, start_http_server

from . import handlers, wiring
from .kube.leader import LeaderElector, LeaseSettings
from .metrics import OperatorMetrics
from .reconciler import PassResult, Reconciler
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    health_port: int = 8081
    """Port of the liveness endpoint (``/healthz``)."""
    leader_election: bool = True
    lease_namespace: str = ""
    """Namespace of the Lease; default: the pod's namespace (POD_NAMESPACE), else ``scaleset-image-system``."""
    lease_name: str = "scaleset-image-operator"
    identity: str = ""
    kubeconfig: str = ""
    verbose: bool = False
    log_format: str = "plain"
    """``plain`` or ``json`` (one JSON object per line)."""


NO_KUBERNETES_CONFIG = "no Kubernetes configuration: set KUBECONFIG, pass --kubeconfig, or run in a cluster"


class KubernetesConfigError(Exception):
    """No usable Kubernetes client configuration; the message (one line) names the file or the setting."""


def load_kubernetes_config(kubeconfig: str) -> None:
    """In a cluster, the pod's service account; else the kubeconfig: ``kubeconfig`` if given, else as kubectl
    finds it (``KUBECONFIG``, else ``~/.kube/config``). Raises ``KubernetesConfigError`` naming what is missing or
    broken instead of the client library's exceptions."""
    where = f"--kubeconfig {kubeconfig}"
    if kubeconfig:
        if not Path(kubeconfig).exists():
            raise KubernetesConfigError(f"{where}: no such file")
        if Path(kubeconfig).is_dir():
            raise KubernetesConfigError(f"{where}: is a folder, not a kubeconfig file")
        os.environ["KUBECONFIG"] = kubeconfig
    try:
        kubernetes.config.load_incluster_config()
        return
    except kubernetes.config.ConfigException:
        pass  # not in a cluster (or its service account is not mounted): the kubeconfig it is
    if not kubeconfig:
        listed = [path for path in os.environ.get("KUBECONFIG", "").split(os.pathsep) if path]
        where = f"KUBECONFIG={os.environ.get('KUBECONFIG')}" if listed else "~/.kube/config"
        if not any(Path(path).expanduser().exists() for path in listed or ["~/.kube/config"]):
            raise KubernetesConfigError(f"{where}: no such file" if listed else NO_KUBERNETES_CONFIG)
    try:
        kubernetes.config.load_kube_config(config_file=kubeconfig or None)
    except (kubernetes.config.ConfigException, OSError, yaml.YAMLError, TypeError, ValueError, KeyError) as error:
        # A file that is no kubeconfig (a list, a string) fails deep inside the loader, with a TypeError or so.
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if isinstance(error, TypeError | KeyError):
            detail = "expected a mapping with clusters, contexts and users"
        raise KubernetesConfigError(f"{where}: not a usable kubeconfig: {detail}") from None


async def _health_server(port: int, leading: asyncio.Event) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "leading": leading.is_set()})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


def _quiet_libraries(verbose: bool) -> None:
    if not verbose:
        for name in ("azure", "kopf.objects", "kopf.activities", "aiohttp.access", "leaderelection"):
            logging.getLogger(name).setLevel(logging.WARNING)


async def run(settings: Settings, options: RunOptions) -> int:
    handlers.configure_logging(options.verbose, options.log_format)
    _quiet_libraries(options.verbose)
    load_kubernetes_config(options.kubeconfig)
    leading_now = asyncio.Event()
    health = await _health_server(options.health_port, leading_now)
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    server, thread = start_http_server(settings.metrics_port, registry=registry)
    log.info("metrics on http://0.0.0.0:%d/metrics", settings.metrics_port)
    try:
        return await _lead_and_operate(settings, options, leading_now, metrics)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        await health.cleanup()


async def _lead_and_operate(
    settings: Settings, options: RunOptions, leading_now: asyncio.Event, metrics: OperatorMetrics | None = None
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    elector = None
    if options.leader_election:
        identity = options.identity or f"{socket.gethostname()}-{os.getpid()}"
        namespace = options.lease_namespace or os.environ.get("POD_NAMESPACE") or "scaleset-image-system"
        elector = LeaderElector(LeaseSettings(namespace, options.lease_name, identity), loop)
        elector.start()
        log.info("waiting to lead (Lease %s/%s, identity %s)", namespace, options.lease_name, identity)
        leading = asyncio.ensure_future(elector.became_leader())
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(elector.lost.wait())
        await asyncio.wait({leading, stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (leading, stopping, failing):
            waiter.cancel()
        if stop.is_set():
            await elector.release()  # ends the election; hands the Lease back if it was taken at this moment
            return 0
        if elector.lost.is_set():
            log.error("leader election ended before this replica led: exiting so that it restarts as a candidate")
            return 1
        watcher = asyncio.ensure_future(_stop_when_lost(elector.lost, stop))
    leading_now.set()

    async with wiring.credential(settings) as credential:
        gateway = wiring.gateway(settings, credential)
        state = handlers.OperatorState(Reconciler(gateway, settings, time.time))
        if metrics is not None:
            recorder = metrics

            def record(key: tuple[str, str], result: PassResult, seconds: float, previous: dict[str, Any]) -> None:
                recorder.observe_pass(key, result, seconds, previous, time.time())
                recorder.sync_azure(gateway.stats)

            state.on_pass.append(record)
            state.on_forget.append(metrics.forget)
        try:
            await handlers.operate(settings, state, stop)
        finally:
            await gateway.close()
    if elector is not None:
        watcher.cancel()
        if elector.lost.is_set():
            log.error("lost leadership: exiting so that a standby can take over")
            return 1
        # kopf has stopped, so nothing acts as the leader any more: hand the Lease back for a standby to lead now
        # rather than after the Lease expires.
        await elector.release()
    return 0


async def _stop_when_lost(lost: asyncio.Event, stop: asyncio.Event) -> None:
    await lost.wait()
    stop.set()
