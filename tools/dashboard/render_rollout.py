"""Render one ScaleSetImage's rollout, as the dashboard's "one rollout" row shows it, from a Prometheus to a PNG.

    python tools/dashboard/render_rollout.py --prometheus http://127.0.0.1:9090 \\
        --namespace team-a --name web --start 1764115200 --end 1764115260 -o rollout.png

Three panels over the same time axis, each from the same PromQL as the dashboard panel of that name:
rollout progress (``scalesetimage_rollout_progress_ratio``), domains x state (``scalesetimage_domain_state``, the
dashboard's heat map of update domains: pending, upgrading, upgraded, failed) and instances by state
(``scalesetimage_instances``). The picture in docs/observability.md was made this way from the Prometheus of the
end-to-end observability test (tests/cluster/test_observability_on_prometheus.py). Exits 1 with a message when
Prometheus has no data for the object in the range.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

STATES = ("upgraded", "upgrading", "pending", "unhealthy", "failed")
COLOURS = {
    "upgraded": "#37872d",
    "upgrading": "#1f60c4",
    "pending": "#8e8e8e",
    "unhealthy": "#e0b400",
    "failed": "#c4162a",
}


DOMAIN_STATES = ("pending", "upgrading", "upgraded", "failed")
"""The dashboard's "Domains x state" encoding: 0 pending, 1 Upgrading, 2 Succeeded, 3 Failed."""
DOMAIN_COLOURS = ("grey", "blue", "green", "red")


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=30) as answer:
        body = json.loads(answer.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error')}")
    return list(body["data"]["result"])


def _grid(series: dict[str, Any], times: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The series' values on the ``times`` grid; NaN where Prometheus had no sample."""
    values = np.full(times.shape, np.nan)
    index = {round(t, 3): i for i, t in enumerate(times)}
    for stamp, value in series["values"]:
        slot = index.get(round(float(stamp), 3))
        if slot is not None:
            values[slot] = float(value)
    return values


def render(url: str, namespace: str, name: str, start: float, end: float, step: float, out: Path) -> dict[str, Any]:
    """Draw the PNG; returns what was drawn (series counts and the image labels) for the caller to check."""
    selector = f'namespace="{namespace}", name="{name}"'
    progress = query_range(url, f"max(scalesetimage_rollout_progress_ratio{{{selector}}})", start, end, step)
    domains = query_range(
        url,
        " + ".join(
            f'{weight} * max by (domain) (scalesetimage_domain_state{{{selector}, state="{state}"}})'
            for weight, state in ((1, "Upgrading"), (2, "Succeeded"), (3, "Failed"))
        ),
        start,
        end,
        step,
    )
    states = query_range(url, f"max by (state) (scalesetimage_instances{{{selector}}})", start, end, step)
    info = query_range(url, f"max by (target_image, model_image) (scalesetimage_info{{{selector}}})", end, end, step)
    if not progress or not domains:
        raise LookupError(f"Prometheus at {url} has no rollout series for {namespace}/{name} in [{start}, {end}]")

    times = np.arange(start, end + step / 2, step)
    seconds = times - start
    target = info[0]["metric"].get("target_image", "?") if info else "?"

    figure, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [1.1, 1.4, 1.1]}
    )
    figure.suptitle(f"ScaleSetImage {namespace}/{name} -> {target}", fontsize=11)

    top.plot(seconds, _grid(progress[0], times), color=COLOURS["upgraded"], linewidth=2)
    top.set_ylim(-0.05, 1.05)
    top.set_ylabel("progress ratio")
    top.set_title("Rollout progress", fontsize=10, loc="left")
    top.grid(alpha=0.3)

    ordered = sorted(domains, key=lambda s: str(s["metric"].get("domain", "")))
    heat = np.vstack([_grid(s, times) for s in ordered])
    middle.imshow(
        np.ma.masked_invalid(heat),
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap([COLOURS[state] for state in DOMAIN_STATES]),
        vmin=-0.5,
        vmax=len(DOMAIN_STATES) - 0.5,
        extent=(float(seconds[0]) - step / 2, float(seconds[-1]) + step / 2, len(ordered) - 0.5, -0.5),
    )
    middle.set_yticks(range(len(ordered)), [str(s["metric"].get("domain", "")) for s in ordered])
    middle.set_ylabel("domain")
    middle.set_title(
        "Domains x state: "
        + ", ".join(f"{state} ({colour})" for state, colour in zip(DOMAIN_STATES, DOMAIN_COLOURS, strict=True)),
        fontsize=10,
        loc="left",
    )

    by_state = {str(s["metric"].get("state")): np.nan_to_num(_grid(s, times)) for s in states}
    shown = [state for state in STATES if state in by_state]
    bottom.stackplot(
        seconds,
        [by_state[state] for state in shown],
        labels=shown,
        colors=[COLOURS[state] for state in shown],
        step="post",
    )
    bottom.set_ylabel("instances")
    bottom.set_xlabel("seconds since the start of the range")
    bottom.set_title("Instances by state", fontsize=10, loc="left")
    bottom.legend(loc="upper left", fontsize=8, ncols=len(shown))
    bottom.grid(alpha=0.3)

    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return {"domains": [str(s["metric"].get("domain")) for s in ordered], "states": shown, "target": target}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True, help="the ScaleSetImage's name")
    parser.add_argument("--start", type=float, required=True, help="range start, Unix seconds")
    parser.add_argument("--end", type=float, required=True, help="range end, Unix seconds")
    parser.add_argument("--step", type=float, default=1.0, help="seconds between points (default 1)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        drawn = render(args.prometheus, args.namespace, args.name, args.start, args.end, args.step, args.output)
    except (LookupError, RuntimeError, OSError) as error:
        print(f"render_rollout: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"output": str(args.output)} | drawn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
