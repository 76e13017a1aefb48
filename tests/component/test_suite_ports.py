"""The suite runs beside ``make simulator``: every test picks its ports at run time, none binds a fixed one.

``make simulator`` listens on 8443, and a developer runs it while running ``make test``. The suite's simulators
are built by ``simkit.simulator_config`` (the session simulator of tests/conftest.py, the short-lived-token one of
test_simulator_auth.py); with 8443 taken they must still start, and answer.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from component.simkit import RESOURCE_GROUP, simulator_config
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

MAKE_SIMULATOR_PORT = 8443
"""The port of ``make simulator`` (Makefile) and the simulator's own default."""


@contextlib.contextmanager
def something_listening_on(port: int) -> Iterator[None]:
    """127.0.0.1:``port`` is taken while this runs: by a socket of ours, or already by someone else (which is the
    same condition)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
        yield


@pytest.mark.parametrize(
    "overrides",
    [{}, {"time_scale": 1.0, "token_lifetime": 1}],
    ids=["the-session-simulator", "the-short-lived-token-simulator"],
)
def test_the_suites_simulators_start_and_answer_while_something_listens_on_8443(
    tmp_path: Path, overrides: dict[str, float]
) -> None:
    with something_listening_on(MAKE_SIMULATOR_PORT), SimulatorThread(simulator_config(tmp_path, **overrides)) as sim:
        arm_id = SimulatorControl(sim.url, sim.ca_file).create_scale_set(
            subscriptionId="00000000-0000-0000-0000-000000008443", resourceGroup=RESOURCE_GROUP, name="beside"
        )

    assert not sim.url.endswith(f":{MAKE_SIMULATOR_PORT}")
    assert arm_id.endswith("/virtualMachineScaleSets/beside")
