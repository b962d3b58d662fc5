"""A project's quality page on the quality desk: is the crowd right, and is it
getting better or worse?

For the project's admins only (engine.projects.get_moderated_project: another
organisation's project is a 404, a charity member gets a 403). The numbers
come from engine.quality.report in a few grouped queries; this module only
turns them into charts (web.console.charts: server-side SVG, each named and
described in words, its numbers in a table beside it) and sentences.
"""
from __future__ import annotations

from datetime import date

from flask import render_template
from markupsafe import Markup

from engine.delivery.insight import Bin
from engine.quality.report import Confusion, DayScore, QualityReport, quality_report
from web.console import bp, staff_identity
from web.console.charts import Bar, Point, histogram, line_chart, matrix_table
from web.console.dashboard import confidence_chart
from web.services import services

TICK_EVERY = 7  # days between the labels under a daily chart's axis
# How a daily chart's description says what its line is ({answers}, {share}).
AGREEMENT = "{answers} counted answers agreed with their task's current result {share} of the time"
GOLD_RIGHT = "{answers} counted answers on gold tasks gave the gold answer {share} of the time"
GOLD_SCORED = "{answers} counted answers on gold tasks scored {share} against gold on average"


@bp.get("/projects/<int:project_id>/quality")
def project_quality(project_id: int):
    report = quality_report(services(), staff_identity(), project_id)
    return render_template("console/desk/quality.html", project=report.project,
                           report=report, charts=charts(report),
                           gold_summary=gold_summary(report), percent=percent, day_name=_day)


def charts(report: QualityReport) -> dict[str, Markup]:
    """Every chart of the page, by name (the template places them)."""
    drawn = {"reliability": reliability_chart(report),
             # the dashboard's own chart: it reads only .confidence (insight's bins)
             "confidence": confidence_chart(report),
             "agreement": daily_chart("chart-agreement", report.agreement,
                                      "Agreement with results per day", AGREEMENT),
             "gold_daily": daily_chart("chart-gold-daily", report.gold_daily,
                                       "Gold accuracy per day",
                                       GOLD_RIGHT if report.labelled else GOLD_SCORED)}
    if report.confusion is not None:
        drawn["confusion"] = confusion_table(report.confusion)
    else:
        drawn["gold_scores"] = gold_score_chart(report)
    return drawn


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def percent(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)}%"


def confusion_table(matrix: Confusion) -> Markup:
    rows = matrix.rows
    return matrix_table(
        "confusion", "Counted answers on gold tasks: one row per gold label, one column "
        "per label answered, then each gold label's answers and accuracy",
        "Gold label", "answered", [row.gold for row in rows], matrix.labels,
        [row.counts for row in rows],
        [("Answers", [str(row.total) for row in rows]),
         ("Accuracy", [percent(row.accuracy) for row in rows])])


def gold_summary(report: QualityReport) -> str:
    """The crowd against gold in a sentence or two (empty when there is no gold)."""
    if not report.gold_answers:
        return ""
    matrix = report.confusion
    if matrix is None:
        high = sum(b.count for b in report.gold_scores if b.low >= 0.9)
        return (f"{report.gold_answers} counted answers on gold tasks scored "
                f"{percent(report.gold_mean)} on average against gold; {high} of them "
                "scored 90% or more.")
    said = (f"Of {matrix.total} counted answers on gold tasks, {matrix.correct} "
            f"({percent(matrix.accuracy)}) gave the gold label.")
    mistakes = matrix.mistakes()
    if mistakes:
        gold, answered, count = mistakes[0]
        said += (f" The most common mistake: “{answered}” for “{gold}” "
                 f"({count} {'time' if count == 1 else 'times'}).")
    return said


def gold_score_chart(report: QualityReport) -> Markup:
    bars = [Bar(b.label, b.count) for b in report.gold_scores]
    if report.gold_answers:
        desc = (f"{report.gold_answers} counted answers on gold tasks by their score "
                f"against gold; mean {percent(report.gold_mean)}. " + _busiest(report.gold_scores))
    else:
        desc = "No answers on gold tasks yet."
    return histogram("chart-gold-scores", bars, "Gold scores of answers", desc)


def reliability_chart(report: QualityReport) -> Markup:
    bars = [Bar(b.label, b.count) for b in report.reliability]
    waiting = (f" Not yet estimated: {plural(report.no_estimate, 'more volunteer')} "
               "who answered." if report.no_estimate else "")
    if report.estimated:
        low = sum(b.count for b in report.reliability if b.high <= 0.5)
        desc = (f"{plural(report.estimated, 'volunteer')} by estimated reliability (the chance "
                f"of answering right); {low} of them at 50% or less. "
                + _busiest(report.reliability) + waiting)
    else:
        desc = "No volunteer has a reliability estimate yet." + waiting
    return histogram("chart-reliability", bars, "Reliability of volunteers", desc)


def _busiest(bins: list[Bin]) -> str:
    top = max(bins, key=lambda b: b.count)
    return f"Most fall in {top.label} ({top.count})."


def daily_chart(chart_id: str, series: list[DayScore], title: str, what: str) -> Markup:
    """A share per day as a line, days without answers left blank; ``what`` says
    what the line is (AGREEMENT, ...) in the description."""
    last = len(series) - 1
    points = [Point(f"{_day(d.day)}: {percent(d.mean)} of {d.answers} answers"
                    if d.answers else f"{_day(d.day)}: no answers", d.mean,
                    _day(d.day) if (last - n) % TICK_EVERY == 0 else "")
              for n, d in enumerate(series)]
    return line_chart(chart_id, points, title, series_desc(series, what))


def series_desc(series: list[DayScore], what: str) -> str:
    """The series in words: overall, its lowest day and its latest day."""
    scored = [d for d in series if d.answers]
    if not scored:
        return f"No answers to score in the last {len(series)} days."
    answers = sum(d.answers for d in scored)
    mean = sum(d.mean * d.answers for d in scored) / answers
    low = min(scored, key=lambda d: (d.mean, d.day))
    latest = scored[-1]
    return (f"Over the last {len(series)} days, "
            + what.format(answers=answers, share=percent(mean))
            + f" ({len(scored)} days with answers). Lowest: {percent(low.mean)} on "
            f"{_day(low.day)}; latest: {percent(latest.mean)} on {_day(latest.day)}.")


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"
