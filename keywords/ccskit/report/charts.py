"""Charts as inline SVG strings (matplotlib, no external assets), drawn only from measured data.

Every function returns ``None`` when it has nothing to draw, so the page can say what was not
measured (and why) instead of showing an empty frame. A series that never changed is not drawn
(a flat line says less than its one value): :func:`flat_series` names those for the page.
Percentiles are drawn only where the sample count supports them (``stats.PERCENTILE_RULE``), and the
percentile chart draws only targets that bound every percentile (a maximum), never an average.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here, and the Agg backend needs none
import matplotlib.pyplot as plt
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import stats

COLOURS = {"db": "#1f6fb4", "ws": "#e07b00", "e2e": "#2a9d3a", "other": "#7a7a7a"}
FAULT_COLOURS = {"injected": "#d62728", "recovered": "#2a9d3a", "first_ack": "#1f6fb4"}
FAULT_LABELS = {
    "injected": "fault injected",
    "recovered": "service back",
    "first_ack": "first acknowledged send",
}
# The seed's three latencies; other samples (reconnect downtime, …) stay in the table only,
# because pooling unrelated measurements into one curve would mean nothing.
SEED_CATEGORIES = ("db", "ws", "e2e")
MAX_POINTS = 4000

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller page, selectable figures
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element that scales with the page (ids unique per chart)."""
    plt.rcParams["svg.hashsalt"] = salt  # clip-path ids must not collide between inline SVGs
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    width = re.search(r'<svg[^>]*?\swidth="([^"]*)"', text)
    text = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"\sheight="[^"]*"', r"\1", text, count=1)
    # Shrink with the page but never grow past the drawn size: a lone panel would look enormous.
    style = f' style="max-width: {width.group(1)}"' if width else ""
    return text.replace("<svg", f'<svg class="chart" role="img"{style}', 1)


def _thin(points: Sequence[Sequence[float]]) -> list[Sequence[float]]:
    """At most MAX_POINTS points, keeping each stride's highest value so spikes stay visible."""
    if len(points) <= MAX_POINTS:
        return list(points)
    stride = math.ceil(len(points) / MAX_POINTS)
    return [max(points[i : i + stride], key=lambda p: p[1]) for i in range(0, len(points), stride)]


def _gaps(points: list[Sequence[float]]) -> list[Sequence[float]]:
    """Break the line where sampling stopped (between tests, a restarted server): no fake slope."""
    if len(points) < 3:
        return points
    steps = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
    limit = max(5 * steps[len(steps) // 2], 2.0)
    out: list[Sequence[float]] = [points[0]]
    for a, b in itertools.pairwise(points):
        if b[0] - a[0] > limit:
            out.append((a[0] + (b[0] - a[0]) / 2, math.nan))
        out.append(b)
    return out


def latency_distribution(pooled: dict[str, list[float]]) -> str | None:
    """One histogram per latency category, with p50 and p99 marked."""
    cats = [c for c in SEED_CATEGORIES if pooled.get(c)]
    if not cats:
        return None
    fig, axes = plt.subplots(1, len(cats), figsize=(max(6.0, 4.2 * len(cats)), 2.8), squeeze=False)
    for ax, cat in zip(axes[0], cats, strict=True):
        _histogram(ax, cat, pooled[cat])
    fig.tight_layout()
    return to_svg(fig, "dist")


def _histogram(ax: Axes, cat: str, values: list[float]) -> None:
    s = stats.summarize(values)
    # The lowest 0.1 % would stretch a log axis over empty decades: they go in the first bin.
    low = max(stats.percentile(sorted(values), 0.1), 1e-3)
    high = max(s["max"], low * 1.01)
    edges: list[float] | int = 40
    if high / low > 50:
        edges = [low * (high / low) ** (i / 40) for i in range(41)]
        ax.set_xscale("log")
        _plain_log_labels(ax.xaxis, subs=(1.0,))
        values = [min(max(v, low), high) for v in values]
    ax.hist(values, bins=edges, color=COLOURS[cat], alpha=0.85)
    marks = [(k, st) for k, st in (("mean", "-"), ("p50", "--"), ("p99", ":")) if s[k] is not None]
    for key, style in marks:
        ax.axvline(s[key], color="#222", linestyle=style, linewidth=1, label=key)
    # One box of labels: text beside each line would overlap when mean and p50 are close.
    ax.legend(
        [ax.lines[i] for i in range(len(marks))],
        [f"{key} {stats.fmt(s[key])} ms" for key, _style in marks],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),  # beside the plot: inside it would hide the tallest bars
        fontsize=7,
        frameon=False,
    )
    ax.set_title(f"{stats.category_label(cat)} (n={s['count']:,})", fontsize=10)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("samples")


def percentile_chart(
    pooled: dict[str, list[float]], bounds: dict[str, tuple[float, str]] | None = None
) -> str | None:
    """Latency by percentile on a 'nines' axis (50 %, 90 %, 99 %, 99.9 %), log latency.

    Each curve stops at the finest percentile its sample count supports. ``bounds`` maps a
    category to a target on its *maximum* (``(ms, label)``): such a target bounds every percentile,
    so it may be drawn here; an average target may not and is never passed.
    """
    cats = [c for c in SEED_CATEGORIES if pooled.get(c)]
    if not cats:
        return None
    fig, ax = plt.subplots(figsize=(12, 3.4))
    finest = 50.0
    for cat in cats:
        ordered = sorted(pooled[cat])
        pcts = [p for p in CHART_PERCENTILES if stats.has_enough(len(ordered), p)]
        finest = max([finest, *pcts])
        ax.plot(
            [_nines(p) for p in pcts],
            [max(stats.percentile(ordered, p), 1e-3) for p in pcts],
            marker="o",
            markersize=3,
            color=COLOURS[cat],
            label=f"{stats.category_label(cat)} (n={len(ordered):,}, up to p{pcts[-1]:g})",
        )
        if bounds and cat in bounds:
            limit, text = bounds[cat]
            ax.axhline(limit, color=COLOURS[cat], linestyle=":", linewidth=1)
            ax.annotate(
                text,
                (1, limit),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 2),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color=COLOURS[cat],
            )
    ticks = [p for p in (50, 90, 95, 99, 99.9, 99.99) if p <= finest]
    ax.set_xticks([_nines(p) for p in ticks], [f"p{p:g}" for p in ticks])
    ax.set_xlim(_nines(50) - 0.1, _nines(finest) + 0.1)
    ax.set_yscale("log")
    _plain_log_labels(ax.yaxis)
    ax.set_xlabel("percentile (a curve ends where its sample count stops supporting a finer one)")
    ax.set_ylabel("latency (ms)")
    # Below the curves' start: the top left is where a bound line and its label run.
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return to_svg(fig, "pct")


CHART_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99)


