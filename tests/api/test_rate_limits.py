"""Rate limits (issue 14.4): sign-ups, answers, API calls, bad tokens, uploads.

Each test builds its own app with limits on (the shared test app has them off)
on the session's real Redis; small allowances per hour keep the tests fast and
far from any window's end.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from engine.services import Services
from web import create_app
from web.hot_path import HotPath
from web.rate_limits import EXTENSION, network_of

from .conftest import error_of

LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture
def limited(settings, registry, services):
    """limited(**limits): a client of a fresh app on the same database and Redis
    with rate limits on; every limit not given is the default."""
    made: list[Services] = []

    def make(**limits):
        svc = Services(replace(settings, **{"rate_limits": 1, **limits}), registry)
        made.append(svc)
        return create_app({"SERVICES": svc, "TESTING": True}).test_client()

    yield make
    for svc in made:
        svc.close()


def _sign_up(client, address: str = "203.0.113.7"):
    return client.post("/api/v1/volunteers", environ_base={"REMOTE_ADDR": address})


def _assert_refused(response) -> None:
    error = error_of(response, 429)
    assert error["code"] == "rate_limited" and error["fields"] == {}
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) == int(response.headers["Retry-After"])


def test_the_test_app_has_no_rate_limits(app, client):
    assert EXTENSION not in app.extensions
    for _ in range(3):
        r = client.post("/api/v1/volunteers")
        assert r.status_code == 201 and "RateLimit-Limit" not in r.headers


def test_a_school_class_of_100_signs_up_together_with_the_defaults(limited):
    client = limited()
    for n in range(100):
        r = _sign_up(client)
        assert r.status_code == 201, (n, r.json)
    assert r.headers["RateLimit-Limit"] == "100" and r.headers["RateLimit-Remaining"] == "0"
    for _ in range(3):
        _assert_refused(_sign_up(client))


def test_sign_ups_per_address(limited):
    client = limited(limit_volunteers="3/hour")
    remaining = [_sign_up(client).headers["RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = _sign_up(client)
    _assert_refused(refused)
    assert refused.headers["RateLimit-Limit"] == "3"
    assert _sign_up(client, "198.51.100.9").status_code == 201  # another address


def test_a_forged_forwarded_for_does_not_dodge_the_limit(limited):
    """Without ProxyFix the client's own X-Forwarded-For is not its address."""
    client = limited(limit_volunteers="2/hour")
    for n in range(2):
        r = client.post("/api/v1/volunteers", headers={"X-Forwarded-For": f"10.9.{n}.1"})
        assert r.status_code == 201
    _assert_refused(client.post("/api/v1/volunteers", headers={"X-Forwarded-For": "10.9.9.1"}))


def test_sign_ups_per_network(limited):
    client = limited(limit_volunteers="100/hour", limit_volunteers_network="3/hour")
    for host in (1, 2, 3):
        assert _sign_up(client, f"192.0.2.{host}").status_code == 201
    _assert_refused(_sign_up(client, "192.0.2.200"))
    assert _sign_up(client, "192.0.3.1").status_code == 201  # the next /24


def test_sign_ups_per_ipv6_network(limited):
    client = limited(limit_volunteers="100/hour", limit_volunteers_network="2/hour")
    assert _sign_up(client, "2001:db8:0:1::1").status_code == 201
    assert _sign_up(client, "2001:db8:0:2::7").status_code == 201
    _assert_refused(_sign_up(client, "2001:db8:0:3::1"))  # the same /56
    assert _sign_up(client, "2001:db8:0:100::1").status_code == 201  # another /56


def test_networks():
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("::ffff:192.0.2.77") == "192.0.2.0/24"
    assert network_of("2001:db8:1:2ff:1::1") == "2001:db8:1:200::/56"
    assert network_of("unknown") == "unknown"


def test_a_refused_sign_up_uses_nothing_up(limited):
    """Refused by its address, a sign-up does not count against its network."""
    client = limited(limit_volunteers="1/hour", limit_volunteers_network="2/hour")
    assert _sign_up(client, "192.0.2.1").status_code == 201
    _assert_refused(_sign_up(client, "192.0.2.1"))
    assert _sign_up(client, "192.0.2.2").status_code == 201
    _assert_refused(_sign_up(client, "192.0.2.3"))


