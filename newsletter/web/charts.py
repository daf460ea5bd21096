"""The dashboard's chart of the list, drawn on the server as SVG shapes: the page's
policy runs no inline script, and a picture needs none."""

from dataclasses import dataclass

from newsletter.admins.stats import Day

WIDTH = 720
HEIGHT = 340
# Room on the left for the scale's numbers.
PLOT_LEFT = 56
PLOT_RIGHT = WIDTH - 8
# The upper panel: subscribers confirmed at each day's end.
TOTAL_TOP = 16
TOTAL_BOTTOM = 136
# The lower panel: each day's confirmations above its axis, subscribers lost below.
DAILY_TOP = 164
DAILY_BOTTOM = 284
DAILY_AXIS = (DAILY_TOP + DAILY_BOTTOM) / 2
# What each series is called and drawn in, the losses in the order they are stacked.
CONFIRMATIONS = ("confirmations", "New confirmations", "#2a7a3b")
LOSSES = (
    ("unsubscribes", "Unsubscribes", "#d98c00"),
    ("bounces", "Bounces", "#c0392b"),
    ("complaints", "Complaints", "#6c3483"),
)
TOTAL_COLOUR = "#1f5fa8"
LEGEND_SPACING = 134


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True, slots=True)
class ListChart:
    width: int
    height: int
    title: str
    description: str
    total_points: str
    total_colour: str
    bars: list[Bar]
    # The zero lines of both panels: (x1, x2, y).
    axes: list[tuple[int, int, float]]
    labels: list[Label]
    # Where each series' key goes under the chart: (x, name, colour).
    legend: list[tuple[int, str, str]]


def list_chart(history: list[Day]) -> ListChart:
    """The chart of ``history`` (oldest day first), with a summary for screen readers."""
    slot = (PLOT_RIGHT - PLOT_LEFT) / len(history)
    highest_total = max(1, *(day.confirmed for day in history))
    total_height = TOTAL_BOTTOM - TOTAL_TOP
    points = " ".join(
        f"{PLOT_LEFT + slot * (index + 0.5):.1f},"
        f"{TOTAL_BOTTOM - day.confirmed / highest_total * total_height:.1f}"
        for index, day in enumerate(history)
    )
    # One scale for both directions, so that a day's gains and losses compare.
    daily_scale = max(1, *(max(day.confirmations, _lost(day)) for day in history))
    bars = [
        bar
        for index, day in enumerate(history)
        for bar in _day_bars(day, PLOT_LEFT + slot * index, slot, daily_scale)
    ]
    return ListChart(
        width=WIDTH,
        height=HEIGHT,
        title=f"Subscribers over the last {len(history)} days",
        description=describe(history),
        total_points=points,
        total_colour=TOTAL_COLOUR,
        bars=bars,
        axes=[(PLOT_LEFT, PLOT_RIGHT, TOTAL_BOTTOM), (PLOT_LEFT, PLOT_RIGHT, DAILY_AXIS)],
        labels=_labels(history, highest_total, daily_scale),
        legend=_legend(),
    )


def describe(history: list[Day]) -> str:
    """What the chart shows, in a sentence: "Confirmed subscribers grew from 1,204 to
    1,530 in 90 days (new confirmations 400, unsubscribes 50, bounces 20, complaints 4)"."""
    first, last = history[0].confirmed, history[-1].confirmed
    if last > first:
        trend = f"grew from {first:,} to {last:,}"
    elif last < first:
        trend = f"fell from {first:,} to {last:,}"
    else:
        trend = f"stayed at {last:,}"
    moves = ", ".join(
        f"{name.lower()} {sum(getattr(day, field) for day in history):,}"
        for field, name, _colour in (CONFIRMATIONS, *LOSSES)
    )
    return f"Confirmed subscribers {trend} in {len(history)} days ({moves})."


def _lost(day: Day) -> int:
    return sum(getattr(day, field) for field, _name, _colour in LOSSES)


def _day_bars(day: Day, left: float, slot: float, scale: int) -> list[Bar]:
    """A day's confirmations as a bar up from the axis, its losses stacked down from it."""
    unit = (DAILY_AXIS - DAILY_TOP) / scale
    # A gap between days, so that neighbouring bars stay apart.
    width = max(slot - 2, 1)
    gained = day.confirmations * unit
    bars = [Bar(left + 1, DAILY_AXIS - gained, width, gained, CONFIRMATIONS[2])]
    top = DAILY_AXIS
    for field, _name, colour in LOSSES:
        height = getattr(day, field) * unit
        bars.append(Bar(left + 1, top, width, height, colour))
        top += height
    return [bar for bar in bars if bar.height > 0]


def _legend() -> list[tuple[int, str, str]]:
    keys = [("Confirmed subscribers", TOTAL_COLOUR)]
    keys += [(name, colour) for _field, name, colour in (CONFIRMATIONS, *LOSSES)]
    return [
        (PLOT_LEFT + index * LEGEND_SPACING, name, colour)
        for index, (name, colour) in enumerate(keys)
    ]


def _labels(history: list[Day], highest_total: int, daily_scale: int) -> list[Label]:
    """The scales' ends and the first and last day under the lower panel."""
    return [
        Label(PLOT_LEFT - 4, TOTAL_TOP + 4, f"{highest_total:,}", "end"),
        Label(PLOT_LEFT - 4, TOTAL_BOTTOM + 4, "0", "end"),
        Label(PLOT_LEFT - 4, DAILY_TOP + 4, f"+{daily_scale:,}", "end"),
        Label(PLOT_LEFT - 4, DAILY_AXIS + 4, "0", "end"),
        Label(PLOT_LEFT - 4, DAILY_BOTTOM + 4, f"-{daily_scale:,}", "end"),
        Label(PLOT_LEFT, DAILY_BOTTOM + 20, history[0].day.isoformat()),
        Label(PLOT_RIGHT, DAILY_BOTTOM + 20, history[-1].day.isoformat(), "end"),
    ]
