"""Issue 17.5: GET /metrics in Prometheus's text format (README: Operations).

Requests are counted by URL rule (never the raw path), the volunteer's hot
path included; the engine's state (open tasks, dispatch, queues, webhook
backlog) is read at scrape time; background jobs' durations come from the
workers through Redis; gunicorn's processes add up through prometheus_client's
multiprocess mode; and only a private network, or the bearer of
BITESIZE_METRICS_TOKEN, may read any of it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.store import job_timings
from web.metrics import is_private_address

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"name": "Seals", "task_type": "classify",
           "config": {"question": "Which?", "labels": ["seal", "penguin"]},
           "min_answers": 2, "max_answers": 3,
           "quality": {"quarantine": False, "trusted_after_minutes": 0}}
NEXT = "/api/v1/projects/<int:project_id>/tasks/next"
ANSWERS = "/api/v1/tasks/<int:task_id>/answers"


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(client, **kwargs) -> dict[tuple, float]:
    reply = client.get("/metrics", **kwargs)
    assert reply.status_code == 200, reply.get_data(True)
    assert reply.mimetype == "text/plain"
    return samples(reply.get_data(True))


def requests_of(found: dict, route: str, method: str, status: str) -> float:
    key = ("bitesize_http_requests_total",
           (("method", method), ("route", route), ("status", status)))
    return found.get(key, 0.0)




def project_with_tasks(client, auth, work, texts=("a", "b")) -> tuple[dict, dict]:
    charity = auth.charity()
    project = client.post("/api/v1/projects", headers=charity, json=PROJECT).json
    r = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                    json={"items": [{"text": t} for t in texts]})
    assert r.status_code == 202, r.json
    work()
    return project, charity


def test_requests_are_counted_by_rule_the_hot_paths_too(app, client, auth, work):
    project, _ = project_with_tasks(client, auth, work)
    volunteer = auth.volunteer()
    hot = app.extensions["hot_path"]
    served = hot.served
    handout = client.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer)
    assert handout.status_code == 200
    answer = client.post(f"/api/v1/tasks/{handout.json['task']['id']}/answers",
                         headers=volunteer, json={"lease": handout.json["lease"]["token"],
                                                  "answer": {"label": "seal"}})
    assert answer.status_code == 201, answer.json
    assert hot.served == served + 2  # both served without Flask
    # the same call through Flask (a query string), an unknown path, a project
    assert client.get(f"/api/v1/projects/{project['id']}/tasks/next?count=1",
                      headers=volunteer).status_code == 200
    assert client.get("/no/such/page/42").status_code == 404
    assert client.get(f"/api/v1/projects/{project['id']}").status_code == 200

    reply = client.get("/metrics")
    found = samples(reply.get_data(True))
    assert requests_of(found, NEXT, "GET", "200") == 2
    assert requests_of(found, ANSWERS, "POST", "201") == 1
    assert requests_of(found, "unmatched", "GET", "404") == 1
    assert requests_of(found, "/api/v1/projects/<int:project_id>", "GET", "200") == 1
    assert found[("bitesize_http_request_duration_seconds_count", (("route", ANSWERS),))] == 1
    assert found[("bitesize_http_request_duration_seconds_sum", (("route", ANSWERS),))] > 0
    # every route label is a rule of the app (or "unmatched"): no raw path, no id
    rules = {rule.rule for rule in app.url_map.iter_rules()} | {"unmatched"}
    routes = {dict(labels)["route"] for (name, labels) in found if "route" in dict(labels)}
    assert routes <= rules, routes - rules
    assert f"/tasks/{handout.json['task']['id']}/" not in reply.get_data(True)


def test_the_engines_state_is_read_at_scrape_time(client, auth, work, services, receiver):
    project, charity = project_with_tasks(client, auth, work, texts=("a", "b", "c"))
    pid = project["id"]
    volunteer = auth.volunteer()
    assert client.get(f"/api/v1/projects/{pid}/tasks/next",
                      headers=volunteer).status_code == 200
    found = scrape(client)
    label = (("project", str(pid)),)
    assert found[("bitesize_open_tasks", label)] == 3
    assert found[("bitesize_dispatch_live_leases", label)] == 1
    assert found[("bitesize_dispatch_pool_tasks", label)] == 3  # each needs 2 answers
    assert found[("bitesize_queue_jobs", (("queue", "default"),))] == 0
    assert ("bitesize_webhook_backlog", label) not in found

    # a job waiting, and a webhook whose receiver fails: both show as backlog
    services.queue("low").enqueue("workers.jobs.deliver_webhooks")
    assert scrape(client)[("bitesize_queue_jobs", (("queue", "low"),))] == 1
    work()
    receiver.status = 503
    hook = client.put(f"/api/v1/projects/{pid}/webhook", headers=charity,
                      json={"url": receiver.url, "secret": "s" * 20})
    assert hook.status_code == 201, hook.json
    client.post(f"/api/v1/projects/{pid}/jobs", headers=charity, json={"items": [{"text": "d"}]})
    work()  # split, then a delivery that fails
    assert receiver.calls and receiver.calls[0]["status"] == 503
    found = scrape(client)
    assert found[("bitesize_webhook_backlog", label)] == 1
    assert found[("bitesize_open_tasks", label)] == 4
    assert all(found[("bitesize_metrics_source_up", (("source", s),))] == 1
               for s in ("database", "dispatch", "queues", "webhooks", "jobs"))

    # a paused project still counts; a finished one is gone from the gauges
    assert client.post(f"/api/v1/projects/{pid}/pause", headers=charity).status_code == 200
    assert scrape(client)[("bitesize_open_tasks", label)] == 4
    assert client.post(f"/api/v1/projects/{pid}/complete", headers=charity).status_code == 200
    assert ("bitesize_open_tasks", label) not in scrape(client)


def test_job_durations_come_from_the_workers_through_redis(client, auth, work, services):
    project_with_tasks(client, auth, work)  # one split job, run by the worker
    services.queue("low").enqueue("workers.jobs.send_project_news", 987654)  # no such news
    work()
    found = scrape(client)
    split = (("job", "workers.jobs.split_job"),)
    news = (("job", "workers.jobs.send_project_news"),)
    assert found[("bitesize_job_duration_seconds_count", split)] == 1
    assert found[("bitesize_job_duration_seconds_sum", split)] > 0
    assert found[("bitesize_job_duration_seconds_bucket", (*split, ("le", "+Inf")))] == 1
    assert found[("bitesize_jobs_failed_total", split)] == 0
    assert found[("bitesize_job_duration_seconds_count", news)] == 1
    assert found[("bitesize_jobs_failed_total", news)] == 1


def test_job_timings_fall_in_their_buckets_and_add_up(raw_redis, services):
    redis = services.redis
    for seconds, failed in ((0.01, False), (0.02, False), (42.0, True), (4000.0, False)):
        job_timings.record(redis, "workers.jobs.example", seconds, failed)
    (name, figures), = job_timings.read(redis).items()
    assert name == "workers.jobs.example"
    assert (figures.count, figures.failed) == (4, 1)
    assert figures.total == pytest.approx(4042.03)
    cumulative = dict(figures.cumulative())
    assert cumulative["0.01"] == 1  # a bound is inclusive
    assert cumulative["0.05"] == 2 and cumulative["30.0"] == 2
    assert cumulative["60.0"] == 3 and cumulative["1800.0"] == 3
    assert cumulative["+Inf"] == 4 == figures.count
    assert list(cumulative) == [*map(repr, job_timings.BUCKETS), "+Inf"]
    assert len(raw_redis.hkeys(job_timings.KEY)) <= len(job_timings.BUCKETS) + 4


def test_a_scrape_answers_when_redis_is_down(client, auth, work, make_client, free_port):
    project, _ = project_with_tasks(client, auth, work)
    down = make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # the same database
    found = scrape(down)
    assert found[("bitesize_open_tasks", (("project", str(project["id"])),))] == 2
    up = {dict(labels)["source"]: value for (name, labels), value in found.items()
          if name == "bitesize_metrics_source_up"}
    assert up == {"database": 1, "dispatch": 0, "queues": 0, "webhooks": 1, "jobs": 0}


@pytest.mark.parametrize(("address", "private"), [
    ("127.0.0.1", True), ("::1", True), ("10.1.2.3", True), ("192.168.0.9", True),
    ("172.16.5.4", True), ("fd00::1", True), ("::ffff:10.0.0.1", True),
    ("8.8.8.8", False), ("2001:4860:4860::8888", False), ("::ffff:8.8.8.8", False),
    ("203.0.113.9", False), ("169.254.1.1", False),  # documentation, link-local
    ("", False), ("not an address", False), (None, False),
])
def test_private_addresses(address, private):
    assert is_private_address(address) is private


def test_only_a_private_network_may_read_them_without_a_token(client, api_error):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 200
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    api_error(outside, 404)
    assert b"bitesize_" not in outside.data


def test_behind_a_proxy_the_clients_address_is_judged(make_client, api_error):
    client = make_client(behind_proxy=1)
    api_error(client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}), 404)
    assert client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.7"}).status_code == 200


def test_with_a_token_only_its_bearer_may_read_them(make_client, api_error):
    token = "m" * 40
    client = make_client(metrics_token=token)
    api_error(client.get("/metrics"), 404)  # loopback is not enough any more
    api_error(client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40}), 404)
    api_error(client.get("/metrics", headers={"Authorization": token}), 404)
    reply = client.get("/metrics", headers={"Authorization": f"Bearer {token}"},
                       environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert reply.status_code == 200 and b"bitesize_http_requests_total" in reply.data


@pytest.fixture
def api_error():
    def check(reply, status: int) -> dict:
        assert reply.status_code == status, reply.get_data(True)
        assert reply.mimetype == "application/json"
        body = reply.get_json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
        return body["error"]

    return check


# One process of a gunicorn-like site: counts `N` requests to /healthz with the
# PROMETHEUS_MULTIPROC_DIR of its environment, then prints /metrics as it answers.
CHILD = textwrap.dedent("""
    import sys
    from engine.config import Settings
    from web import create_app

    app = create_app({"BITESIZE": {"rate_limits": 0}, "TESTING": True})
    client = app.test_client()
    for _ in range(int(sys.argv[1])):
        assert client.get("/healthz").status_code == 200
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.status_code
    sys.stdout.write(reply.get_data(True))
