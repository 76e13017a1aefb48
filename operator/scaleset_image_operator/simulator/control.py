"""A small synchronous client of the simulator's ``/_sim`` control API, for tests, the demo and people.

Uses only the standard library (``urllib``) so that it can be called from any thread without an event
loop. Keys of the bodies are the control API's camelCase JSON keys (see docs/simulator.md).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode


class SimulatorError(RuntimeError):
    """The control API refused a request; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"simulator answered {status}: {body}")
        self.status = status
        self.body = body


class SimulatorControl:
    def __init__(self, url: str, ca_file: Path | str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self._timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sim/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=self._timeout) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                detail = json.loads(text)
            except ValueError:
                detail = text.decode(errors="replace")
            raise SimulatorError(error.code, detail) from None

    def create_scale_set(self, **body: Any) -> str:
        return str(self._call("POST", "scalesets", body)["id"])

    def scale_sets(self) -> list[str]:
        return list(self._call("GET", "scalesets")["value"])

    def publish_image(self, **body: Any) -> None:
        self._call("POST", "images", body)

    def inject_fault(self, **body: Any) -> str:
        return str(self._call("POST", "faults", body)["id"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "faults")["value"])

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        query = f"?{urlencode(filters)}" if filters else ""
        return list(self._call("GET", f"audit{query}")["entries"])

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "stats"))

    def set_clock(self, time_scale: float) -> dict[str, Any]:
        return dict(self._call("POST", "clock", {"timeScale": time_scale}))

    def clock(self) -> dict[str, Any]:
        return dict(self._call("GET", "clock"))

    def revoke_tokens(self) -> None:
        self._call("DELETE", "tokens")
