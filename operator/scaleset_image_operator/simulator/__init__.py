"""An HTTPS simulator of the Azure Resource Manager Compute API for VM Scale Sets (docs/simulator.md).

Public surface: ``Simulator`` and ``SimulatorConfig`` (run it in an event loop), ``SimulatorThread`` (run it
on a thread of its own), ``SimulatorControl`` (the ``/_sim`` control API client). The rest is private.
It imports nothing of the operator: the operator reaches it only over HTTPS, like Azure.
"""

from .control import SimulatorControl, SimulatorError
from .server import Simulator, SimulatorConfig, SimulatorThread

__all__ = ["Simulator", "SimulatorConfig", "SimulatorControl", "SimulatorError", "SimulatorThread"]
