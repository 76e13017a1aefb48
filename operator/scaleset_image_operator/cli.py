"""The ``scaleset-image`` command (DESIGN.md section 9).

Sub-commands: ``plan`` (dry run of a ScaleSetImage against Azure or the simulator), ``reconcile`` (the rollout
engine on one manifest without Kubernetes, status kept in a file), ``simulator`` (the Azure ARM simulator) and
``demo`` (a rollout against the simulator, shown live). Parsing and wiring only: the work happens in the
modules they call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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


def _load_manifest(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    documents = [d for d in yaml.safe_load_all(text) if d]
    chosen = [d for d in documents if isinstance(d, dict) and d.get("kind") == "ScaleSetImage"]
    if len(chosen) != 1:
        raise SystemExit(f"{path}: expected exactly one ScaleSetImage document, found {len(chosen)}")
    return dict(chosen[0])


def _settings(args: argparse.Namespace, **more: Any) -> Any:
    from .settings import SettingsError, from_env

    try:
        return from_env(
            arm_endpoint=args.arm_endpoint,
            ca_bundle=Path(args.ca_bundle) if args.ca_bundle else None,
            poll_seconds=args.poll_seconds,
            **more,
        )
    except SettingsError as error:
        raise SystemExit(f"configuration: {error}") from None


async def _plan(args: argparse.Namespace) -> int:
    import time

    from . import wiring
    from .core.spec import parse_spec
    from .planview import render_plan
    from .reconciler import Reconciler, Resource

    manifest = _load_manifest(args.file)
    spec_document = {**(manifest.get("spec") or {}), "dryRun": True}
    spec, problems = parse_spec(spec_document)
    if spec is None:
        print("invalid spec:\n" + "\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 2
    settings = _settings(args)
    async with wiring.credential(settings) as credential:
        gateway = wiring.gateway(settings, credential)
        try:
            reconciler = Reconciler(gateway, settings, time.time)
            metadata = manifest.get("metadata") or {}
            result = await reconciler.reconcile(
                Resource(
                    str(metadata.get("namespace") or "default"), str(metadata.get("name") or ""), 1, spec_document, {}
                )
            )
        finally:
            await gateway.close()
    if result.decision is None or result.observation is None:
        print(f"cannot plan: {result.status.get('message')}", file=sys.stderr)
        return 1
    print(
        render_plan(
            spec,
            result.observation.scale_set,
            result.decision,
            upgrade_seconds=args.upgrade_minutes * 60,
            warmup_seconds=args.health_minutes * 60,
        )
    )
    return 0


async def _reconcile(args: argparse.Namespace) -> int:
    from . import wiring
    from .engine import LocalEngine, settled
    from .reconciler import PassResult, Reconciler

    manifest = _load_manifest(args.file)
    settings = _settings(args)

    def report(result: PassResult) -> None:
        status = result.status
        counts = status.get("instances") or {}
        print(
            f"{status.get('phase', '?'):<13} {counts.get('upgraded', 0)}/{counts.get('total', 0)} "
            f"{status.get('message', '')}",
            flush=True,
        )

    async with wiring.credential(settings) as credential:
        gateway = wiring.gateway(settings, credential)
        try:
            import time

            engine = LocalEngine(
                Reconciler(gateway, settings, time.time), manifest, Path(args.status_file) if args.status_file else None
            )
            result = await engine.run(
                settled if args.until == "settled" else lambda r: True,
                timeout=args.timeout,
                on_pass=report,
                max_sleep=settings.poll_seconds,
            )
        except TimeoutError as error:
            print(str(error), file=sys.stderr)
            return 1
        finally:
            await gateway.close()
    return 0 if result.status.get("phase") in ("Succeeded", "Planned") else 3


def _azure_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm-endpoint", help="Azure Resource Manager URL (env SCALESET_IMAGE_ARM_ENDPOINT)")
    parser.add_argument("--ca-bundle", help="extra trusted CA file, PEM (env SCALESET_IMAGE_CA_BUNDLE)")
    parser.add_argument("--poll-seconds", type=float, help="seconds between passes (env SCALESET_IMAGE_POLL_SECONDS)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaleset-image",
        description=("Roll Azure VM Scale Sets onto a new OS image, one update domain at a time."),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator (kopf) against the cluster in the kubeconfig")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=None,
        help="watch this namespace (repeatable; default: all, or env SCALESET_IMAGE_NAMESPACES)",
    )
    run.add_argument(
        "--label-selector",
        help="only ScaleSetImages with these labels, e.g. shard=a (env SCALESET_IMAGE_LABEL_SELECTOR)",
    )
    run.add_argument("--health-port", type=int, default=8081, help="liveness endpoint port, /healthz (default 8081)")
    run.add_argument("--no-leader-election", action="store_true", help="run without a Lease (one replica only)")
    run.add_argument("--lease-namespace", default="", help="namespace of the leader Lease (default: POD_NAMESPACE)")
    run.add_argument("--lease-name", default="scaleset-image-operator", help="name of the leader Lease")
    run.add_argument("--identity", default="", help="this replica's identity in the Lease (default: host-pid)")
    run.add_argument("--kubeconfig", default="", help="kubeconfig file (default: as kubectl finds it, or in-cluster)")
    run.add_argument("-v", "--verbose", action="store_true", help="log more")
    run.add_argument(
        "--log-format",
        choices=("plain", "json"),
        default=os.environ.get("SCALESET_IMAGE_LOG_FORMAT", "plain"),
        help="plain text, or one JSON object per line with namespace/name/reason/batch/domains fields "
        "(env SCALESET_IMAGE_LOG_FORMAT; default plain)",
    )
    _azure_flags(run)

    plan = commands.add_parser("plan", help="show the rollout a ScaleSetImage would make; changes nothing")
    plan.add_argument("-f", "--file", required=True, help="ScaleSetImage manifest (YAML), or - for stdin")
    plan.add_argument(
        "--upgrade-minutes",
        type=float,
        default=5.0,
        help="typical minutes one batch's upgrade takes, for the estimate (default: 5)",
    )
    plan.add_argument(
        "--health-minutes",
        type=float,
        default=1.0,
        help="typical minutes until upgraded instances report healthy (default: 1)",
    )
    _azure_flags(plan)

    rec = commands.add_parser("reconcile", help="run the rollout engine on one manifest without Kubernetes")
    rec.add_argument("-f", "--file", required=True, help="ScaleSetImage manifest (YAML), or - for stdin")
    rec.add_argument("--status-file", help="JSON file holding the status between passes and restarts")
    rec.add_argument(
        "--until",
        choices=["settled", "once"],
        default="settled",
        help="stop when Ready/halted/paused (default) or after one pass",
    )
    rec.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    _azure_flags(rec)

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
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "simulator":
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_serve(args))
        return 0
    if args.command == "run":
        from .runner import RunOptions, run

        if args.log_format not in ("plain", "json"):
            parser.error(f"SCALESET_IMAGE_LOG_FORMAT must be plain or json, not {args.log_format!r}")

        settings = _settings(
            args, namespaces=tuple(args.namespace) if args.namespace else None, label_selector=args.label_selector
        )
        options = RunOptions(
            health_port=args.health_port,
            leader_election=not args.no_leader_election,
            lease_namespace=args.lease_namespace,
            lease_name=args.lease_name,
            identity=args.identity,
            kubeconfig=args.kubeconfig,
            verbose=args.verbose,
            log_format=args.log_format,
        )
        return asyncio.run(run(settings, options))
    if args.command == "plan":
        return asyncio.run(_plan(args))
    if args.command == "reconcile":
        return asyncio.run(_reconcile(args))
    if args.command == "demo":
        from .demo import run_demo

        return asyncio.run(
            run_demo(instances=args.instances, time_scale=args.time_scale, live=sys.stdout.isatty() and not args.plain)
        )
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
