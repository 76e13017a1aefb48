"""``make bench``: performance benchmarks of the operator (issue #8), printed as a table and written as JSON.

Parts (``--only``, comma-separated; default all):

- ``overhead``: a 5-update-domain scale set whose instances take T real seconds to upgrade (T = 10 and 2), rolled
  by the operator (``kubectl apply`` to ``Ready``) and by the 2016 script (``baseline.py``); time over the ideal,
  where the time goes, and the ARM reads and writes of each (parts 1 and 2 of the issue);
- ``fleet``: one operator rolling ``--fleet-size`` ScaleSetImages at once, then idle (part 3);
- ``planner``: ``core.planner.plan`` on a 1,000-instance scale set (part 4).

Everything runs on the simulator's clock: at ``--time-scale 20`` one real second is 20 simulated seconds, so a
T = 10 s upgrade is a 200-second Azure upgrade. The operator is given its default timing settings (poll 10 s,
steady 300 s, budget 300 requests/min, ...) converted to that clock, so the ratios are those of the defaults on
Azure, except that the operator's own CPU and Kubernetes latencies weigh ``time scale`` times more. 20 is the
fastest clock at which the default poll stays representable: the operator never requeues sooner than 0.5 s.

Run from the repository root: ``python3 -m uv run --frozen python -m tools.bench [--only overhead,planner]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scaleset_image_operator.reconciler import FULL_CHECK_PASSES

from .environment import (
    REPO,
    BenchError,
    Cluster,
    OperatorProcess,
    ReadyWatcher,
    SimulatorProcess,
    scaled_settings,
    work_folder,
)
from .fleet import FleetPlan, run_fleet
from .overhead import OverheadBench, Rollout
from .planner import measure_planner
from .report import machine, render, revision, rows
from .scenario import UPDATE_DOMAINS, warm_up

PARTS = ("overhead", "fleet", "planner")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--output", type=Path, default=REPO / "bench-results.json", help="where to write the JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, audit logs)")
    timing = parser.add_argument_group("operator and simulator timing (simulated seconds unless said otherwise)")
    timing.add_argument("--poll-seconds", type=float, default=10.0, help="operator poll interval (default: 10)")
    timing.add_argument("--pause-seconds", type=float, default=30.0, help="pause between batches (default: 30)")
    one = parser.add_argument_group("overhead")
    one.add_argument("--time-scale", type=float, default=20.0, help="simulated seconds per real second (default: 20)")
    one.add_argument(
        "--upgrade-seconds", default="10,2", help="instance upgrade times T in REAL seconds, comma-separated (10,2)"
    )
    one.add_argument("--instances", type=int, default=20, help="instances of the 5-domain scale set (default: 20)")
    one.add_argument("--repeats", type=int, default=3, help="rollouts per T and driver; medians are reported (3)")
    one.add_argument(
        "--baseline-poll-seconds", type=float, default=5.0, help="the 2016 script's instance-view interval (5)"
    )
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--fleet-size", type=int, default=200, help="scale sets and ScaleSetImages (default: 200)")
    fleet.add_argument("--fleet-instances", type=int, default=20, help="instances per scale set (default: 20)")
    fleet.add_argument("--fleet-subscriptions", type=int, default=1, help="subscriptions they spread over (default: 1)")
    fleet.add_argument("--fleet-time-scale", type=float, default=10.0, help="simulator speed for the fleet (10)")
    fleet.add_argument(
        "--fleet-upgrade-seconds", type=float, default=300.0, help="instance upgrade time, simulated (default: 300)"
    )
    fleet.add_argument(
        "--idle-seconds",
        type=float,
        default=0.0,
        help="REAL seconds of the idle window (default: one cycle of steady checks, 3 intervals)",
    )
    fleet.add_argument(
        "--fleet-timeout-ratio", type=float, default=4.0, help="give up waiting after this many ideal rollouts (4)"
    )
    plan = parser.add_argument_group("planner")
    plan.add_argument("--planner-instances", type=int, default=1000, help="instances (default: 1000)")
    plan.add_argument("--planner-calls", type=int, default=300, help="timed calls per moment (default: 300)")
    return parser


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _summary(rollout: Rollout) -> str:
    return f"{rollout.seconds:.2f} s, {rollout.ratio:.3f} x ideal, {rollout.requests.read_total} reads"


def _median_rollout(runs: list[Rollout]) -> Rollout:
    return sorted(runs, key=lambda r: r.ratio)[len(runs) // 2]


def _overhead(args: argparse.Namespace, cluster: Cluster, folder: Path, watcher: ReadyWatcher) -> dict[str, Any]:
    scale = args.time_scale
    t_values = [float(t) for t in args.upgrade_seconds.split(",") if t.strip()]
    settings = scaled_settings(scale, args.poll_seconds)
    with (
        SimulatorProcess(folder / "overhead", scale) as simulator,
        OperatorProcess(cluster, simulator, settings, "overhead") as operator,
    ):
        _log(f"overhead: operator warm-up rollout took {warm_up(cluster, simulator, operator, watcher):.1f} s")
        bench = OverheadBench(
            cluster,
            simulator,
            operator,
            watcher,
            capacity=args.instances,
            pause_seconds=args.pause_seconds / scale,
            baseline_poll_seconds=args.baseline_poll_seconds / scale,
        )
        by_t = []
        for t in t_values:
            operator_runs, baseline_runs = [], []
            for _ in range(args.repeats):
                operator_runs.append(bench.operator_rollout(t))
                _log(f"overhead: T={t:g} s operator: {_summary(operator_runs[-1])}")
                baseline_runs.append(bench.baseline_rollout(t))
                _log(f"overhead: T={t:g} s 2016 script: {_summary(baseline_runs[-1])}")
            op, base = _median_rollout(operator_runs), _median_rollout(baseline_runs)
            by_t.append(
                {
                    "upgradeSeconds": t,
                    "idealSeconds": round(op.ideal, 3),
                    "operatorRatio": round(op.ratio, 4),
                    "baselineRatio": round(base.ratio, 4),
                    "operatorRatios": [round(r.ratio, 4) for r in operator_runs],
                    "baselineRatios": [round(r.ratio, 4) for r in baseline_runs],
                    "operator": op.as_dict(),
                    "baseline": base.as_dict(),
                }
            )
    return {
        "timeScale": scale,
        "instances": args.instances,
        "updateDomains": UPDATE_DOMAINS,
        "repeats": args.repeats,
        "operatorSettings": settings,
        "baselinePollSeconds": round(args.baseline_poll_seconds / scale, 4),
        "headlineUpgradeSeconds": max(t_values),
        "byUpgradeSeconds": by_t,
    }


def _overhead_fields(details: dict[str, Any], poll_real: float) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for entry in details["byUpgradeSeconds"]:
        tag = f"t{entry['upgradeSeconds']:g}".replace(".", "_")
        fields[f"overhead_ratio_{tag}"] = entry["operatorRatio"]
        fields[f"baseline_ratio_{tag}"] = entry["baselineRatio"]
        fields[f"reads_per_rollout_{tag}"] = entry["operator"]["requests"]["reads"]
    headline = next(e for e in details["byUpgradeSeconds"] if e["upgradeSeconds"] == details["headlineUpgradeSeconds"])
    operator, baseline = headline["operator"], headline["baseline"]
    batches = int(operator["batches"])
    fields.update(
        {
            "writes_per_rollout": max(e["operator"]["requests"]["writes"] for e in details["byUpgradeSeconds"]),
            "min_writes_per_rollout": 1 + batches,
            "reads_per_rollout": operator["requests"]["reads"],
            "reads_bound_per_rollout": int(3 * batches + operator["seconds"] / poll_real),
            "min_reads_per_rollout": 2 * (1 + batches),
            "baseline_reads_per_rollout": baseline["requests"]["reads"],
            "baseline_writes_per_rollout": baseline["requests"]["writes"],
        }
    )
    return fields


def _fleet(args: argparse.Namespace, cluster: Cluster, folder: Path, watcher: ReadyWatcher) -> dict[str, Any]:
    scale = args.fleet_time_scale
    settings = scaled_settings(scale, args.poll_seconds)
    steady = float(settings["SCALESET_IMAGE_STEADY_SECONDS"])
    idle = args.idle_seconds or FULL_CHECK_PASSES * steady
    if idle < steady:
        _log(f"fleet: the idle window ({idle:g} s) is shorter than one steady interval ({steady:g} s): expect 0 reads")
    plan = FleetPlan(
        size=args.fleet_size,
        instances=args.fleet_instances,
        subscriptions=args.fleet_subscriptions,
        time_scale=scale,
        upgrade_seconds=args.fleet_upgrade_seconds,
        pause_seconds=args.pause_seconds,
        idle_seconds=idle,
        timeout_ratio=args.fleet_timeout_ratio,
    )
    with (
        SimulatorProcess(folder / "fleet", scale) as simulator,
        OperatorProcess(cluster, simulator, settings, "fleet") as operator,
    ):
        _log(f"fleet: operator warm-up rollout took {warm_up(cluster, simulator, operator, watcher):.1f} s")
        return run_fleet(plan, cluster, simulator, operator, watcher, log=_log)


def _fleet_fields(details: dict[str, Any]) -> dict[str, Any]:
    return {
        "fleet_ready_ratio": details["readyRatio"],
        "fleet_complete": details["complete"],
        "fleet_slowest_ratio": details["rolloutSeconds"]["slowestRatio"],
        "fleet_peak_rss_mb": details["operator"]["peakRssMb"],
        "fleet_cpu_seconds": details["operator"]["cpuSecondsRollout"],
        "fleet_throttled": details["azure"]["throttled"],
        "idle_reads_per_scaleset_hour": details["azure"]["idleReadsPerScaleSetHour"],
    }


@contextlib.contextmanager
def _part(results: dict[str, Any], part: str) -> Iterator[None]:
    """A part that fails (a process died, a rollout never finished) is recorded; the others still run."""
    try:
        yield
    except BenchError as error:
        _log(f"{part}: failed: {error}")
        results["errors"][part] = str(error)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        _parser().error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    for name in ("repeats", "instances", "fleet_size", "fleet_instances", "fleet_subscriptions", "planner_calls"):
        if getattr(args, name) < 1:
            _parser().error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("time_scale", "fleet_time_scale", "poll_seconds", "fleet_upgrade_seconds", "fleet_timeout_ratio"):
        if not getattr(args, name) > 0:
            _parser().error(f"--{name.replace('_', '-')} must be positive")
    if args.planner_instances < 5 or args.pause_seconds < 0 or args.idle_seconds < 0:
        _parser().error("--planner-instances must be at least 5; --pause-seconds and --idle-seconds not negative")
    try:
        t_values = [float(t) for t in args.upgrade_seconds.split(",") if t.strip()]
    except ValueError:
        t_values = []
    if not t_values or min(t_values) <= 0:
        _parser().error(f"--upgrade-seconds takes positive numbers separated by commas, not {args.upgrade_seconds!r}")
    started = time.time()
    results: dict[str, Any] = {
        "parts": parts,
        "command": "python -m tools.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "revision": revision(REPO),
        "startedAt": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "details": {},
        "errors": {},
    }
    if "planner" in parts:
        _log(f"planner: {args.planner_calls} calls per moment on {args.planner_instances} instances")
        planner = measure_planner(args.planner_instances, args.planner_calls)
        results["details"]["planner"] = planner
        results[f"planner_ms_{args.planner_instances}"] = planner["planMs"]
    if "overhead" in parts or "fleet" in parts:
        with work_folder(args.keep) as folder:
            if args.keep:
                _log(f"work folder (kept): {folder}")
            (folder / "overhead").mkdir()
            (folder / "fleet").mkdir()
            with (
                Cluster(folder) as cluster,
                ReadyWatcher(cluster.control_plane.kubeconfig, folder / "kubectl-watch.log") as watcher,
            ):
                _log(f"control plane at {cluster.control_plane.server}")
                if "overhead" in parts:
                    with _part(results, "overhead"):
                        details = _overhead(args, cluster, folder, watcher)
                        results["details"]["overhead"] = details
                        results.update(_overhead_fields(details, args.poll_seconds / args.time_scale))
                if "fleet" in parts:
                    with _part(results, "fleet"):
                        details = _fleet(args, cluster, folder, watcher)
                        results["details"]["fleet"] = details
                        results.update(_fleet_fields(details))
    results["machine"]["loadAverageAtEnd"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.time() - started, 1)
    table = rows(results)
    results["verdicts"] = {f"{r.part}: {r.metric}": r.verdict for r in table if r.ok is not None}
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(table))
    print(f"\nwritten to {args.output} in {results['seconds']:.0f} s")
    for part, error in results["errors"].items():
        print(f"{part} did not finish: {error}", file=sys.stderr)
    return 1 if results["errors"] else 0
