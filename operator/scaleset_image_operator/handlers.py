"""The only kopf module: wiring of the ScaleSetImage handlers onto a registry, and the operator's lifecycle.

Create, update (spec, labels or annotations), resume and a timer all run the same reconcile pass, one pass at
a time per object (a lock per object: kopf runs timers beside change handlers). Each pass writes the whole
status once, as one merge patch to ``/status`` (none when the status is what the cluster already holds), posts
the pass's Events, and sets when the timer should look again (the reconciler's requeue; a tick that finds the
pass due before the next tick waits for that moment, so a requeue is kept, not rounded up to a tick). A new
object is reconciled once, by whichever of the create handler and the first timer tick comes first. Deleting a
ScaleSetImage stops management and changes nothing in Azure. kopf keeps its timers' objects under the finalizer
``scaleset.dev/operator``, which the running operator removes at once on deletion (``forget`` only drops
in-memory state); with no operator running, a deletion waits for it (docs/operations.md says how to remove it by
hand). Errors never escape a pass: the reconciler classified them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf

from .kube.resources import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    merged,
    parse_label_selector,
    resource_from_body,
    status_patch,
)
from .reconciler import Event, PassResult, Reconciler
from .settings import Settings

log = logging.getLogger(__name__)

DUE_SLACK = 0.01
"""Seconds a timer pass may start before its due time (clock and sleep granularity)."""


@dataclass
class OperatorState:
    """Lives in kopf's memo: the reconciler, one lock per object, and what the last pass decided."""

    reconciler: Reconciler
    clock: Callable[[], float] = time.monotonic
    tick: float = 0.0
    """The timer's interval: a tick that finds a pass due before the next tick waits for that moment."""
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    due: dict[tuple[str, str], float] = field(default_factory=dict)
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    on_pass: list[Callable[[tuple[str, str], PassResult, float, dict[str, Any]], None]] = field(default_factory=list)
    on_forget: list[Callable[[tuple[str, str]], None]] = field(default_factory=list)


async def run_pass(body: kopf.Body, patch: kopf.Patch, state: OperatorState, *, trigger: str) -> None:
    key = (str(body.metadata.namespace), str(body.metadata.name))
    if trigger == "timer" and key in state.due:
        wait = state.due[key] - state.clock()
        if wait > state.tick:
            return
        if wait > 0:
            await asyncio.sleep(wait)  # due before the next tick: run on time, not a tick late
    lock = state.locks.setdefault(key, asyncio.Lock())
    async with lock:
        due = state.due.get(key)
        if trigger == "timer" and due is not None and state.clock() < due - DUE_SLACK:
            return  # another trigger's pass ran meanwhile and moved the due time
        if trigger in ("create", "resume") and due is not None and state.clock() < due:
            return  # the first timer tick has reconciled this object already
        known = state.statuses.get(key)
        resource = resource_from_body(body, known)
        started = state.clock()
        result = await state.reconciler.reconcile(resource)
        stored = {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}
        wanted = merged(result.status)
        if wanted != merged(resource.status) or wanted != merged(stored):
            patch.status.update(status_patch(result.status, resource.status, stored))
        state.statuses[key] = result.status
        requeue = result.requeue_after
        state.due[key] = state.clock() + (requeue if requeue is not None else 3600.0)
        for event in result.events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1024])
            log_event(key, event, result.status)
        for listener in state.on_pass:
            listener(key, result, state.clock() - started, dict(resource.status))


def log_event(key: tuple[str, str], event: Event, status: dict[str, Any]) -> None:
    """One log line per Event, with the fields a log pipeline filters on (JSON logs carry them as keys:
    ``namespace``, ``scalesetimage``, ``reason``, ``phase``, ``target``, ``batch`` and ``domains`` for batch events,
    and kopf's own ``object`` reference). ``name`` is taken by Python's LogRecord, hence ``scalesetimage``."""
    fields: dict[str, Any] = {
        "namespace": key[0],
        "scalesetimage": key[1],
        "reason": event.reason,
        "phase": status.get("phase"),
        "target": status.get("targetImage"),
        "k8s_ref": {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "namespace": key[0], "name": key[1]},
    }
    if event.batch is not None:
        fields["batch"] = event.batch
        fields["domains"] = list(event.domains)
    level = logging.WARNING if event.type == "Warning" else logging.INFO
    log.log(level, "%s/%s %s: %s", key[0], key[1], event.reason, event.message, extra=fields)