""")


def test_several_processes_add_up_through_the_multiprocess_folder(settings, services,
                                                                  tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder),
           "BITESIZE_INSTANCE_PATH": str(settings.instance_path),
           "BITESIZE_DATABASE_URL": settings.database_url,
           "BITESIZE_REDIS_URL": settings.redis_url,
           "BITESIZE_SECRET_KEY": settings.secret_key}

    def run(count: int) -> dict:
        done = subprocess.run([sys.executable, "-c", CHILD, str(count)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return samples(done.stdout)

    run(3)
    found = run(2)  # a second process: its own counts and the first one's
    assert requests_of(found, "/healthz", "GET", "200") == 5
    assert found[("bitesize_http_request_duration_seconds_count", (("route", "/healthz"),))] == 5
    assert found[("bitesize_queue_jobs", (("queue", "high"),))] == 0  # the engine's part too
    assert len(list(folder.glob("*.db"))) >= 2  # one file per process and kind


def test_counting_that_fails_never_fails_the_reply(settings, services, tmp_path):
    """The multiprocess folder removed under a running site (someone cleaned /tmp):
    requests are still answered, only not counted."""
    folder = tmp_path / "gone"
    folder.mkdir()
    script = textwrap.dedent("""
        import shutil, sys
        from web import create_app

        app = create_app({"BITESIZE": {"rate_limits": 0}})
        shutil.rmtree(sys.argv[1])
        reply = app.test_client().get("/healthz")
        print(reply.status_code, reply.get_json())
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder),
           "BITESIZE_INSTANCE_PATH": str(settings.instance_path),
           "BITESIZE_DATABASE_URL": settings.database_url,
           "BITESIZE_REDIS_URL": settings.redis_url,
           "BITESIZE_SECRET_KEY": settings.secret_key}
    done = subprocess.run([sys.executable, "-c", script, str(folder)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "200 {'status': 'ok'}"
    assert "could not be counted" in done.stderr


def test_a_single_process_keeps_its_own_counts_per_app(make_client):
    first, second = make_client(), make_client()
    first.get("/healthz")
    first.get("/healthz")
    second.get("/healthz")
    assert requests_of(scrape(first), "/healthz", "GET", "200") == 2
    assert requests_of(scrape(second), "/healthz", "GET", "200") == 1


def test_the_config_file_gives_gunicorn_a_private_metrics_folder(tmp_path):
    """gunicorn.conf.py, read as gunicorn reads it: a fresh private folder when the
    environment names none, the one it names otherwise; and the child_exit hook."""
    probe = textwrap.dedent("""
        import json, os, runpy, stat
        config = runpy.run_path("gunicorn.conf.py")
        folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        hooks = [h for h in ("child_exit", "on_exit") if callable(config.get(h))]
        print(json.dumps({"folder": folder, "mode": stat.S_IMODE(os.stat(folder).st_mode),
                          "hooks": hooks,
                          "logger": getattr(config.get("logger_class"), "__name__", None)}))
        config["on_exit"](None)
        print(os.path.exists(folder))
    """)
    base = {k: v for k, v in os.environ.items()
            if k not in ("PROMETHEUS_MULTIPROC_DIR", "BITESIZE_LOG_FORMAT")}

    def run(env: dict) -> tuple[dict, bool]:
        done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        first, exists = done.stdout.splitlines()
        return json.loads(first), exists == "True"

    made, exists = run({**base, "TMPDIR": str(tmp_path)})
    assert Path(made["folder"]).parent == tmp_path and made["mode"] == 0o700
    assert made["hooks"] == ["child_exit", "on_exit"] and made["logger"] is None
    assert not exists  # removed when gunicorn stops

    given = tmp_path / "given"
    given.mkdir()
    named, exists = run({**base, "PROMETHEUS_MULTIPROC_DIR": str(given),
                         "BITESIZE_LOG_FORMAT": "json"})
    assert named["folder"] == str(given) and exists  # the operator's folder is theirs
    assert named["logger"] == "JsonLogger"
