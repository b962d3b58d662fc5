"""Issue 14.6/14.7: the headers a public site needs on every response (pages, API,
the volunteer's hot path, media, static files, errors), framing only where
Settings.frame_ancestors allows it, HSTS only over HTTPS (and X-Forwarded-Proto
believed only behind a configured proxy), and requests for an untrusted Host
refused so that no absolute URL echoes it."""
from __future__ import annotations

import io
import re

from PIL import Image

from web.hot_path import HotPath

CLASSIFY = {"question": "Which?", "labels": ["seal", "penguin"]}
ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
          "Cross-Origin-Opener-Policy": "same-origin"}




def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:])
            for part in policy.split(";") if part.strip()}


def assert_secured(response, ancestors: str = "'none'") -> None:
    for name, value in ALWAYS.items():
        assert response.headers.get(name) == value, (name, response.request.path)
    assert "camera=()" in response.headers["Permissions-Policy"]
    csp = directives(response)
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'" and csp["form-action"] == "'self'"
    assert csp["img-src"].split()[:3] == ["'self'", "data:", "https:"]
    assert csp["frame-ancestors"] == ancestors, response.request.path
    if ancestors == "'none'":
        assert response.headers["X-Frame-Options"] == "DENY"


def hot_path_of(app) -> HotPath:
    """The HotPath among the app's WSGI layers, whatever wraps it."""
    layer = app.wsgi_app
    while not isinstance(layer, HotPath):
        layer = getattr(layer, "wsgi", None) or layer.app
    return layer


def project_with_task(client, auth, work) -> tuple[dict, dict]:
    charity = auth.charity()
    project = client.post("/api/v1/projects", headers=charity, json={
        "name": "Seals", "task_type": "classify", "config": CLASSIFY}).json
    r = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=charity,
                    json={"items": [{"text": "a"}, {"text": "b"}]})
    assert r.status_code == 202, r.json
    work()
    return project, charity


def a_media_ref(services) -> str:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return services.media.store(out.getvalue(), "png")


def test_every_kind_of_response_carries_the_headers(app, client, auth, work, services):
    project, _ = project_with_task(client, auth, work)
    volunteer = auth.volunteer()
    hot_path = hot_path_of(app)
    served = hot_path.served
    responses = [
        client.get("/"), client.get(f"/projects/{project['id']}"),
        client.get("/api/v1/openapi.json"), client.get("/api/v1/projects/999999"),
        client.get("/no-such-page"), client.get("/static/style.css"),
        client.get(a_media_ref(services)), client.get("/task-types/tag.js"),
        client.get("/console/login"),
        # the volunteer's two calls, served by web.hot_path without Flask
        client.get(f"/api/v1/projects/{project['id']}/tasks/next", headers=volunteer),
        client.post("/api/v1/tasks/999999/answers", headers=volunteer,
                    json={"lease": "x", "answer": {"label": "seal"}}),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 404, 200, 200, 200, 200,
                                                  200, 410]
    assert hot_path.served == served + 2
    for response in responses:
        assert_secured(response)
        assert "Strict-Transport-Security" not in response.headers  # plain http
        response.close()  # static files and media are streamed from open files


def test_no_page_needs_an_inline_script_or_style(client, auth, work, registry):
    """The policy has no 'unsafe-inline': every page must work without it."""
    charity = auth.charity()
    pages = [client.get("/").get_data(as_text=True)]
    for name in registry.names():
        example = registry.get(name).example()
        project = client.post("/api/v1/projects", headers=charity, json={
            "name": name, "task_type": name, "config": example["config"]}).json
        page = client.get(f"/projects/{project['id']}").get_data(as_text=True)
        assert f"/task-types/{name}.js" in page or name == "classify"
        pages.append(page)
    for html in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html)


def test_a_task_types_files_are_served_and_cacheable(client):
    r = client.get("/task-types/locate.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert b"window.bitesizeTaskTypes" in r.data
    again = client.get("/task-types/locate.js", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/task-types/locate.css").mimetype == "text/css"
    assert client.get("/task-types/classify.js").status_code == 404  # it has none
    assert client.get("/task-types/nope.js").status_code == 404


def test_framing_is_refused_everywhere_by_default(client):
    for path in ("/", "/projects/1", "/console/login", "/api/v1/openapi.json"):
        response = client.get(path)
        assert directives(response)["frame-ancestors"] == "'none'"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_frame_ancestors_lets_a_charity_frame_the_volunteer_pages_only(make_client, auth):
    client = make_client(frame_ancestors="https://penguins.org, https://www.penguins.org "
                                         "x;script-src")  # no directive slips in
    for path in ("/", "/projects/1"):
        response = client.get(path)
        assert directives(response)["frame-ancestors"] == \
            "https://penguins.org https://www.penguins.org"
        assert "X-Frame-Options" not in response.headers  # it cannot name origins
    for path in ("/console/login", "/api/v1/openapi.json", "/static/style.css",
                 "/projects/1/../../console/login"):
        with client.get(path) as response:
            assert_secured(response)


def test_the_consoles_preview_may_be_framed_by_the_console_only(client, make_staff):
    login = make_staff()
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/console/login").get_data(as_text=True))[1]
    signed_in = client.post("/console/login", data={
        "email": login.email, "password": login.password, "csrf_token": token})
    assert signed_in.status_code == 302
    assert_secured(signed_in)  # a redirect too
    response = client.get("/console/preview?task_type=classify")
    assert response.status_code == 200
    assert directives(response)["frame-ancestors"] == "'self'"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = client.get("/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "http:" not in directives(secure)["img-src"].split()


def test_x_forwarded_proto_is_believed_only_behind_a_configured_proxy(make_client):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    direct = make_client()
    assert "Strict-Transport-Security" not in direct.get("/", headers=forwarded).headers
    proxied = make_client(behind_proxy=1)
    assert "Strict-Transport-Security" in proxied.get("/", headers=forwarded).headers
    assert "Strict-Transport-Security" not in proxied.get("/").headers


def test_an_untrusted_host_gets_a_400_everywhere(make_client, auth):
    client = make_client(trusted_hosts="bitesize.example, .charity.example",
                         public_url="https://volunteers.example.org")
    evil = {"Host": "evil.example"}
    api = client.get("/api/v1/openapi.json", headers=evil)
    assert api.status_code == 400 and api.json["error"]["code"] == "bad_host"
    hot = client.get("/api/v1/projects/1/tasks/next", headers={**evil, **auth.volunteer()})
    assert hot.status_code == 400 and hot.json["error"]["code"] == "bad_host"
    page = client.get("/", headers=evil)
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert_secured(page)
    assert_secured(api)
    for host in ("bitesize.example", "bitesize.example:8443", "www.charity.example",
                 "volunteers.example.org"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host


def test_absolute_urls_never_carry_an_untrusted_host(make_client, auth, work):
    client = make_client(trusted_hosts="bitesize.example")
    charity = auth.charity()
    project = client.post("/api/v1/projects", headers={**charity, "Host": "bitesize.example"},
                          json={"name": "P", "task_type": "classify", "config": CLASSIFY}).json
    url = f"/api/v1/projects/{project['id']}/annotations"
    good = client.get(url, headers={**charity, "Host": "bitesize.example"})
    assert good.get_json(force=True)["id"].startswith("http://bitesize.example/")
    evil = client.get(url, headers={**charity, "Host": "evil.example"})
    assert evil.status_code == 400 and b"evil.example" not in evil.data


def test_any_host_is_answered_when_none_is_configured(client):
    """Development and the demo: trusted_hosts empty means no check."""
    assert client.get("/", headers={"Host": "anything.example"}).status_code == 200