def _plain_log_labels(axis: Any, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Plain numbers on a log axis: "30" reads faster than "3 × 10¹"."""
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: stats.fmt(v)))
    axis.set_minor_formatter(ticker.NullFormatter())


def _nines(pct: float) -> float:
    return -math.log10(1 - pct / 100.0) if pct < 100 else 5.0


Panel = tuple[str, str, list[tuple[str, list[Sequence[float]]]]]
PANEL_TITLES = {
    "latency": ("Latency", "ms"),
    "rate": ("Throughput", "per s"),
    "memory": ("Server memory (RSS)", "MiB"),
    "cpu": ("Server CPU", "% of one core"),
}
MAX_OTHER_PANELS = 2


def flat_series(run: dict[str, Any]) -> list[tuple[str, float, str, int]]:
    """``(name, value, unit, points)`` of every series whose points all have one value."""
    flat = []
    for name, entry in run.get("series", {}).items():
        values = {p[1] for p in entry.get("points") or []}
        if len(values) == 1:
            points = len(entry["points"])
            flat.append((name, values.pop(), str(entry.get("unit", "")), points))
    return flat


def _panels(run: dict[str, Any]) -> list[Panel]:
    """(title, unit, [(label, points)]) for each timeline panel that has a changing series."""
    flat = {name for name, _v, _u, _n in flat_series(run)}
    lines: dict[str, list[tuple[str, list[Sequence[float]]]]] = {}
    other_units: dict[str, list[tuple[str, list[Sequence[float]]]]] = {}
    for name, entry in run.get("series", {}).items():
        points, unit = entry.get("points") or [], str(entry.get("unit", ""))
        if not points or name in flat:
            continue
        kind = stats.series_kind(name, unit)
        target = other_units.setdefault(unit, []) if kind == "other" else lines.setdefault(kind, [])
        target.append((name, _in_ms(points, unit) if kind == "latency" else points))
    # Per-test rates are points at the test's end: measured, and on the same time axis. Latency
    # figures are left out: p50, p99 and max of unrelated tests on one axis compare nothing.
    figures = _test_points(run, "rate")
    if len({p[1] for p in figures}) > 1:
        lines.setdefault("rate", []).append(("test figures (per s)", figures))
    panels: list[Panel] = [(*PANEL_TITLES[k], lines[k]) for k in PANEL_TITLES if k in lines]
    for unit, found in list(other_units.items())[:MAX_OTHER_PANELS]:
        panels.append((", ".join(n for n, _p in found), unit, found))
    return panels


MS_PER_UNIT = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}


def _in_ms(points: list[Sequence[float]], unit: str) -> list[Sequence[float]]:
    scale = MS_PER_UNIT.get(unit.strip(), 1.0)
    return points if scale == 1.0 else [(p[0], p[1] * scale) for p in points]


def _test_points(run: dict[str, Any], kind: str) -> list[Sequence[float]]:
    points: list[Sequence[float]] = []
    for test in run.get("tests", []):
        for metric in test.get("metrics", []):
            unit = str(metric.get("unit", ""))
            if test.get("end") and stats.series_kind(metric.get("name", ""), unit) == kind:
                value = metric["value"] * MS_PER_UNIT.get(unit, 1.0)
                points.append((test["end"], value if kind == "latency" else metric["value"]))
    return sorted(points, key=lambda p: p[0])


def timeline(run: dict[str, Any], episodes: list[dict[str, Any]]) -> str | None:
    """Latency, throughput, RSS and CPU over time, with the fault timeline on the same axis."""
    panels = _panels(run)
    if not panels:
        return None
    origin = float(
        run.get("run", {}).get("started")
        or min(p[0] for _t, _u, lines in panels for _n, pts in lines for p in pts)
    )
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(12.5, 1.9 * len(panels) + 0.6), sharex=True, squeeze=False
    )
    for ax, (title, unit, lines) in zip(axes[:, 0], panels, strict=True):
        for label, points in lines:
            thin = _thin(points) if label.startswith("test figures") else _gaps(_thin(points))
            style = (
                {"marker": "o", "linestyle": "none", "markersize": 3}
                if label.startswith("test figures")
                else {"linewidth": 1}
            )
            ax.plot([p[0] - origin for p in thin], [p[1] for p in thin], label=label, **style)
        ax.set_ylabel(unit)
        ax.set_title(title, loc="left", fontsize=10)
        if len(lines) > 1 or title == "Latency":
            # Above the plot, level with the title: inside it would hide the newest points.
            ax.legend(
                loc="lower right",
                bbox_to_anchor=(1.0, 1.0),
                fontsize=7,
                frameon=False,
                ncol=4,
                borderaxespad=0.2,
            )
        _mark_faults(ax, episodes, origin)
    _latency_scale(axes[0, 0], panels[0])
    _fault_legend(axes[0, 0], episodes)
    axes[-1, 0].set_xlabel("seconds since run start")
    fig.tight_layout()
    return to_svg(fig, "timeline")


def _latency_scale(ax: Axes, panel: Panel) -> None:
    """Log scale when latencies span more than 50x, so a timeout does not flatten the rest."""
    title, _unit, lines = panel
    values = [p[1] for _label, points in lines for p in points if p[1] > 0]
    if title == "Latency" and values and max(values) / min(values) > 50:
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis, subs=(1.0,))  # a short panel: decades only
    else:
        ax.set_ylim(bottom=0)


def _mark_faults(ax: Axes, episodes: list[dict[str, Any]], origin: float) -> None:
    for episode in episodes:
        start = episode["injected"] - origin
        if "recovered" in episode:
            ax.axvspan(start, episode["recovered"] - origin, color="#d62728", alpha=0.08)
        for event, colour in FAULT_COLOURS.items():
            if event in episode:
                ax.axvline(
                    episode[event] - origin,
                    color=colour,
                    linewidth=1.2,
                    linestyle="-" if event == "injected" else "--",
                )


def _fault_legend(ax: Axes, episodes: list[dict[str, Any]]) -> None:
    if not episodes:
        return
    seen = {event for e in episodes for event in FAULT_COLOURS if event in e}
    handles = [
        plt.Line2D(
            [],
            [],
            color=FAULT_COLOURS[e],
            linestyle="-" if e == "injected" else "--",
            label=FAULT_LABELS[e],
        )
        for e in FAULT_COLOURS
        if e in seen
    ]
    ax.figure.legend(
        handles=handles,
        loc="upper center",
        ncol=len(handles),
        frameon=False,
        fontsize=8,
        bbox_to_anchor=(0.5, 1.02),
    )