def test_two_processes_share_the_limits(limited):
    """Two apps (as two gunicorn workers) on one Redis count together."""
    first, second = limited(limit_volunteers="2/hour"), limited(limit_volunteers="2/hour")
    assert _sign_up(first).status_code == 201
    assert _sign_up(second).status_code == 201
    _assert_refused(_sign_up(first))
    _assert_refused(_sign_up(second))


def test_the_off_switch(settings, registry, services):
    svc = Services(replace(settings, rate_limits=0, limit_volunteers="1/hour"), registry)
    client = create_app({"SERVICES": svc, "TESTING": True}).test_client()
    for _ in range(3):
        r = _sign_up(client)
        assert r.status_code == 201 and "RateLimit-Limit" not in r.headers
    svc.close()


def test_a_limit_that_cannot_be_read_stops_the_start(settings, registry):
    svc = Services(replace(settings, rate_limits=1, limit_answers="often"), registry)
    with pytest.raises(ValueError, match="often"):
        create_app({"SERVICES": svc, "TESTING": True})


def test_an_empty_limit_is_no_limit(limited):
    client = limited(limit_volunteers="", limit_volunteers_network="")
    for _ in range(3):
        r = _sign_up(client)
        assert r.status_code == 201 and "RateLimit-Limit" not in r.headers


# --- answers: the hot path and Flask alike ------------------------------------------

def _lease(client, volunteer: dict, project_id: int) -> dict:
    r = client.get(f"/api/v1/projects/{project_id}/tasks/next", headers=volunteer["headers"])
    assert r.status_code == 200, r.get_data(True)
    return r.json


def _answer(client, volunteer: dict, handout: dict, query: str = ""):
    return client.post(f"/api/v1/tasks/{handout['task']['id']}/answers{query}",
                       headers=volunteer["headers"],
                       json={"lease": handout["lease"]["token"], "answer": {"label": "seal"}})


def test_answers_per_volunteer_on_the_hot_path(limited, api, charity):
    client = limited(limit_answers="2/hour")
    hot = client.application.extensions["hot_path"]
    assert isinstance(hot, HotPath)
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(4)])
    volunteer, other = api.volunteer(), api.volunteer()
    served = hot.served
    first = _answer(client, volunteer, _lease(client, volunteer, project["id"]))
    assert first.status_code == 201
    assert [first.headers[h] for h in LIMIT_HEADERS[:2]] == ["2", "1"]
    assert _answer(client, volunteer, _lease(client, volunteer, project["id"])).status_code == 201
    handout = _lease(client, volunteer, project["id"])
    _assert_refused(_answer(client, volunteer, handout))
    assert hot.served - served == 6  # every call above was the hot path's
    # the same counter holds where Flask serves the call (a query string)
    _assert_refused(_answer(client, volunteer, handout, "?from=flask"))
    assert hot.served - served == 6
    assert _answer(client, other, _lease(client, other, project["id"])).status_code == 201


def test_answers_served_by_flask_count_too(limited, api, charity):
    client = limited(limit_answers="1/hour")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(3)])
    volunteer = api.volunteer()
    r = _answer(client, volunteer, _lease(client, volunteer, project["id"]), "?from=flask")
    assert r.status_code == 201 and r.headers["RateLimit-Remaining"] == "0"
    _assert_refused(_answer(client, volunteer, _lease(client, volunteer, project["id"])))


def _script_calls(services) -> int:
    stats = services.redis.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


@pytest.mark.parametrize("next_count", [0, 1])
def test_an_answer_is_counted_by_its_own_submit(limited, api, charity, services, next_count):
    """The answer limit costs no Redis call of its own: the submit script counts it."""
    client = limited(limit_answers="5/hour;50/day")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(3)])
    volunteer = api.volunteer()

    def answer(handout):
        return client.post(f"/api/v1/tasks/{handout['task']['id']}/answers",
                           headers=volunteer["headers"],
                           json={"lease": handout["lease"]["token"], "answer": {"label": "seal"},
                                 "next": next_count})

    first = answer(_lease(client, volunteer, project["id"]))  # Redis learns the scripts
    handout = first.json["next"] if next_count else _lease(client, volunteer, project["id"])
    services.redis.config_resetstat()
    r = answer(handout)
    assert r.status_code == 201, r.get_data(True)
    assert _script_calls(services) == 1  # first answer of two needed: no merge, no settle
    # the tighter window is reported, and both windows counted both answers
    assert [r.headers[h] for h in LIMIT_HEADERS[:2]] == ["5", "3"]
    counters = {key.decode(): int(services.redis.get(key))
                for key in services.redis.scan_iter(f"bs:rl:{{answers:{volunteer['id']}}}:*")}
    assert sorted(counters.values()) == [2, 2]