def timer_interval(settings: Settings) -> float:
    """How often kopf's timer looks at each object (a pass runs only when the object's requeue is due)."""
    return max(0.2, min(settings.poll_seconds, 5.0))


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def register(registry: kopf.OperatorRegistry, settings: Settings, labels: dict[str, str | None]) -> None:
    """Attach the handlers to ``registry`` (nothing is registered at import time)."""
    kopf_labels: dict[str, Any] = {k: (kopf.PRESENT if v is None else v) for k, v in labels.items()}
    resource = (GROUP, VERSION, PLURAL)
    tick = timer_interval(settings)

    async def changed(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, reason: str, **_: Any) -> None:
        await run_pass(body, patch, memo["state"], trigger=reason)

    async def timer(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        await run_pass(body, patch, memo["state"], trigger="timer")

    def forget(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        key = (str(body.metadata.namespace), str(body.metadata.name))
        state: OperatorState = memo["state"]
        for table in (state.locks, state.due, state.statuses):
            table.pop(key, None)
        state.reconciler.forget(*key)
        for listener in state.on_forget:
            listener(key)

    # A registry of our own has none of kopf's default activities: log in as kubectl does, with the pod's
    # service account in a cluster, else the kubeconfig that $KUBECONFIG (read now, not at import) names.
    kopf.on.login(registry=registry, id="login")(login)
    kopf.on.resume(*resource, registry=registry, labels=kopf_labels, id="reconcile-resume")(changed)
    kopf.on.create(*resource, registry=registry, labels=kopf_labels, id="reconcile-create")(changed)
    kopf.on.update(*resource, registry=registry, labels=kopf_labels, id="reconcile-update")(changed)
    kopf.timer(*resource, registry=registry, labels=kopf_labels, interval=tick, id="reconcile-timer")(timer)
    kopf.on.delete(*resource, registry=registry, labels=kopf_labels, optional=True, id="forget")(forget)


LOG_FORMATS = ("plain", "json")


def configure_logging(verbose: bool, log_format: str = "plain") -> None:
    """Plain text lines, or one JSON object per line (timestamp, severity, message and the event's fields)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.PLAIN)


async def operate(settings: Settings, state: OperatorState, stop: asyncio.Event) -> None:
    """Run kopf's engine with our handlers until ``stop`` is set; SIGTERM and SIGINT set it."""
    registry = kopf.OperatorRegistry()
    register(registry, settings, parse_label_selector(settings.label_selector))
    state.tick = timer_interval(settings)
    existing = asyncio.all_tasks()  # the tasks kopf leaves alone when it stops: ours
    tasks = await kopf.spawn_tasks(
        registry=registry,
        settings=operator_settings(),
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        memo=kopf.Memo(state=state),
        stop_flag=stop,
    )
    # kopf.operator() is these two calls, but kopf's own SIGTERM handler (installed by spawn_tasks) leaves its
    # waiter on ``stop`` pending, and kopf then waits 5 s for that "hung" task before it returns: the Lease would
    # be handed back 5 s late. With ours back, a signal sets ``stop`` and kopf is done as soon as its tasks are.
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    await kopf.run_tasks(tasks, ignored=existing)


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.level = logging.WARNING
    settings.posting.enabled = True
    settings.persistence.finalizer = "scaleset.dev/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="operator.scaleset.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="operator.scaleset.dev", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 20
    # A deletion waits for a timer invocation under way (a pass, or a tick waiting for its due moment) to end; kopf
    # looks again only after this many seconds (60 by default), which made deleting a ScaleSetImage take a minute.
    settings.background.cancellation_polling = 1.0
    # The CRD is installed before the operator (deploy/): no need to watch CRDs and namespaces for new
    # resources, which would need cluster-wide list/watch on both.
    settings.scanning.disabled = True
    return settings
