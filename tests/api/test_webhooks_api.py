"""The webhook API: set, show, delete, the outbox and delivery log, redelivery;
owner only, JSON 4xx with field messages, never a 5xx, the secret never echoed."""
from __future__ import annotations

import json

import pytest

SECRET = "a-long-enough-secret"
HOOK = "/api/v1/projects/{project}/webhook"
HOSTILE = [None, True, 0, -1, 2**64, 1e308, "", " ", "x" * 5000, [], {}, ["a"], {"a": 1},
           "javascript:alert(1)", "file:///etc/passwd", "http://", "http://[::1",
           "http://a:99999/", "https://user:pw@example.org/", "http://a b/", "🐧"]


@pytest.fixture
def hook_url(project):
    return HOOK.format(project=project["id"])


def put_hook(client, path, headers, **body):
    return client.put(path, json={"url": "https://example.org/hook", "secret": SECRET, **body},
                      headers=headers)


def test_set_show_replace_and_delete(api, client, charity, hook_url):
    r = put_hook(client, hook_url, charity)
    assert r.status_code == 201, r.json
    assert SECRET not in r.get_data(as_text=True)
    assert r.json["secret_hint"] == "...cret"
    assert r.json["events"] == ["job.split", "task.retired", "task.reopened",
                                 "project.completed"]
    assert r.json["active"] is True
    r = put_hook(client, hook_url, charity, url="http://example.org/other",
                 secret="another-secret-0001", events=["job.split"], active=False)
    assert r.status_code == 200, r.json
    shown = client.get(hook_url, headers=charity)
    assert shown.status_code == 200
    assert (shown.json["url"], shown.json["events"], shown.json["active"],
            shown.json["secret_hint"]) == ("http://example.org/other", ["job.split"], False,
                                           "...0001")
    assert "secret" not in shown.json
    r = client.delete(hook_url, headers=charity)
    assert r.status_code == 200 and r.json["deleted"] is True
    api.error(client.get(hook_url, headers=charity), 404)
    api.error(client.delete(hook_url, headers=charity), 404)


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.org/hook"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "example.org/hook"}, "url"),
    ({"url": "https://user:pw@example.org/"}, "url"),
    ({"url": None}, "url"),
    ({"url": ...}, "url"),
    ({"secret": ...}, "secret"),
    ({"secret": "short"}, "secret"),
    ({"secret": 12345678901234567}, "secret"),
    ({"events": ["job.split", "task.created"]}, "events"),
    ({"events": []}, "events"),
    ({"events": "job.split"}, "events"),
    ({"active": "maybe"}, "active"),
])
def test_invalid_webhooks_are_422_naming_the_field(api, client, charity, hook_url, body, field):
    full = {"url": "https://example.org/hook", "secret": SECRET, **body}
    full = {k: v for k, v in full.items() if v is not ...}
    error = api.error(client.put(hook_url, json=full, headers=charity), 422)
    assert field in error["fields"], error
    api.error(client.get(hook_url, headers=charity), 404)  # nothing was stored


def test_hostile_values_never_make_a_5xx(api, client, charity, hook_url):
    for field in ("url", "secret", "events", "active"):
        for value in HOSTILE:
            body = {"url": "https://example.org/hook", "secret": SECRET, field: value}
            r = client.put(hook_url, json=body, headers=charity)
            assert r.status_code < 500, (field, value, r.get_data(True))
            if r.status_code >= 400:
                api.error(r, r.status_code)
    for value in HOSTILE:
        r = client.put(hook_url, json={"url": "https://example.org/hook", "secret": SECRET,
                                       "events": [value]}, headers=charity)
        assert r.status_code < 500, (value, r.get_data(True))
    api.error(client.put(hook_url, data="nope", headers=charity), 400)
    api.error(client.put(hook_url, json=["url"], headers=charity), 422)


