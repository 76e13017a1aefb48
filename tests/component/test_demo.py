"""``scaleset-image demo``: what a person watching it sees, checked against what the simulator recorded.

The demo runs twice, side by side, at twice its usual speed: in-process on a simulator of this module's own
(``show_demo``, 80 columns), so its output can be held against that simulator's stats and audit; and as the command a
person runs (``scaleset-image demo --plain``) with ``COLUMNS=200``, as ``make demo`` runs it when its output is not a
terminal. The demo is the one place that creates its fixed-name scale sets, so each run has a simulator of its own.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from component.simkit import requests_about, simulator_config
from scaleset_image_operator.demo import API, AUTO, WEB, DemoOutcome, Screen, failing_instances, show_demo
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

pytestmark = pytest.mark.slow

TIME_SCALE = 60.0
"""Twice ``make demo``'s speed: an upgrade takes 1 s, long enough for a frame to catch every domain of the
Automatic scale set upgrading at once (the first instance list is read right after the PATCH)."""
FRAME_HEADER = re.compile(r"^   (?P<name>vmss-\w+)   (?P<what>.+?)   update domains upgrading now: (?P<now>\d+)$")


@dataclass(frozen=True)
class Frame:
    name: str
    what: str
    upgrading_now: int
    rows: dict[int, list[str]]
    after: list[str]
    """The lines after the grid up to the next frame or heading: the progress bar and the status message."""


@dataclass(frozen=True)
class InProcess:
    lines: list[str]
    outcome: DemoOutcome
    stats: dict[str, Any]
    audit: list[dict[str, Any]]


@dataclass(frozen=True)
class Command:
    lines: list[str]
    returncode: int
    stderr: str


@dataclass(frozen=True)
class Runs:
    in_process: InProcess
    command: Command


def scaleset_image() -> str:
    return str(Path(sys.executable).parent / "scaleset-image")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    environment = {**os.environ, "COLUMNS": "200"}
    command = subprocess.Popen(
        [scaleset_image(), "demo", "--plain", "--time-scale", f"{TIME_SCALE:g}"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        config = simulator_config(tmp_path_factory.mktemp("demo-simulator"), time_scale=TIME_SCALE)
        with SimulatorThread(config) as simulator:
            control = SimulatorControl(simulator.url, simulator.ca_file)
            out = io.StringIO()
            outcome = asyncio.run(show_demo(simulator, control, Screen(out, live=False, width=lambda: 80)))
            in_process = InProcess(out.getvalue().splitlines(), outcome, control.stats(), control.audit())
        stdout, stderr = command.communicate(timeout=240)
    finally:
        if command.poll() is None:
            command.kill()
            command.communicate()
    return Runs(in_process, Command(stdout.splitlines(), command.returncode, stderr))


def frames(lines: list[str]) -> list[Frame]:
    """Every grid the output drew, in order."""
    found: list[Frame] = []
    index = 0
    while index < len(lines):
        header = FRAME_HEADER.match(lines[index])
        index += 1
        if header is None:
            continue
        rows: dict[int, list[str]] = {}
        while index < len(lines) and (row := re.match(r"^  UD (\d+)\s+(.*)$", lines[index])):
            rows[int(row.group(1))] = row.group(2).split()
            index += 1
        after = []
        while index < len(lines) and re.match(r"^  (?! \S)", lines[index]):  # events and notes are indented 3
            after.append(lines[index])
            index += 1
        found.append(Frame(header["name"], header["what"], int(header["now"]), rows, after))
    return found


def of(name: str, drawn: list[Frame]) -> list[Frame]:
    return [frame for frame in drawn if frame.name == name]


def request_tally(lines: list[str]) -> dict[str, dict[str, int]]:
    """The summary's ``ARM requests`` section, continuation lines joined: scale set -> {operation: count}, each
    line's total checked against its parts."""
    start = next(i for i, line in enumerate(lines) if line.startswith("  ARM requests: "))
    entries: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("  ("):
            break
        if re.match(r"^  \S", line):
            entries.append(line.strip())
        else:
            entries[-1] += " " + line.strip()
    tally = {}
    for entry in entries:
        parsed = re.fullmatch(r"(.+?)\s+(\d+)\s+(.*)", entry)
        assert parsed is not None, entry
        name, total, operations = parsed.groups()
        counted = {op: int(n) for op, n in re.findall(r"(\w+) (\d+)", operations)}
        assert sum(counted.values()) == int(total), entry
        tally[name] = counted
    return tally


