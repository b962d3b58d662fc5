"""The project dashboard: a panel of the project page (console/project.html).

The panel is a template partial; what it needs comes from template globals
registered here (the numbers from engine.delivery.insight, the charts from
web.console.charts), so the project page's view stays as it is while the
panel grows. The same wording of the estimate serves the projects list.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from markupsafe import Markup

from engine.delivery import insight
from engine.store.models import Project, utcnow
from web.console import bp
from web.console.charts import Bar, bar_chart, histogram, progress_bar
from web.services import services

RATE_DAYS = insight.RATE_WINDOW.days


@bp.app_template_global("project_insight")
def project_insight(project: Project) -> insight.Insight:
    """Called by the panel with the page's project (the page checked ownership)."""
    return insight.project_insight(services(), project)


@bp.app_template_global("progress_meter")
def progress_meter(progress: dict, label: str, role: bool = True) -> Markup:
    """Tasks with a final result (or waiting for review) out of all tasks. The
    project page's panel draws it without role=progressbar: there the one
    progressbar is the upload job's (issue 12's contract finds it by role)."""
    return progress_bar(progress.get("done_percent", 0), label,
                        f"{progress.get('done_percent', 0)}% of tasks done", role)


@bp.app_template_global("hourly_chart")
def hourly_chart(found: insight.Insight) -> Markup:
    bars = [Bar(f"{hour.start:%a %d %b %H}:00 UTC", hour.count,
                f"{hour.start:%a %d}" if hour.start.hour == 0 else "")
            for hour in found.hourly]
    busiest = max(found.hourly, key=lambda hour: hour.count, default=None)
    days = len(found.hourly) // 24
    if busiest is None or busiest.count == 0:
        desc = f"No answers in the last {days} days."
    else:
        desc = (f"{found.answers_in_chart} answers in the last {days} days; the busiest hour "
                f"was {busiest.start:%A %d %B %H}:00 UTC with {busiest.count}.")
    return bar_chart("chart-hourly", bars, "Answers per hour", desc, " answers")


@bp.app_template_global("confidence_chart")
def confidence_chart(found: insight.Insight) -> Markup:
    bars = [Bar(b.label, b.count) for b in found.confidence]
    total = sum(b.count for b in found.confidence)
    sure = sum(b.count for b in found.confidence if b.low >= 0.8)
    desc = (f"{total} finished tasks by the confidence of their result; {sure} of them at "
            "80% or more." if total else "No finished tasks yet.")
    return histogram("chart-confidence", bars, "Confidence of results", desc)


@bp.app_template_global("finish_summary")
def finish_summary(estimate: insight.Estimate, state: str = "",
                   now: datetime | None = None) -> str:
    """The estimate in one sentence, as the projects list and the panel say it."""
    status = estimate.status
    if status == "estimated":
        when = estimate.finish_at
        return f"{when:%A %d %B %Y}, {in_words(when - (now or utcnow()))}"
    return {
        "no_estimate": f"No estimate yet: no answers in the last {RATE_DAYS} days.",
        "no_tasks": "No tasks yet: upload items to start.",
        "review": "Every task is answered; contested tasks wait for review.",
        "finished": "Finished: every task has its result.",
        "closed": f"The project is {state or 'closed'}.",
    }[status]


def in_words(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 0.75:
        return "within the hour"
    if hours < 1.5:
        return "in about an hour"
    if hours < 48:
        return f"in about {round(hours)} hours"
    return f"in about {round(hours / 24)} days"


@bp.app_template_global("answers_rate")
def answers_rate(estimate: insight.Estimate) -> str:
    rate = estimate.rate_per_hour
    if rate <= 0:
        return f"no counted answers in the last {RATE_DAYS} days"
    shown = f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"
    return f"{shown} counted answers an hour (last {RATE_DAYS} days)"