@pytest.mark.parametrize("path", ["", "/events", "/deliveries", "/events/1/redeliver"])
def test_only_the_owner_may_touch_a_webhook(api, client, auth, project, other_charity, path):
    base = HOOK.format(project=project["id"]) + path
    method = "POST" if path.endswith("redeliver") else "GET"
    api.error(client.open(base, method=method), 401)
    api.error(client.open(base, method=method, headers=auth.volunteer()), 403)
    api.error(client.open(base, method=method, headers=other_charity), 404)
    missing = HOOK.format(project=999_999) + path
    api.error(client.open(missing, method=method, headers=auth.charity()), 404)
    r = client.put(HOOK.format(project=project["id"]), headers=other_charity,
                   json={"url": "https://example.org/", "secret": SECRET})
    api.error(r, 404)


def test_outbox_log_and_redeliver(api, client, charity, project, receiver, services):
    hook_url = HOOK.format(project=project["id"])
    assert put_hook(client, hook_url, charity, url=receiver.url).status_code == 201
    receiver.status = 503
    api.items(charity, project["id"], [{"text": "photo 3"}])  # split, then a failed delivery

    listed = client.get(f"{hook_url}/events", headers=charity).json
    assert listed["total"] == 1
    [event] = listed["events"]
    assert (event["event"], event["state"], event["attempts"]) == ("job.split", "failed", 1)
    assert event["last_error"].startswith("HTTP 503") and event["next_attempt_at"]
    assert event["data"]["job"]["tasks_made"] == 1
    assert client.get(f"{hook_url}/events?state=delivered", headers=charity).json["total"] == 0
    log = client.get(f"{hook_url}/deliveries?event={event['id']}", headers=charity).json
    assert [(d["event"], d["attempt"], d["status_code"]) for d in log["deliveries"]] == [
        (event["id"], 1, 503)]

    receiver.status = 200
    r = client.post(f"{hook_url}/events/{event['id']}/redeliver", headers=charity)
    assert r.status_code == 202 and r.json["state"] == "pending"
    api.error(client.post(f"{hook_url}/events/{event['id']}/redeliver", headers=charity), 409)
    api.work()  # the nudged delivery job
    [shown] = client.get(f"{hook_url}/events", headers=charity).json["events"]
    assert (shown["state"], shown["attempts"], shown["next_attempt_at"]) == ("delivered", 2,
                                                                             None)
    assert [json.loads(c["body"])["id"] for c in receiver.calls] == [
        event["idempotency_key"]] * 2
    log = client.get(f"{hook_url}/deliveries", headers=charity).json
    assert [d["status_code"] for d in log["deliveries"]] == [200, 503]  # newest first

    api.error(client.post(f"{hook_url}/events/999999/redeliver", headers=charity), 404)
    other = api.project(charity)
    other_url = HOOK.format(project=other["id"])
    api.error(client.post(f"{other_url}/events/{event['id']}/redeliver", headers=charity), 404)


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "offset=-1", "state=lost",
                                   "limit=x"])
def test_bad_paging_is_422(api, client, charity, hook_url, query):
    api.error(client.get(f"{hook_url}/events?{query}", headers=charity), 422)
    if "state" not in query:
        api.error(client.get(f"{hook_url}/deliveries?{query}", headers=charity), 422)
    api.error(client.get(f"{hook_url}/deliveries?event=abc", headers=charity), 422)


def test_openapi_lists_the_webhook_calls(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    hook = "/projects/{project_id}/webhook"
    assert set(paths[hook]) == {"put", "get", "delete"}
    assert "get" in paths[f"{hook}/events"] and "get" in paths[f"{hook}/deliveries"]
    assert "post" in paths[f"{hook}/events/{{event_id}}/redeliver"]


@pytest.mark.parametrize("url", ["http://127.0.0.2/hook", "http://[::1]:8080/hook",
                                 "http://169.254.169.254/latest/meta-data/",
                                 "http://2130706434/", "http://[::ffff:192.168.0.1]/"])
def test_a_webhook_into_our_own_network_is_422(api, client, charity, hook_url, url):
    r = put_hook(client, hook_url, charity, url=url)
    assert "url" in api.error(r, 422)["fields"]
    assert client.get(hook_url, headers=charity).status_code == 404