def arm_id(stats: dict[str, Any], name: str) -> str:
    return next(k for k in stats["scaleSets"] if k.lower().endswith(f"/{name}"))


def test_the_operators_rollout_is_drawn_as_a_grid_with_never_more_than_one_domain_upgrading(runs: Runs) -> None:
    web = of(WEB, frames(runs.in_process.lines))

    assert web, "no grid of the operator's rollout"
    assert all(sorted(frame.rows) == [0, 1, 2, 3, 4] for frame in web)
    assert all(len(cells) == 3 for frame in web for cells in frame.rows.values())
    assert max(frame.upgrading_now for frame in web) == 1
    assert max(sum("▒" in cells for cells in frame.rows.values()) for frame in web) == 1
    assert "phase Succeeded" in web[-1].what
    assert all(cell == "█" for cells in web[-1].rows.values() for cell in cells)


def test_the_automatic_contrast_is_drawn_as_a_grid_with_every_domain_upgrading_at_once(runs: Runs) -> None:
    automatic = of(AUTO, frames(runs.in_process.lines))

    assert automatic, "no grid of the Automatic scale set"
    at_once = [frame for frame in automatic if frame.upgrading_now == 5]
    assert at_once, f"most domains upgrading in one frame: {max(f.upgrading_now for f in automatic)}"
    assert all(any(cell == "▒" for cell in cells) for cells in at_once[0].rows.values())
    assert all(cell == "█" for cells in automatic[-1].rows.values() for cell in cells)
    assert runs.in_process.outcome.automatic_domains == 5


def test_the_failure_scene_ends_halted_with_the_failed_domain_crossed_and_its_instances_named(runs: Runs) -> None:
    failed = [f"{API}_{i}" for i in failing_instances(15)]

    last = of(API, frames(runs.in_process.lines))[-1]

    assert "phase Halted" in last.what
    assert last.rows[0] == ["█"] * 3
    assert last.rows[1] == ["✗"] * 3
    assert all(last.rows[domain] == ["·"] * 3 for domain in (2, 3, 4))
    message = " ".join(last.after)
    assert all(name in message for name in failed), message
    summary = next(line for line in runs.in_process.lines if line.startswith(f"  {API} "))
    assert "Halted (UpgradeFailed)" in summary
    assert runs.in_process.outcome.api.phase == "Halted"


def test_every_line_fits_80_columns(runs: Runs) -> None:
    too_wide = [line for line in runs.in_process.lines if len(line) > 80]

    assert too_wide == []


def test_the_command_fills_the_200_columns_of_COLUMNS_and_no_more(runs: Runs) -> None:
    command = runs.command

    assert command.returncode == 0, command.stderr[-3000:]
    assert "phase Halted" in "\n".join(command.lines)
    assert max(len(line) for line in command.lines) <= 200
    assert max(len(line) for line in command.lines) > 110, "the lines are cut short of the width"


def test_each_scale_sets_requests_are_the_simulators_count_for_it_and_its_operations(runs: Runs) -> None:
    stats, audit = runs.in_process.stats, runs.in_process.audit

    printed = request_tally(runs.in_process.lines)

    assert list(printed) == [WEB, AUTO, API, "no scale set"]
    for name in (WEB, AUTO, API):
        assert printed[name] == stats["scaleSets"][arm_id(stats, name)]["requests"], name
        assert printed[name] == requests_about(audit, arm_id(stats, name)), name
    assert sum(sum(counted.values()) for counted in printed.values()) == sum(stats["requests"].values())
    assert printed[WEB]["VirtualMachineScaleSets_Update"] == 1
    assert printed[AUTO]["VirtualMachineScaleSets_Update"] == 1
    assert printed[API]["VirtualMachineScaleSets_UpdateInstances"] == 2
