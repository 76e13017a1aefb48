"""A Kubernetes-free driver of the reconciler: one ScaleSetImage manifest, its status kept in a JSON file.

It is what ``make demo`` runs and what the crash tests kill: each pass's status is written atomically
(temp file + rename) exactly once, as the operator writes it to the custom resource's status, so a process
killed at any moment restarts from the last written status, like the operator after a crash.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .reconciler import PassResult, Reconciler, Resource


def read_status(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    text = path.read_text()
    return dict(json.loads(text)) if text.strip() else {}


def write_status(path: Path, status: Mapping[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(status, indent=2, sort_keys=True))
    os.replace(temporary, path)


class LocalEngine:
    def __init__(
        self,
        reconciler: Reconciler,
        manifest: Mapping[str, Any],
        status_file: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        metadata = manifest.get("metadata") or {}
        self._reconciler = reconciler
        self._manifest = manifest
        self._status_file = status_file
        self._clock = clock
        self.status: dict[str, Any] = read_status(status_file)
        self.namespace = str(metadata.get("namespace") or "default")
        self.name = str(metadata.get("name") or "scalesetimage")
        self.annotations: dict[str, str] = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
        self.generation = int(metadata.get("generation") or 1)
        self.spec: Mapping[str, Any] = manifest.get("spec") or {}

    async def step(self) -> PassResult:
        resource = Resource(self.namespace, self.name, self.generation, self.spec, self.status, self.annotations)
        result = await self._reconciler.reconcile(resource)
        self.status = result.status
        if self._status_file is not None:
            write_status(self._status_file, self.status)
        return result

    async def run(
        self,
        done: Callable[[PassResult], bool],
        *,
        timeout: float,
        on_pass: Callable[[PassResult], None] | None = None,
        max_sleep: float = 1.0,
    ) -> PassResult:
        """Pass after pass, sleeping what each asks (at most ``max_sleep``), until ``done`` or ``timeout``."""
        deadline = self._clock() + timeout
        while True:
            result = await self.step()
            if on_pass is not None:
                on_pass(result)
            if done(result):
                return result
            if self._clock() >= deadline:
                raise TimeoutError(f"{self.name}: not done after {timeout:g}s: {result.status.get('message')}")
            await asyncio.sleep(min(max_sleep, result.requeue_after if result.requeue_after is not None else max_sleep))


def settled(result: PassResult) -> bool:
    """Ready, or stopped in a way only a person can change (halted, failed, paused, planned)."""
    phase = result.status.get("phase")
    return phase in ("Succeeded", "Halted", "Failed", "Planned", "Paused") and (
        result.decision is None or result.decision.action is None
    )
