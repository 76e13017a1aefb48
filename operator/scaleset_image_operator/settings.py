"""The operator's configuration: one typed object, read once at start-up from the environment (and flags).

Every field documents its unit. Azure identity itself is configured the standard azure-identity way
(``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET`` or ``AZURE_FEDERATED_TOKEN_FILE``,
``AZURE_AUTHORITY_HOST``) and is not repeated here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PUBLIC_ARM_ENDPOINT = "https://management.azure.com"


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    arm_endpoint: str = PUBLIC_ARM_ENDPOINT
    """Azure Resource Manager base URL (https). Env: SCALESET_IMAGE_ARM_ENDPOINT."""
    arm_scope: str = "https://management.azure.com/.default"
    """OAuth scope requested for ARM tokens. Env: SCALESET_IMAGE_ARM_SCOPE."""
    ca_bundle: Path | None = None
    """Extra CA certificate file (PEM) trusted for ARM and the token authority. Env: SCALESET_IMAGE_CA_BUNDLE."""
    poll_seconds: float = 10.0
    """Seconds between passes while a rollout moves. Env: SCALESET_IMAGE_POLL_SECONDS."""
    steady_seconds: float = 600.0
    """Seconds between drift checks of a settled ScaleSetImage. Env: SCALESET_IMAGE_STEADY_SECONDS."""
    retry_after_cap: float = 30.0
    """Longest Retry-After (seconds) waited inside one Azure call; longer ones end the pass and requeue.
    Env: SCALESET_IMAGE_RETRY_AFTER_CAP."""
    azure_timeout_seconds: float = 60.0
    """Longest time (seconds) one Azure request may take, the SDK's retries, the Retry-After waits and the token
    request included; a request that outlives it ends the pass as AzureUnavailable, so a hung connection cannot
    hold a ScaleSetImage. Longer than the Retry-After cap. Env: SCALESET_IMAGE_AZURE_TIMEOUT."""
    max_requeue: float = 900.0
    """Longest delay (seconds) before a throttled or failed ScaleSetImage is looked at again.
    Env: SCALESET_IMAGE_MAX_REQUEUE."""
    budget_share: float = 0.5
    """Fraction of Compute's per-subscription request limit of each policy (800 scale-set GETs, 360 VM lists,
    5,000 operation reads per minute, ...) the operator allows itself; the rest is left to other tools. Above 1
    only against a simulator with a faster clock. Env: SCALESET_IMAGE_BUDGET_SHARE."""
    image_cache_seconds: float = 300.0
    """How long a resolved 'latest' image version is reused (seconds). Env: SCALESET_IMAGE_IMAGE_CACHE_SECONDS."""
    metrics_port: int = 8080
    """Port of the Prometheus metrics endpoint. Env: SCALESET_IMAGE_METRICS_PORT."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all. Env: SCALESET_IMAGE_NAMESPACES (comma-separated)."""
    label_selector: str = ""
    """Only ScaleSetImages matching this label selector (sharding). Env: SCALESET_IMAGE_LABEL_SELECTOR."""

    def __post_init__(self) -> None:
        parsed = urlparse(self.arm_endpoint)
        if parsed.scheme == "http" and parsed.netloc:
            # azure-core's bearer-token policy refuses to send a token over plain http: no request could be made.
            raise SettingsError(
                f"SCALESET_IMAGE_ARM_ENDPOINT {self.arm_endpoint!r} is plain http: https is required "
                "(bearer tokens are sent over TLS only)"
            )
        if parsed.scheme != "https" or not parsed.netloc:
            raise SettingsError(f"SCALESET_IMAGE_ARM_ENDPOINT must be an https:// URL, not {self.arm_endpoint!r}")
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise SettingsError(f"SCALESET_IMAGE_CA_BUNDLE: no such file {self.ca_bundle}")
        for name in ("poll_seconds", "steady_seconds", "retry_after_cap", "max_requeue", "budget_share"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise SettingsError(f"{_ENV[name]} must be a positive number of seconds (or requests), not {value}")
        if not math.isfinite(self.azure_timeout_seconds) or self.azure_timeout_seconds <= self.retry_after_cap:
            raise SettingsError(
                f"{_ENV['azure_timeout_seconds']} must be a number of seconds longer than "
                f"{_ENV['retry_after_cap']} ({self.retry_after_cap:g}), the longest Retry-After waited inside "
                f"one Azure call; not {self.azure_timeout_seconds:g}"
            )
        if not math.isfinite(self.image_cache_seconds) or self.image_cache_seconds < 0:
            raise SettingsError(f"{_ENV['image_cache_seconds']} must be zero or more seconds")
        if not 1 <= self.metrics_port <= 65535:
            raise SettingsError(f"{_ENV['metrics_port']} must be a TCP port from 1 to 65535")

    @property
    def connection_verify(self) -> str | bool:
        return str(self.ca_bundle) if self.ca_bundle else True


_ENV = {
    "arm_endpoint": "SCALESET_IMAGE_ARM_ENDPOINT",
    "arm_scope": "SCALESET_IMAGE_ARM_SCOPE",
    "ca_bundle": "SCALESET_IMAGE_CA_BUNDLE",
    "poll_seconds": "SCALESET_IMAGE_POLL_SECONDS",
    "steady_seconds": "SCALESET_IMAGE_STEADY_SECONDS",
    "retry_after_cap": "SCALESET_IMAGE_RETRY_AFTER_CAP",
    "azure_timeout_seconds": "SCALESET_IMAGE_AZURE_TIMEOUT",
    "max_requeue": "SCALESET_IMAGE_MAX_REQUEUE",
    "budget_share": "SCALESET_IMAGE_BUDGET_SHARE",
    "image_cache_seconds": "SCALESET_IMAGE_IMAGE_CACHE_SECONDS",
    "metrics_port": "SCALESET_IMAGE_METRICS_PORT",
    "namespaces": "SCALESET_IMAGE_NAMESPACES",
    "label_selector": "SCALESET_IMAGE_LABEL_SELECTOR",
}


def _convert(name: str, raw: str) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "float":
            return float(raw)
        if kind == "int":
            return int(raw)
        if kind == "bool":
            if raw.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.strip().lower() in ("true", "1", "yes")
        if name == "ca_bundle":
            return Path(raw) if raw else None
        if name == "namespaces":
            return tuple(n.strip() for n in raw.split(",") if n.strip())
        return raw
    except ValueError:
        raise SettingsError(f"{_ENV[name]}={raw!r} is not a valid {kind}") from None


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, then from explicit overrides (flags), then checked."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, variable in _ENV.items():
        if environ.get(variable, "") != "":
            values[name] = _convert(name, environ[variable])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(Settings(), **values) if values else Settings()
