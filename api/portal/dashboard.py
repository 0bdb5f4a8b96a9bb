"""民主效能地图: the public effectiveness dashboard (``/dashboard``).

The numbers are ``ledger.stats.suggestion_stats`` (the same as ``GET /api/v1/stats``), by
district and by lead office, over a period. Charts are inline SVG drawn here (presentation
attributes only, no ``style=``: the portal's CSP forbids inline styles); the district grid is
coloured by completion rate through CSS classes ``rate-b0`` … ``rate-b4`` (``rate-none`` when
there is nothing to complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.portal.render import render
from api.state import AppState
from ledger import stats
from ledger.errors import InvalidInput

router = APIRouter()

#: preset periods: key → days back from today (None: everything)
PRESETS: dict[str, int | None] = {"all": None, "30d": 30, "90d": 90, "365d": 365}
METRICS = ("completion_rate", "on_time_rate", "satisfaction_rate")
#: completion-rate buckets: lower bounds of b1 … b4 (b0 is below 20 %)
BUCKETS = (0.2, 0.4, 0.6, 0.8)

BAR_WIDTH = 150  # SVG units of a 100 % bar (about CSS pixels in a third of the page)
ROW_HEIGHT = 28
LABEL_WIDTH = 96


def rate_bucket(rate: float | None) -> str:
    """The CSS class of a completion rate: ``rate-none``, ``rate-b0`` (< 20 %) … ``rate-b4``."""
    if rate is None:
        return "rate-none"
    return f"rate-b{sum(rate >= bound for bound in BUCKETS)}"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


@dataclass(frozen=True)
class BarRow:
    label: str | None
    rate: float | None
    y: int
    width: int
    text: str
    bucket: str


@dataclass(frozen=True)
class BarChart:
    """One horizontal bar chart: a row per group, bar length proportional to the rate."""

    metric: str
    rows: list[BarRow]
    height: int
    width: int = LABEL_WIDTH + BAR_WIDTH + 58
    label_width: int = LABEL_WIDTH
    bar_width: int = BAR_WIDTH


def bar_chart(metric: str, groups: list[dict[str, Any]]) -> BarChart:
    """Rows of the groups in their order; a group without a name (no lead office yet) keeps
    ``label`` None and the template names it."""
    rows = []
    for index, group in enumerate(groups):
        rate = group[metric]
        rows.append(
            BarRow(
                label=group["name"],
                rate=rate,
                y=index * ROW_HEIGHT,
                width=round((rate or 0) * BAR_WIDTH),
                text=percent(rate),
                bucket=rate_bucket(rate),
            )
        )
    return BarChart(metric=metric, rows=rows, height=max(1, len(rows)) * ROW_HEIGHT)


@dataclass(frozen=True)
class Period:
    preset: str | None
    start: date | None
    end: date | None


def parse_period(params: dict[str, str], today: date) -> Period:
    """``?preset=30d`` or ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (either end may be left open).
    Raises InvalidInput naming the bad value."""
    preset = params.get("preset") or None
    raw_from, raw_to = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    if preset is not None and not raw_from and not raw_to:
        if preset not in PRESETS:
            raise InvalidInput(f"unknown period {preset!r}; choose one of {', '.join(PRESETS)}")
        days = PRESETS[preset]
        return Period(preset, None if days is None else today - timedelta(days=days), None)

    def day(name: str, text: str) -> date | None:
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None

    start, end = day("from", raw_from), day("to", raw_to)
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"the period ends before it starts: {start} is after {end}")
    return Period(None if (start or end) else "all", start, end)


@router.get("/dashboard", name="portal_dashboard")
def dashboard(request: Request) -> Response:
    state: AppState = request.app.state.civic
    now = datetime.now(UTC)
    params = dict(request.query_params)
    error: str | None = None
    try:
        period = parse_period(params, now.date())
    except InvalidInput as exc:
        error, period = exc.message, Period("all", None, None)
    with state.read_sessions() as session:
        by_district = stats.suggestion_stats(
            session, period_from=period.start, period_to=period.end, by="district", now=now
        )
        by_office = stats.suggestion_stats(
            session, period_from=period.start, period_to=period.end, by="office", now=now
        )
    districts = by_district["groups"] or []
    offices = by_office["groups"] or []
    tiles = [
        {
            "name": g["name"],
            "total": g["total"],
            "closed": g["closed"],
            "rate": percent(g["completion_rate"]),
            "bucket": rate_bucket(g["completion_rate"]),
        }
        for g in districts
    ]
    return render(
        request,
        "dashboard.html",
        status_code=422 if error else 200,
        error=error,
        period=period,
        presets=list(PRESETS),
        form_from=params.get("from", "") if error is None else "",
        form_to=params.get("to", "") if error is None else "",
        overall=by_district["overall"],
        overall_rates={m: percent(by_district["overall"][m]) for m in METRICS},
        tiles=tiles,
        district_charts=[bar_chart(m, districts) for m in METRICS],
        office_charts=[bar_chart(m, offices) for m in METRICS],
        offices=offices,
        districts=districts,
        as_of=by_district["as_of"],
        pct=percent,
        buckets=[rate_bucket(None), *(f"rate-b{i}" for i in range(len(BUCKETS) + 1))],
    )
