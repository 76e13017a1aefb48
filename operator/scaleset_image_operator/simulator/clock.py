"""The simulator's clock: simulated seconds run ``time_scale`` times faster than real ones.

Everything that takes time in the simulated Azure (instance upgrades, health warm-up, throttling
buckets, ``Retry-After``) is measured in simulated seconds. Changing the scale keeps simulated time
continuous. The real time source is injected so that unit tests can drive it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class SimClock:
    def __init__(
        self,
        time_scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time scale must be positive")
        self._monotonic = monotonic
        self._wall = wall
        self._scale = time_scale
        self._real_base = monotonic()
        self._sim_base = 0.0

    @property
    def time_scale(self) -> float:
        return self._scale

    def set_time_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time scale must be positive")
        now = self.now()
        self._real_base = self._monotonic()
        self._sim_base = now
        self._scale = time_scale

    def now(self) -> float:
        """Simulated seconds since the simulator started."""
        return self._sim_base + (self._monotonic() - self._real_base) * self._scale

    def real_seconds(self, simulated: float) -> float:
        """How long ``simulated`` seconds take in real time at the current scale."""
        return simulated / self._scale

    def wall_time(self, sim_time: float) -> datetime:
        """The wall-clock moment a simulated time corresponds to (for timestamps in answers)."""
        return datetime.fromtimestamp(self._wall() + (sim_time - self.now()) / self._scale, UTC)


def iso(moment: datetime) -> str:
    """ARM's timestamp format: seven fractional digits and an explicit offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"
