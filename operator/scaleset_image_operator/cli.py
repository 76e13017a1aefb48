"""The ``scaleset-image`` command (README, "Commands"; docs/architecture.md, "Contracts").

Sub-commands: ``plan`` (dry run of a ScaleSetImage against Azure or the simulator), ``reconcile`` (the rollout
engine on one manifest without Kubernetes, status kept in a file), ``simulator`` (the Azure ARM simulator) and
``demo`` (a rollout against the simulator, shown live). Parsing and wiring only: the work happens in the
modules they call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from . import __version__


def _read_text(path: str) -> str:
    """A person's file (``-``: stdin) as text, or ``InputError`` naming it: missing, a folder, unreadable, not UTF-8."""
    name = "stdin" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder, not a file") from None
    except OSError as error:
        raise InputError(f"{name}: cannot read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{name}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})") from None


def _yaml_documents(path: str) -> list[Any]:
    """Every YAML document of a person's file, or ``InputError`` naming the file and the line and column."""
    text = _read_text(path)
    name = "stdin" if path == "-" else path
    try:
        return list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise InputError(f"{name}: not valid YAML: {where}{error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{name}: not valid YAML: {(str(error).splitlines() or ['?'])[0]}") from None


def _kind(value: Any) -> str:
    kinds = {str: "a string", int: "a number", float: "a number", bool: "true or false", list: "a list"}
    return kinds.get(type(value), type(value).__name__)


