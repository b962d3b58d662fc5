"""The engine's state as Prometheus reads it, computed when it scrapes.

What is waiting, and how long the background work takes:

  bitesize_open_tasks{project}              tasks still open, per active or paused project (SQL)
  bitesize_dispatch_pool_tasks{project}     of those, ready to hand out now (Redis's pool;
                                            gold tasks wait in a set of their own)
  bitesize_dispatch_live_leases{project}    tasks on volunteers' screens now (unexpired leases)
  bitesize_queue_jobs{queue}                RQ jobs waiting in each queue
  bitesize_webhook_backlog{project}         webhook events not yet delivered (pending or retrying)
  bitesize_job_duration_seconds{job}        background jobs' durations, a histogram
  bitesize_jobs_failed_total{job}           background jobs that raised or ran out of time
  bitesize_metrics_source_up{source}        1, or 0 when that part could not be read

No large table is scanned: open tasks are counted by index seeks on
(project, state) for the projects that can have work in flight, the webhook
backlog through the outbox's index on state (a short range when deliveries
keep up), and the rest are Redis reads in two pipelines plus one HGETALL
(job durations, written by every worker through engine.store.job_timings).
No figure is kept between scrapes, so every web process answers alike. A
part that fails (Redis down) is left out and its source reported as 0; the
scrape itself still answers.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import func, select

from engine.dispatch.dispatcher import keys
from engine.services import Services
from engine.store import job_timings
from engine.store.models import Project, Task, WebhookEvent

IN_FLIGHT = ("active", "paused")  # project states whose tasks are being worked
WAITING = ("pending", "failed")  # webhook events still to deliver (engine.delivery.sender)
log = logging.getLogger(__name__)


class EngineCollector:
    """A Prometheus collector reading one app's database and Redis at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def describe(self) -> list[Metric]:
        return []  # registering must not query anything; the families are in collect()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("bitesize_metrics_source_up",
                               "Whether /metrics could read this source on this scrape",
                               labels=["source"])
        projects: list[int] = []
        for source, part in (("database", self._tasks), ("dispatch", self._dispatch),
                             ("queues", self._queues), ("webhooks", self._webhooks),
                             ("jobs", self._jobs)):
            try:
                families = list(part(projects))
            except Exception as exc:  # a scrape answers with what it could read
                log.warning("metrics: could not read %s: %r", source, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _tasks(self, projects: list[int]) -> Iterator[Metric]:
        """Open tasks per project in flight (fills `projects` for the Redis parts)."""
        with self.services.db.session() as session:
            projects.extend(session.scalars(
                select(Project.id).where(Project.state.in_(IN_FLIGHT)).order_by(Project.id)))
            counts = dict(session.execute(
                select(Task.project_id, func.count())
                .where(Task.project_id.in_(projects), Task.state == "open")
                .group_by(Task.project_id)).all()) if projects else {}
        family = GaugeMetricFamily("bitesize_open_tasks",
                                   "Tasks still open, per active or paused project",
                                   labels=["project"])
        for project_id in projects:
            family.add_metric([str(project_id)], counts.get(project_id, 0))
        yield family

    def _dispatch(self, projects: list[int]) -> Iterator[Metric]:
        """Per project in flight: the pool's size and the unexpired leases (Redis)."""
        now_ms = int(time.time() * 1000)
        pipe = self.services.redis.pipeline(transaction=False)
        for project_id in projects:
            k = keys(project_id)
            pipe.zcard(k["pool"])
            pipe.zcount(k["leases"], f"({now_ms}", "+inf")
        replies = pipe.execute() if projects else []
        pool = GaugeMetricFamily("bitesize_dispatch_pool_tasks",
                                 "Open tasks ready to hand out now (gold apart), per project",
                                 labels=["project"])
        leases = GaugeMetricFamily("bitesize_dispatch_live_leases",
                                   "Tasks handed out whose lease has not expired, per project",
                                   labels=["project"])
        for n, project_id in enumerate(projects):
            pool.add_metric([str(project_id)], replies[2 * n])
            leases.add_metric([str(project_id)], replies[2 * n + 1])
        yield pool
        yield leases

    def _queues(self, _projects: list[int]) -> Iterator[Metric]:
        queues = self.services.queues()
        pipe = self.services.queue_redis.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue.key)
        family = GaugeMetricFamily("bitesize_queue_jobs", "Jobs waiting in each RQ queue",
                                   labels=["queue"])
        for queue, length in zip(queues, pipe.execute(), strict=True):
            family.add_metric([queue.name], length)
        yield family

    def _webhooks(self, _projects: list[int]) -> Iterator[Metric]:
        with self.services.db.session() as session:
            rows = session.execute(
                select(WebhookEvent.project_id, func.count())
                .where(WebhookEvent.state.in_(WAITING))
                .group_by(WebhookEvent.project_id)).all()
        family = GaugeMetricFamily("bitesize_webhook_backlog",
                                   "Webhook events not yet delivered (pending or retrying), "
                                   "per project", labels=["project"])
        for project_id, count in sorted(rows):
            family.add_metric([str(project_id)], count)
        yield family

    def _jobs(self, _projects: list[int]) -> Iterator[Metric]:
        """Background jobs' durations, as every worker recorded them in Redis."""
        timings = job_timings.read(self.services.queue_redis)
        durations = HistogramMetricFamily("bitesize_job_duration_seconds",
                                          "Time a background job's function ran",
                                          labels=["job"])
        failed = CounterMetricFamily("bitesize_jobs_failed",
                                     "Background jobs that raised or ran out of time",
                                     labels=["job"])
        for name, figures in sorted(timings.items()):
            durations.add_metric([name], figures.cumulative(), figures.total)
            failed.add_metric([name], figures.failed)
        yield durations
        yield failed
