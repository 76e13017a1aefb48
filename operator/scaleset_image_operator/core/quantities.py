"""Counts that may be written as percentages, and durations as Kubernetes users write them.

``IntOrPercent`` resolves against a total: batch sizes round up (a 20% batch of 3 instances is 1, never 0),
tolerances round down (10% of 5 unhealthy instances allowed is 0). Durations accept Go's syntax
(``90s``, ``10m``, ``1h30m``, ``250ms``) as ``pauseBetweenBatches: 30s`` does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PERCENT = re.compile(r"([0-9]{1,3})%")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class IntOrPercent:
    value: int
    percent: bool = False

    def of(self, total: int, *, round_up: bool) -> int:
        if not self.percent:
            return self.value
        exact = total * self.value / 100
        return math.ceil(exact) if round_up else math.floor(exact)

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


_LARGEST = 10**9


def shown(raw: object) -> str:
    """A value as an error message may quote it: bounded in length, never failing on huge numbers."""
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= _LARGEST:
        return "a number too large"
    text = repr(raw)
    return text if len(text) <= 80 else text[:80] + "…"


def parse_int_or_percent(raw: object) -> IntOrPercent:
    """``3`` or ``"20%"``; raises ``ValueError`` with a sentence a person can act on."""
    if isinstance(raw, bool):
        raise ValueError('must be a whole number or a percentage such as "20%", not true/false')
    if isinstance(raw, int):
        if raw < 0 or raw >= _LARGEST:
            raise ValueError(f"must be a whole number from 0 to {_LARGEST - 1} (got {shown(raw)})")
        return IntOrPercent(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.isascii() and text.isdigit() and len(text) < 10:
            return IntOrPercent(int(text))
        match = _PERCENT.fullmatch(text)
        if match and int(match.group(1)) <= 100:
            return IntOrPercent(int(match.group(1)), percent=True)
    raise ValueError(f"must be a whole number or a percentage from 0% to 100%, not {shown(raw)}")


def parse_duration(raw: object) -> float:
    """Seconds in a Go-style duration such as ``30s``, ``10m``, ``1h30m`` (a bare number is seconds)."""
    if isinstance(raw, bool):
        raise ValueError('must be a duration such as "30s" or "10m"')
    if isinstance(raw, int | float):
        if raw < 0 or raw >= _LARGEST or math.isnan(raw) or math.isinf(raw):
            raise ValueError(f"must be a non-negative duration below {_LARGEST} seconds, not {shown(raw)}")
        return float(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f'must be a duration such as "30s" or "10m", not {shown(raw)}')
    text = raw.strip()
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        if len(match.group(1)) > 12:
            raise ValueError(f"must be a duration below {_LARGEST} seconds, not {shown(raw)}")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(f'must be a duration such as "30s", "10m" or "1h30m", not {shown(raw)}')
    return total


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of a whole number of seconds (``90`` -> ``1m30s``)."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"