def test_a_full_window_refuses_before_anything_is_stored(limited, api, charity, services,
                                                          count_answers):
    client = limited(limit_answers="1/hour")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(3)])
    volunteer = api.volunteer()
    assert _answer(client, volunteer, _lease(client, volunteer, project["id"])).status_code == 201
    handout = _lease(client, volunteer, project["id"])
    services.redis.config_resetstat()
    _assert_refused(_answer(client, volunteer, handout))
    assert count_answers(services) == 1
    assert _script_calls(services) == 0  # refused from what the process knows
    # the lease is untouched: the answer can be sent once the window ends
    assert services.redis.zscore(f"bs:{{p:{project['id']}}}:leases",
                                 f"{handout['task']['id']}:{volunteer['id']}") is not None


def test_another_process_learns_of_a_full_window_from_its_next_answer(
        limited, api, charity, services, count_answers):
    """The answer limit is soft across processes: each one refuses once it has seen the
    window full, so another process lets one more answer past it (documented)."""
    first, second = limited(limit_answers="2/hour"), limited(limit_answers="2/hour")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(6)])
    volunteer = api.volunteer()
    for client in (first, first):
        assert _answer(client, volunteer, _lease(client, volunteer, project["id"])
                       ).status_code == 201
    _assert_refused(_answer(first, volunteer, _lease(first, volunteer, project["id"])))
    late = _answer(second, volunteer, _lease(second, volunteer, project["id"]))
    assert late.status_code == 201 and late.headers["RateLimit-Remaining"] == "0"
    _assert_refused(_answer(second, volunteer, _lease(second, volunteer, project["id"])))
    assert count_answers(services) == 3


def test_a_retried_answer_counts_once(limited, api, charity, services):
    """A retry of a stored answer (its reply was lost) is the same answer: its repeat
    submit is not counted again, whoever runs it again (the client, or redis-py
    after a lost reply)."""
    client = limited(limit_answers="5/hour")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(2)])
    volunteer = api.volunteer()
    handout = _lease(client, volunteer, project["id"])
    first, again = _answer(client, volunteer, handout), _answer(client, volunteer, handout)
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    assert [int(services.redis.get(key)) for key in
            services.redis.scan_iter(f"bs:rl:{{answers:{volunteer['id']}}}:*")] == [1]


def test_an_answer_to_a_skipped_lease_counts_once(limited, api, charity, services):
    client = limited(limit_answers="5/hour")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(2)])
    volunteer = api.volunteer()
    handout = _lease(client, volunteer, project["id"])
    skipped = client.delete(f"/api/v1/leases/{handout['lease']['token']}",
                            headers=volunteer["headers"])
    assert skipped.status_code == 200
    assert error_of(_answer(client, volunteer, handout), 410)["code"] == "lease_skipped"
    assert [int(services.redis.get(key)) for key in
            services.redis.scan_iter(f"bs:rl:{{answers:{volunteer['id']}}}:*")] == [1]


@pytest.mark.parametrize("query", ["", "?from=flask"])
def test_refused_answers_count_too(limited, api, charity, count_answers, services, query):
    """An answer refused before its submit (here a bad label) is counted by a check of
    its own: failing answers are no free way round the limit."""
    client = limited(limit_answers="2/hour")
    project = api.project(charity)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(3)])
    volunteer = api.volunteer()
    handout = _lease(client, volunteer, project["id"])
    for _ in range(2):
        r = client.post(f"/api/v1/tasks/{handout['task']['id']}/answers{query}",
                        headers=volunteer["headers"],
                        json={"lease": handout["lease"]["token"], "answer": {"label": "walrus"}})
        assert error_of(r, 422)["fields"]["answer"]
    _assert_refused(_answer(client, volunteer, handout, query))
    assert count_answers(services) == 0


# --- tokens: calls per user, bad tokens per address ----------------------------------