def _load_scalesets(path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The images and scale sets of a ``--scalesets`` file, each a mapping, or ``InputError`` naming the entry."""
    documents = [d for d in _yaml_documents(path) if d is not None]
    if len(documents) > 1:
        raise InputError(f"{path}: expected one YAML document, found {len(documents)}")
    document = documents[0] if documents else {}
    if isinstance(document, list):
        sections: dict[str, Any] = {"images": [], "scalesets": document}
    elif isinstance(document, dict):
        unknown = sorted(str(key) for key in document if key not in ("images", "scalesets"))
        if unknown:
            raise InputError(f"{path}: unknown key {unknown[0]!r}: expected 'scalesets' and 'images'")
        sections = {key: document.get(key) or [] for key in ("images", "scalesets")}
    else:
        raise InputError(f"{path}: expected a list of scale sets or a mapping with 'scalesets' and 'images'")
    for key, entries in sections.items():
        if not isinstance(entries, list):
            raise InputError(f"{path}: '{key}' must be a list, not {_kind(entries)}")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise InputError(f"{path}: {key}[{index}] must be a mapping of fields, not {_kind(entry)}")
    return list(sections["images"]), list(sections["scalesets"])


def _check_ca_file(ca_file: str) -> None:
    """The CA file goes into a folder that exists: a typo must not create folders (nor write the CA elsewhere)."""
    if Path(ca_file).is_dir():
        raise InputError(f"--ca-file {ca_file}: is a folder, not a file")
    folder = Path(ca_file).parent
    if not folder.is_dir():
        raise InputError(f"--ca-file {ca_file}: no such folder {folder}")


def _start_failure(args: argparse.Namespace, error: OSError) -> str:
    if error.filename:  # the CA file could not be written (the listening socket is closed again)
        return f"--ca-file {args.ca_file}: cannot write: {error.strerror or error}"
    if error.errno == errno.EADDRINUSE:
        return f"port {args.port} on {args.host} is in use"
    return f"cannot listen on {args.host} port {args.port}: {error.strerror or error}"


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
        _check_ca_file(args.ca_file)
        images, scalesets = _load_scalesets(args.scalesets) if args.scalesets else ([], [])
        entry = ""
        try:
            for index, image in enumerate(images):
                entry = f"images[{index}]"
                simulator.world.catalog.publish(image)
            for index, body in enumerate(scalesets):
                entry = f"scalesets[{index}]"
                simulator.world.create_from_control(body)
        except ArmError as error:
            raise InputError(f"{args.scalesets}: {entry}: {error.message}") from None
    except InputError as error:
        print(f"simulator: {error}", file=sys.stderr)
        return EXIT_INPUT
    try:
        await simulator.start()
    except OSError as error:
        print(f"simulator: {_start_failure(args, error)}", file=sys.stderr)
        return EXIT_INPUT if error.filename else EXIT_ENVIRONMENT
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
    documents = [d for d in _yaml_documents(path) if d]
    chosen = [d for d in documents if isinstance(d, dict) and d.get("kind") == "ScaleSetImage"]
    if len(chosen) != 1:
        name = "stdin" if path == "-" else path
        raise InputError(f"{name}: expected exactly one ScaleSetImage document, found {len(chosen)}")
    return dict(chosen[0])


def _positive_minutes(raw: str) -> float:
    """An argparse type: minutes for an estimate, more than zero (a negative or infinite one estimates nothing)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes, not {raw!r}")
    return value


def _port(raw: str) -> int:
    """An argparse type: a TCP port, 0 for any free one."""
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 0 to 65535 (0 picks a free one), not {raw!r}")
    return value


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
        raise InputError(f"configuration: {error}") from None


EXIT_OK = 0
"""Planned, or nothing to do (plan); the rollout succeeded or was planned (reconcile)."""
EXIT_ENVIRONMENT = 1
"""Azure or Kubernetes could not be reached, or refused the credentials."""
EXIT_INPUT = 2
"""Bad arguments, an unreadable manifest or an invalid spec."""
EXIT_REFUSED = 3
"""The rollout would be refused (plan) or did not succeed (reconcile); the reason is printed."""
ENVIRONMENT_REASONS = frozenset({"AuthFailed"})
"""Degraded reasons that say nothing about the rollout, only about the way to Azure (besides transient ones)."""


class InputError(Exception):
    """A person's input is wrong: said in one line on stderr, exit 2."""


def _validated_manifest(path: str) -> dict[str, Any]:
    """The manifest as the API server would store it (defaults applied), or InputError naming every field the
    API server would refuse: the CLI accepts exactly what ``kubectl apply`` would."""
    from .kube.validation import ManifestValidator

    manifest = _load_manifest(path)
    defaulted, errors = ManifestValidator.from_crd_file().validate(manifest)
    if errors:
        raise InputError(f"{path}: the API server would refuse this ScaleSetImage: " + "; ".join(map(str, errors)))
    return defaulted


def _degraded_reason(status: dict[str, Any]) -> str | None:
    degraded: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Degraded"), {})
    return str(degraded.get("reason")) if degraded.get("status") == "True" else None


def _exit_code(result: Any) -> int:
    """Exit code of a pass the CLI ran: the Degraded reason says whose problem it is."""
    from .core.planner import Phase

    reason = _degraded_reason(result.status)
    if reason == "InvalidSpec":
        return EXIT_INPUT
    if result.result == "transient" or reason in ENVIRONMENT_REASONS:
        return EXIT_ENVIRONMENT
    if result.decision is None:
        # No decision: a problem stopped the pass, or a pass that only awaited the batch in flight (nothing wrong).
        return EXIT_REFUSED if reason else EXIT_OK
    return EXIT_REFUSED if result.decision.phase in (Phase.HALTED, Phase.FAILED) else EXIT_OK


async def _plan(args: argparse.Namespace) -> int:
    import time

    from . import wiring
    from .core.spec import parse_spec
    from .planview import render_plan
    from .reconciler import Reconciler, Resource

    manifest = _validated_manifest(args.file)
    spec_document = {**(manifest.get("spec") or {}), "dryRun": True}
    spec, problems = parse_spec(spec_document)
    if spec is None:
        raise InputError(f"{args.file}: invalid spec: " + "; ".join(str(p) for p in problems))
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
    code = _exit_code(result)
    if result.decision is None or result.observation is None:
        what = "cannot plan" if code == EXIT_ENVIRONMENT else "refused"
        print(f"{what}: {_degraded_reason(result.status)}: {result.status.get('message')}", file=sys.stderr)
        return code
    print(
        render_plan(
            spec,
            result.observation.scale_set,
            result.decision,
            upgrade_seconds=args.upgrade_minutes * 60,
            warmup_seconds=args.health_minutes * 60,
        )
    )
    if code != EXIT_OK:
        print(f"refused: {result.decision.reason}: {result.decision.message}", file=sys.stderr)
    return code


async def _reconcile(args: argparse.Namespace) -> int:
    from . import wiring
    from .engine import LocalEngine, settled
    from .reconciler import PassResult, Reconciler

    manifest = _validated_manifest(args.file)
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
                (lambda r: settled(r) or _exit_code(r) in (EXIT_INPUT, EXIT_REFUSED) or r.result == "degraded")
                if args.until == "settled"
                else lambda r: True,
                timeout=args.timeout,
                on_pass=report,
                max_sleep=settings.poll_seconds,
            )
        except TimeoutError as error:
            print(str(error), file=sys.stderr)
            return 1
        finally:
            await gateway.close()
    code = _exit_code(result)
    if code == EXIT_OK and result.status.get("phase") not in ("Succeeded", "Planned"):
        code = EXIT_REFUSED  # paused or held for approval: not done
    if code != EXIT_OK:
        why = _degraded_reason(result.status) or result.status.get("phase")
        print(f"not done: {why}: {result.status.get('message')}", file=sys.stderr)
    return code


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
        type=_positive_minutes,
        default=5.0,
        help="typical minutes one batch's upgrade takes, for the estimate (default: 5)",
    )
    plan.add_argument(
        "--health-minutes",
        type=_positive_minutes,
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
    sim.add_argument("--port", type=_port, default=8443, help="TCP port, 0 picks a free one (default: 8443)")
    sim.add_argument("--ca-file", default="sim-ca.pem", help="where to write the CA certificate (PEM)")
    sim.add_argument("--scalesets", help="YAML file of scale sets (and images) to create at start")
    sim.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second (default: 1)")
    sim.add_argument("--page-size", type=int, default=100, help="instances per VM list page (default: 100)")
    sim.add_argument(
        "--token-lifetime", type=float, default=3599.0, help="seconds an access token is valid (default: 3599)"
    )
    sim.add_argument("--no-throttling", action="store_true", help="switch Compute's request buckets off")

    demo = commands.add_parser(
        "demo",
        help="roll simulated 5-domain scale sets onto a new image, live: the operator, Automatic mode, a failure",
    )
    demo.add_argument("--instances", type=int, default=15, help="instances in each scale set, at least 5 (default: 15)")
    demo.add_argument("--time-scale", type=float, default=30.0, help="simulator speed (default: 30)")
    demo.add_argument("--plain", action="store_true", help="print one line per change instead of redrawing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _command(parser, args)
    except InputError as error:
        print(f"scaleset-image {args.command}: {error}", file=sys.stderr)
        return EXIT_INPUT


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "simulator":
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_serve(args))
        return 0
    if args.command == "run":
        from .runner import KubernetesConfigError, RunOptions, run

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
        try:
            return asyncio.run(run(settings, options))
        except KubernetesConfigError as error:
            print(f"scaleset-image run: {error}", file=sys.stderr)
            return EXIT_ENVIRONMENT
    if args.command == "plan":
        return asyncio.run(_plan(args))
    if args.command == "reconcile":
        return asyncio.run(_reconcile(args))
    from .demo import UPDATE_DOMAINS, run_demo  # the only other command argparse lets through

    if args.instances < UPDATE_DOMAINS:
        # Every scene draws and counts five update domains; with fewer instances some would be empty, and the
        # failure scene's fault, naming no instance, would fail every instance instead of one domain's.
        parser.error(f"--instances must be at least {UPDATE_DOMAINS}, one per update domain")

    return asyncio.run(
        run_demo(instances=args.instances, time_scale=args.time_scale, live=sys.stdout.isatty() and not args.plain)
    )


if __name__ == "__main__":
    sys.exit(main())
