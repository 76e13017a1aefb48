"""The benchmark's verdicts: each headline figure beside its target (issue #8), as a table and as JSON fields."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    part: str
    metric: str
    measured: str
    target: str
    ok: bool | None
    """None: reported, no target."""

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "MISSED", None: ""}[self.ok]


def _fmt(value: float, digits: int = 2) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def rows(results: Mapping[str, Any]) -> list[Row]:
    """The table's rows for whatever parts ran."""
    table: list[Row] = []
    overhead = results.get("details", {}).get("overhead")
    if overhead:
        targets = {10.0: 1.05, 2.0: 1.15}
        for entry in overhead["byUpgradeSeconds"]:
            t = float(entry["upgradeSeconds"])
            target = targets.get(t)
            table.append(
                Row(
                    "overhead",
                    f"operator time / ideal, T={t:g} s",
                    _fmt(entry["operatorRatio"], 3),
                    f"<= {target}" if target else "",
                    entry["operatorRatio"] <= target if target else None,
                )
            )
            table.append(
                Row("overhead", f"2016 script time / ideal, T={t:g} s", _fmt(entry["baselineRatio"], 3), "", None)
            )
        table.append(
            Row(
                "requests",
                "operator writes per rollout",
                str(results["writes_per_rollout"]),
                f"== {results['min_writes_per_rollout']} (1 + batches)",
                results["writes_per_rollout"] == results["min_writes_per_rollout"],
            )
        )
        table.append(
            Row(
                "requests",
                f"operator reads per rollout (T={overhead['headlineUpgradeSeconds']:g} s)",
                str(results["reads_per_rollout"]),
                f"<= {results['reads_bound_per_rollout']} (3/batch + 1/poll)",
                results["reads_per_rollout"] <= results["reads_bound_per_rollout"],
            )
        )
        table.append(
            Row(
                "requests",
                "2016 script reads / writes per rollout",
                f"{results['baseline_reads_per_rollout']} / {results['baseline_writes_per_rollout']}",
                f"minimum {results['min_reads_per_rollout']} / {results['min_writes_per_rollout']}",
                None,
            )
        )
    fleet = results.get("details", {}).get("fleet")
    if fleet:
        n = fleet["plan"]["scaleSets"]
        table += [
            Row(
                "fleet",
                f"all {n} Ready / one rollout's ideal",
                _fmt(results["fleet_ready_ratio"], 3)
                if fleet["complete"]
                else f"> {_fmt(results['fleet_ready_ratio'], 2)} ({fleet['readyCount']}/{n} Ready, gave up)",
                "<= 1.3",
                fleet["complete"] and results["fleet_ready_ratio"] <= 1.3,
            ),
            Row(
                "fleet",
                "slowest rollout / ideal",
                ("" if fleet["complete"] else "> ") + _fmt(fleet["rolloutSeconds"]["slowestRatio"], 3),
                "",
                None,
            ),
            Row(
                "fleet",
                "operator peak RSS (MiB)",
                _fmt(results["fleet_peak_rss_mb"], 1),
                "<= 300",
                results["fleet_peak_rss_mb"] <= 300,
            ),
            Row(
                "fleet",
                "operator CPU s (rollout / idle)",
                f"{fleet['operator']['cpuSecondsRollout']} / {fleet['operator']['cpuSecondsIdle']}",
                "",
                None,
            ),
            Row(
                "fleet",
                "Kubernetes API requests (rollout / idle per min)",
                f"{fleet['kubernetes']['rolloutRequests']} / {fleet['kubernetes']['idleRequestsPerMinute']}",
                "",
                None,
            ),
            Row("fleet", "Azure 429 answers", str(results["fleet_throttled"]), "== 0", results["fleet_throttled"] == 0),
        ]
        for policy, load in fleet["azure"]["policiesPerSimulatedMinute"].items():
            table.append(
                Row(
                    "fleet",
                    f"{policy} peak / sim. minute",
                    f"{load['peakPerMinute']} ({100 * load['peakShareOfSubscriptionLimit']:.0f}%)",
                    f"limit {load['subscriptionLimitPerMinute']:g}/subscription",
                    None,
                )
            )
        idle = results["idle_reads_per_scaleset_hour"]
        table.append(
            Row(
                "fleet",
                "idle Azure reads per scale set per hour",
                _fmt(idle, 1) if idle is not None else "n/a (none was Ready)",
                "<= 12",
                idle <= 12 if idle is not None else None,
            )
        )
    if "planner_ms_1000" in results or results.get("details", {}).get("planner"):
        planner = results["details"]["planner"]
        table.append(
            Row(
                "planner",
                f"plan() on {planner['instances']} instances, ms (median, worst moment)",
                _fmt(planner["planMs"], 2),
                "< 50",
                planner["planMs"] < 50,
            )
        )
        table.append(Row("planner", "build_status() on the same, ms", _fmt(planner["statusMs"], 2), "", None))
    return table


def render(table: list[Row]) -> str:
    headers = ("part", "metric", "measured", "target", "")
    cells = [headers, *((r.part, r.metric, r.measured, r.target, r.verdict) for r in table)]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def revision(repo: Path) -> dict[str, Any]:
    """The commit measured, and whether the operator's sources differ from it (read-only git)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD"), "operatorChanged": bool(git("status", "--porcelain", "--", "operator"))}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    with contextlib.suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadAverageAtStart": [round(x, 2) for x in os.getloadavg()],
    }
