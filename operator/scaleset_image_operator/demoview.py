"""What ``scaleset-image demo`` draws: the domains x instances grid, the progress bar, the per-scale-set request
tally, every line fitted to the terminal's width.

Pure rendering (text in, lines out); ``demo`` does the I/O. Widths are counted in characters shown: colour codes
are added around single cells only, after the width is settled, so a coloured line is as wide as a plain one.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from .core.images import Image
from .core.observation import ScaleSetView
from .core.spec import HealthMode
from .core.status import instance_state

CELLS = {
    "pending": ("·", "\033[2m"),
    "upgrading": ("▒", "\033[33m"),
    "upgraded": ("█", "\033[32m"),
    "failed": ("✗", "\033[31m"),
    "unhealthy": ("✗", "\033[31m"),
}
LEGEND = "legend: · old image   ▒ upgrading or warming up   █ new image, healthy   ✗ failed or unhealthy"
NARROWEST = 40
"""Below this the lines would be mostly indentation: narrower terminals get lines this wide (and wrap them)."""


def usable(width: int) -> int:
    return max(NARROWEST, width)


def wrap(text: str, width: int, hang: int = 2) -> list[str]:
    """``text`` cut at spaces into lines of at most ``width`` characters; its leading spaces indent every line, and
    continuation lines ``hang`` more, or less where the longest word (an image name) would not fit after it: a word
    is cut only when it is wider than the line itself."""
    width = usable(width)
    lead = text[: len(text) - len(text.lstrip(" "))]
    longest = max((len(word) for word in text.split()), default=0)
    more = " " * max(0, min(hang, width // 2, width - len(lead) - longest))
    return textwrap.wrap(
        text.strip(" "),
        width=width,
        initial_indent=lead,
        subsequent_indent=lead + more,
        break_on_hyphens=False,
    ) or [""]


def domain_states(view: ScaleSetView, target: Image) -> dict[int, list[str]]:
    """Each update domain's instances (in the order Azure lists them), as the operator judges them."""
    rows: dict[int, list[str]] = {}
    for instance in view.instances:
        rows.setdefault(instance.update_domain or 0, []).append(instance_state(instance, target, HealthMode.AUTO))
    return dict(sorted(rows.items()))


def upgrading_domains(view: ScaleSetView, target: Image) -> int:
    """How many update domains have an instance upgrading or warming up right now."""
    return sum(1 for states in domain_states(view, target).values() if "upgrading" in states)


def grid(view: ScaleSetView, target: Image, width: int, color: bool) -> list[str]:
    """One row per update domain, one cell per instance (the vmsseditor heat map); a domain with more instances
    than the width holds goes on in continuation rows under its first cell."""
    lines = []
    for domain, states in domain_states(view, target).items():
        label = f"  UD {domain:<3}"
        per_row = max(1, (usable(width) - len(label) + 1) // 2)
        for start in range(0, len(states), per_row):
            cells = []
            for state in states[start : start + per_row]:
                glyph, ansi = CELLS[state]
                cells.append(f"{ansi}{glyph}\033[0m" if color else glyph)
            lines.append(f"{label if start == 0 else ' ' * len(label)}{' '.join(cells)}")
    return lines


def progress_bar(done: int, total: int, width: int) -> str:
    text = f" {done}/{total} on the new image and healthy"
    if len(text) + 14 > usable(width):
        text = f" {done}/{total} upgraded"
    bar = max(10, min(30, usable(width) - len(text) - 4))
    filled = round(bar * done / max(1, total))
    return f"  [{'#' * filled}{'-' * (bar - filled)}]{text}"


def request_tally(stats: Mapping[str, Any], names: Mapping[str, str]) -> list[tuple[str, dict[str, int]]]:
    """ARM requests by scale set from the simulator's ``/_sim/stats``: ``names`` maps each scale set's ARM id to how
    it is shown, in the order given; what no scale set owns (image version lists, say) comes last as "no scale set".
    """
    by_scale_set = {str(k).lower(): v for k, v in stats["scaleSets"].items()}
    rest = {str(k): int(v) for k, v in stats["requests"].items()}
    tally = []
    for arm_id, name in names.items():
        counted = {str(k): int(v) for k, v in by_scale_set[arm_id.lower()].get("requests", {}).items()}
        for operation, count in counted.items():
            rest[operation] = rest.get(operation, 0) - count
        tally.append((name, counted))
    others = {operation: count for operation, count in rest.items() if count}
    if others:
        tally.append(("no scale set", others))
    return tally


def request_lines(tally: list[tuple[str, dict[str, int]]], width: int) -> list[str]:
    """``ARM requests  N in all``, then per scale set its total and its requests by REST operation."""
    total = sum(sum(counted.values()) for _, counted in tally)
    label = max((len(name) for name, _ in tally), default=0)
    digits = len(str(total))
    lines = [f"  ARM requests: {total}, by scale set and REST operation"]
    for name, counted in tally:
        operations = ", ".join(f"{operation} {count}" for operation, count in sorted(counted.items()))
        head = f"  {name:<{label}}  {sum(counted.values()):>{digits}}  "
        lines += wrap(f"{head}{operations}", width, hang=len(head) - 2)
    return lines