def test_api_calls_per_user(limited, auth):
    client = limited(limit_api="3/hour")
    charity, other = auth.charity("Penguin Watch"), auth.charity("Seal Trust")
    remaining = [client.get("/api/v1/projects", headers=charity).headers["RateLimit-Remaining"]
                 for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    _assert_refused(client.get("/api/v1/projects", headers=charity))
    assert client.get("/api/v1/projects", headers=other).status_code == 200


def test_bad_tokens_per_address(limited, auth):
    client = limited(limit_auth_failures="3/hour")
    bad = {"Authorization": "Bearer bsv_not-a-token"}
    nearby = {"environ_base": {"REMOTE_ADDR": "203.0.113.7"}}
    project_next = "/api/v1/projects/1/tasks/next"  # the hot path counts its failures too
    for path in (project_next, "/api/v1/projects", "/api/v1/jobs/1"):
        error_of(client.get(path, headers=bad, **nearby), 401)
    for _ in range(2):
        error_of(client.get("/api/v1/jobs/1", **nearby), 401)  # no token: not a guess
    _assert_refused(client.get("/api/v1/jobs/1", headers=bad, **nearby))
    _assert_refused(client.get(project_next, headers=bad, **nearby))
    # a correct token from the same address (a school's NAT) is never locked out
    assert client.get("/api/v1/projects", headers=auth.charity(), **nearby).status_code == 200
    error_of(client.get("/api/v1/jobs/1", headers=bad,
                        environ_base={"REMOTE_ADDR": "198.51.100.9"}), 401)


def test_uploads_per_organisation(limited, auth):
    client = limited(limit_uploads="2/hour")
    charity, colleague = auth.charity("Penguin Watch"), auth.admin("Penguin Watch")
    other = auth.charity("Seal Trust")

    def upload(headers: dict):
        body = {"name": "Cams", "task_type": "classify",
                "config": {"question": "What?", "labels": ["a", "b"]}}
        project = client.post("/api/v1/projects", json=body, headers=headers).json
        return client.post(f"/api/v1/projects/{project['id']}/jobs",
                           json={"items": [{"text": "x"}]}, headers=headers)

    assert upload(charity).status_code == 202
    assert upload(colleague).headers["RateLimit-Remaining"] == "0"
    _assert_refused(upload(charity))  # the organisation's allowance, not the member's
    assert upload(other).status_code == 202


def test_requests_naming_an_email_are_limited_per_address_named_and_per_client(
        limited, make_staff, services, smtp_server):
    """A security review: 'forgot password' had no limit (30 posts, 30 reset
    mails, each voiding the last link) and claiming an email for a volunteer
    told which addresses had accounts, 30 a second. Known or not, an address
    gets the same allowance, so a 429 tells nobody which have an account."""
    import re

    host, port = smtp_server.server_address  # the forgot form is there only with mail
    client = limited(limit_emails="2/hour", limit_emails_client="3/hour",
                     smtp_url=f"smtp://{host}:{port}")
    staff = make_staff()

    def forgot(email: str, address: str = "203.0.113.7"):
        page = client.get("/console/forgot", environ_base={"REMOTE_ADDR": address})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(True)).group(1)
        return client.post("/console/forgot", data={"email": email, "csrf_token": token},
                           environ_base={"REMOTE_ADDR": address})

    assert forgot(staff.email).status_code == 200
    assert forgot(staff.email.upper(), "198.51.100.1").status_code == 200
    refused = forgot(staff.email, "192.0.2.1")  # a third for this address, from anywhere
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert forgot("nobody@example.org").status_code == 200
    assert forgot("nobody@example.org").status_code == 200  # this client's 3rd allowed
    assert forgot("someone@example.org").status_code == 429  # 4th from this client
    # a volunteer keeping their work under an email counts against the same address
    volunteer = client.post("/api/v1/volunteers", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    headers = {"Authorization": f"Bearer {volunteer.json['token']}"}
    body = {"email": "victim@charity.org", "password": "longpassword1",
            "current_password": "longpassword1"}  # ignored until the work is kept
    claims = [client.post("/api/v1/volunteers/me/account", json=body, headers=headers,
                          environ_base={"REMOTE_ADDR": "192.0.2.9"}) for _ in range(3)]
    assert [c.status_code for c in claims] == [201, 201, 429]
    _assert_refused(claims[2])
