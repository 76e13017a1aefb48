"""The ``scaleset-image`` command.

Sub-commands so far: ``simulator`` (the Azure ARM simulator, DESIGN.md section 6) and ``demo`` (a rollout
against the simulator, shown live). Parsing and wiring only: the work happens in the modules they call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from . import __version__


def _load_scalesets(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    document = yaml.safe_load(path.read_text()) or {}
    if isinstance(document, list):
        return [], document
    if not isinstance(document, dict):
        raise SystemExit(f"{path}: expected a list of scale sets or a mapping with 'scalesets' and 'images'")
    return list(document.get("images") or []), list(document.get("scalesets") or [])


async def _serve(args: argparse.Namespace) -> int:
    from .simulator import Simulator, SimulatorConfig
    from .simulator.errors import ArmError

    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        ca_file=Path(args.ca_file),
        time_scale=args.time_scale,
        page_size=args.page_size,
        token_lifetime=args.token_lifetime,
        throttling=not args.no_throttling,
    )
    simulator = Simulator(config)
    try:
        images, scalesets = _load_scalesets(Path(args.scalesets)) if args.scalesets else ([], [])
        for image in images:
            simulator.world.catalog.publish(image)
        for body in scalesets:
            simulator.world.create_from_control(body)
    except ArmError as error:
        print(f"simulator: {args.scalesets}: {error.message}", file=sys.stderr)
        return 2
    await simulator.start()
    print(
        f"simulator: listening on {simulator.url} (CA: {config.ca_file}, time scale {config.time_scale:g}, "
        f"{len(simulator.world.scale_sets)} scale sets)",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await simulator.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaleset-image",
        description=("Roll Azure VM Scale Sets onto a new OS image, one update domain at a time."),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("simulator", help="run the Azure Resource Manager simulator (HTTPS)")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8443, help="TCP port, 0 picks a free one (default: 8443)")
    sim.add_argument("--ca-file", default="sim-ca.pem", help="where to write the CA certificate (PEM)")
    sim.add_argument("--scalesets", help="YAML file of scale sets (and images) to create at start")
    sim.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second (default: 1)")
    sim.add_argument("--page-size", type=int, default=100, help="instances per VM list page (default: 100)")
    sim.add_argument(
        "--token-lifetime", type=float, default=3599.0, help="seconds an access token is valid (default: 3599)"
    )
    sim.add_argument("--no-throttling", action="store_true", help="switch Compute's request buckets off")

    demo = commands.add_parser("demo", help="roll a simulated 5-domain scale set onto a new image, live")
    demo.add_argument("--instances", type=int, default=15, help="instances in the scale set (default: 15)")
    demo.add_argument("--time-scale", type=float, default=30.0, help="simulator speed (default: 30)")
    demo.add_argument("--plain", action="store_true", help="print one line per change instead of redrawing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "simulator":
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_serve(args))
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return asyncio.run(
            run_demo(instances=args.instances, time_scale=args.time_scale, live=sys.stdout.isatty() and not args.plain)
        )
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
