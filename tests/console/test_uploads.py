"""The uploads panel of a console project page, through Flask's test client.

Zips, a CSV through its column-mapping step, JSON files and a IIIF manifest
served by a local HTTP server, each split by the real RQ worker; the jobs'
rows (server-rendered and as JSON), problems, Run again, and who may do what.
"""
from __future__ import annotations

import html
import io
import json
import re
import zipfile

import pytest
from PIL import Image
from sqlalchemy import update
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from engine.accounts import staff as accounts
from engine.projects import create_project
from engine.store.models import Job

V3 = "http://iiif.io/api/presentation/3/context.json"


def png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (n * 50 % 256, 90, 200)).save(out, "PNG")
    return out.getvalue()


def photos_zip(count: int = 3, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n in range(count):
            archive.writestr(f"cam/{n}.png", png(n))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


CSV = ("caption,ref,answer,notes\n"
       + "".join(f"photo {n},r{n},{'seal' if n in (1, 4) else ''},note {n}\n" for n in range(7)))


def make_project(services, staff_login, name: str = "Seal cams"):
    who = accounts.find_staff(services, staff_login.email).identity
    return create_project(services, who, {
        "name": name, "task_type": "classify", "min_answers": 2, "max_answers": 3,
        "config": {"question": "What is it?", "labels": ["seal", "rock"]}}).project


@pytest.fixture
def project(services, staff):
    return make_project(services, staff)


@pytest.fixture
def otter(make_staff):
    """Staff of another organisation."""
    return make_staff(org="Otter Trust", email="bo@otters.org")


@pytest.fixture
def other_project(services, otter):
    return make_project(services, otter, "Otter cams")


def page_of(client, project) -> str:
    reply = client.get(f"/console/projects/{project.id}")
    assert reply.status_code == 200
    return reply.get_data(as_text=True)


def send(client, forms, project, files: dict[str, bytes] | None = None, token: bool = True,
         headers: dict | None = None, **fields):
    """POST the panel's form as a browser would (multipart), with the page's CSRF token."""
    url = f"/console/projects/{project.id}"
    data = {**fields, "files": [(io.BytesIO(body), name) for name, body in
                                (files or {}).items()]}
    if token:
        data["csrf_token"] = forms.token(client, url)
    return client.post(url + "/uploads", data=data, content_type="multipart/form-data",
                       headers=headers or {})


def jobs_json(client, project) -> list[dict]:
    reply = client.get(f"/console/projects/{project.id}/jobs.json")
    assert reply.status_code == 200 and reply.mimetype == "application/json"
    return reply.get_json()["jobs"]


def bar_of(html: str, job_id: int) -> str:
    block = re.search(rf'<tbody[^>]*id="job-{job_id}".*?</tbody>\s*(?=<tbody class="job|</table)',
                      html, re.S).group(0)
    return re.search(r'<progress role="progressbar"[^>]*>', block).group(0)


def test_the_panel_offers_files_a_manifest_url_and_gold_without_inline_script(console,
                                                                              project):
    html = page_of(console, project)
    assert re.search(r'<label for="upload-files">Files</label>', html)
    assert re.search(r'<input id="upload-files" name="files" type="file" multiple', html)
    assert 'enctype="multipart/form-data"' in html
    assert ">IIIF manifest URL</label>" in html and 'name="iiif" type="url"' in html
    assert "<button type=\"submit\">Upload</button>" in html
    assert "Gold items:" in html and "<code>gold</code> column" in html
    assert "No uploads yet." in html
    assert "/static/console/uploads.js" in html
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all("src=" in s for s in scripts), scripts  # a strict CSP is coming
    assert "http-equiv" not in html.lower()
    for static in ("/static/console/uploads.js", "/static/console.css"):
        with console.get(static) as reply:
            assert reply.status_code == 200


def test_a_zip_becomes_a_job_whose_row_shows_every_number_and_problem(
        services, console, forms, project, work):
    data = photos_zip(3, {"cam/again.png": png(0), "cam/notes.txt": b"x"})
    reply = send(console, forms, project, {"photos.zip": data})
    assert reply.status_code == 302
    assert reply.headers["Location"].endswith(f"/console/projects/{project.id}#uploads")
    [queued] = jobs_json(console, project)
    assert (queued["file"], queued["state"], queued["percent"]) == ("photos.zip", "queued", 0)
    html = page_of(console, project)
    assert "Upload started: photos.zip" in html
    assert 'aria-valuenow="0"' in bar_of(html, queued["id"])
    assert "Refresh</a>" in html

    work()
    [done] = jobs_json(console, project)
    assert done["state"] == "done" and done["finished"] and done["percent"] == 100
    assert (done["items_read"], done["items_total"], done["tasks_made"], done["duplicates"],
            done["problems_count"]) == (5, 5, 3, 1, 2)
    assert 'role="progressbar"' in done["html"] and 'aria-valuenow="100"' in done["html"]
    html = page_of(console, project)
    bar = bar_of(html, done["id"])
    assert 'aria-valuenow="100"' in bar and 'aria-label="Progress of photos.zip"' in bar
    row = re.search(rf'id="job-{done["id"]}".*?</tbody>', html, re.S).group(0)
    assert '<span class="job-state">done</span>' in row
    assert "<td>cam/notes.txt</td><td>not an image file</td>" in row
    assert "<td>cam/again.png</td><td>already in this project</td>" in row
    with services.db.session() as session:
        assert session.get(Job, done["id"]).filename == "photos.zip"


def test_a_csv_is_imported_through_its_column_mapping_step(services, console, forms, project,
                                                           work):
    reply = send(console, forms, project, {"seals.csv": CSV.encode()})
    assert reply.status_code == 302
    mapping_url = reply.headers["Location"]
    assert re.fullmatch(rf"/console/projects/{project.id}/uploads/[\w-]{{22}}", mapping_url)
    assert jobs_json(console, project) == []  # nothing is split before the columns are chosen
    assert "Match the columns of seals.csv" in page_of(console, project)

    page = console.get(mapping_url).get_data(as_text=True)
    assert "The first 5 rows of seals.csv" in page
    assert "<td>photo 4</td>" in page and "photo 5" not in page  # a preview, not the file
    for name in ("image", "text", "thumb", "id", "gold"):
        assert f'<select id="map-{name}" name="map.{name}"' in page
    assert '<option value="caption">caption</option>' in page
    assert "Start import" in page

    nothing = forms.post(console, mapping_url, {})
    assert nothing.status_code == 422
    assert "choose the column of at least one field" in nothing.get_data(as_text=True)
    forged = forms.post(console, mapping_url, {"map.text": "caption", "map.gold": "answers"})
    assert forged.status_code == 422
    forged_page = forged.get_data(as_text=True)
    assert re.search(r'<p class="error" id="map-gold-error">no column named', forged_page)
    assert 'aria-invalid="true"' in forged_page

    started = forms.post(console, mapping_url, {"map.text": "caption", "map.id": "ref",
                                                "map.gold": "answer"})
    assert started.status_code == 302
    assert started.headers["Location"].endswith(f"/console/projects/{project.id}#uploads")
    # imported: a second click on "Start import" (or Back) goes to its progress
    again = forms.post(console, mapping_url, {"map.text": "caption", "map.id": "ref"},
                       page=started.headers["Location"])
    assert again.status_code == 302
    assert again.headers["Location"].endswith(f"/console/projects/{project.id}#uploads")
    assert "no longer waiting for its columns: it was imported (its progress shows below)" \
        in page_of(console, project)
    assert console.get(mapping_url).status_code == 302
    work()
    [done] = jobs_json(console, project)
    assert (done["file"], done["kind"], done["state"]) == ("seals.csv", "csv", "done")
    assert (done["tasks_made"], done["gold"], done["problems_count"]) == (7, 2, 0)
    assert '<td class="num" data-field="gold">2</td>' in page_of(console, project)


def test_starting_one_csv_while_another_waits_says_where_each_stands(console, forms,
                                                                      project, work):
    """The import goes on to the column page of the CSV still waiting, which
    shows no progress: the message says so, and which file is next."""
    first = send(console, forms, project, {"seals.csv": CSV.encode()}).headers["Location"]
    second = send(console, forms, project, {"otters.csv": CSV.encode()}).headers["Location"]
    started = forms.post(console, second, {"map.text": "caption", "map.id": "ref"})
    assert started.status_code == 302 and started.headers["Location"] == first
    page = console.get(first).get_data(as_text=True)
    assert "Upload started: otters.csv. Its progress shows on the project&#39;s page. " \
        "Next, match the columns of seals.csv." in page
    assert "Its progress shows below" not in page
    last = forms.post(console, first, {"map.text": "caption", "map.id": "ref"})
    assert last.headers["Location"].endswith(f"/console/projects/{project.id}#uploads")
    assert "Upload started: seals.csv. Its progress shows below." in page_of(console, project)


def test_a_staged_csv_is_previewed_from_its_first_whole_lines(console, forms, project,
                                                              monkeypatch):
    """The mapping page reads a staged CSV's first PREVIEW_BYTES (one ranged read
    from a bucket), cut after its last whole line: a cut inside a two-byte
    character, or inside a row, never shows. A first line longer than that is
    read whole."""
    from engine.intake import staging

    rows = "".join(f"Mémé {n},ref{n}\n" for n in range(40))
    sent = send(console, forms, project, {"long.csv": f"caption,ref\n{rows}".encode()})
    mapping_url = sent.headers["Location"]
    monkeypatch.setattr(staging, "PREVIEW_BYTES", 45)  # cuts "é" of the 3rd row in two
    page = console.get(mapping_url).get_data(as_text=True)
    assert "<td>Mémé 1</td>" in page and "Mémé 2" not in page
    assert "<td>Mémé 0</td>" in page
    monkeypatch.setattr(staging, "PREVIEW_BYTES", 5)  # inside the header: the whole file
    page = console.get(mapping_url).get_data(as_text=True)
    assert "<td>Mémé 4</td>" in page and "Mémé 5" not in page


def test_a_staged_csv_can_be_discarded(console, forms, project):
    mapping_url = send(console, forms, project, {"seals.csv": CSV.encode()}).headers["Location"]
    token = mapping_url.rsplit("/", 1)[1]
    reply = forms.post(console, f"{mapping_url}/discard", {}, page=mapping_url)
    assert reply.status_code == 302
    assert console.get(mapping_url).status_code == 302  # to the project: nothing waits
    assert token not in page_of(console, project)


def test_json_files_and_several_files_at_once(console, forms, project, work):
    items = [{"text": "a seal", "id": "s1", "gold": "seal"}, {"text": "a rock", "id": "s2"}]
    reply = send(console, forms, project, {"items.json": json.dumps(items).encode(),
                                           "photos.zip": photos_zip(2)})
    assert reply.status_code == 302
    work()
    jobs = {j["file"]: j for j in jobs_json(console, project)}
    assert set(jobs) == {"items.json", "photos.zip"}
    assert (jobs["items.json"]["kind"], jobs["items.json"]["tasks_made"],
            jobs["items.json"]["gold"]) == ("items", 2, 1)
    assert jobs["photos.zip"]["tasks_made"] == 2
    assert all(j["state"] == "done" for j in jobs.values())
    html = page_of(console, project)
    assert len(re.findall(r'<progress role="progressbar"[^>]*aria-label="Progress of', html)) == 2


def test_a_iiif_manifest_url_becomes_a_job(console, forms, project, museum, work):
    url = museum.manifest()
    assert send(console, forms, project, iiif=url).status_code == 302
    work()
    [done] = jobs_json(console, project)
    assert (done["kind"], done["file"], done["state"], done["tasks_made"]) == (
        "iiif", url, "done", 2)
    assert "IIIF manifest" in done["html"]


def test_what_cannot_be_used_is_named_and_the_rest_goes_on(console, forms, project, work):
    reply = send(console, forms, project, {"notes.txt": b"hello", "broken.zip": b"not a zip",
                                           "items.json": b'[{"text": "ok"}]'})
    assert reply.status_code == 422
    html = reply.get_data(as_text=True)
    assert "notes.txt" in html and "is not a .zip, .csv or .json file" in html
    assert "broken.zip:" in html
    assert 'id="upload-files-error"' in html and "Upload started: items.json" in html
    assert [j["file"] for j in jobs_json(console, project)] == ["items.json"]

    empty = send(console, forms, project)
    assert empty.status_code == 422
    assert "choose a file (zip, CSV or JSON) or give a IIIF manifest URL" in empty.get_data(
        as_text=True)
    bad_url = send(console, forms, project, iiif="ftp://example.org/m.json")
    assert bad_url.status_code == 422
    assert re.search(r'id="f-iiif-error">iiif must be the http\(s\) URL',
                     bad_url.get_data(as_text=True))
    as_json = send(console, forms, project, headers={"Accept": "application/json"})
    assert as_json.status_code == 422
    assert as_json.get_json()["errors"]["files"].startswith("choose a file")


def test_uploads_js_gets_json_and_is_sent_to_the_mapping_step_for_a_csv(console, forms,
                                                                        project):
    reply = send(console, forms, project, {"seals.csv": CSV.encode(), "a.json": b'[{"text":"x"}]'},
                 headers={"Accept": "application/json"})
    assert reply.status_code == 200
    body = reply.get_json()
    assert len(body["jobs"]) == 1 and body["errors"] == {}
    assert re.fullmatch(rf"/console/projects/{project.id}/uploads/[\w-]{{22}}", body["next"])


def test_a_job_running_shows_how_far_reading_got(services, console, forms, project):
    send(console, forms, project, {"items.json": b'[{"text": "x"}]'})
    [job] = jobs_json(console, project)
    with services.db.session() as session:
        session.execute(update(Job).where(Job.id == job["id"]).values(
            state="running", items_total=2000, items_read=800, tasks_made=750, duplicates=3))
    [running] = jobs_json(console, project)
    assert (running["state"], running["percent"], running["finished"]) == ("running", 40, False)
    html = page_of(console, project)
    assert 'aria-valuenow="40"' in bar_of(html, job["id"])
    assert '<td class="num" data-field="read">800 / 2,000</td>' in html
    assert 'data-active="true"' in html
    one = console.get(f"/console/projects/{project.id}/jobs/{job['id']}.json").get_json()
    assert (one["items_read"], one["tasks_made"], one["duplicates"]) == (800, 750, 3)


def test_a_failed_job_shows_its_error_and_runs_again(services, console, forms, project, work):
    send(console, forms, project, {"photos.zip": photos_zip(3)})
    [job] = jobs_json(console, project)
    stored = services.settings.uploads_path / f"job-{job['id']}.zip"
    stored.write_bytes(b"spoilt")
    work()
    [failed] = jobs_json(console, project)
    assert failed["state"] == "failed" and failed["error"] and failed["percent"] < 100
    html = page_of(console, project)
    row = re.search(rf'id="job-{job["id"]}".*?</tbody>\s*</table>', html, re.S).group(0)
    assert "This job failed:" in row and failed["error"] in row
    rerun_url = f"/console/projects/{project.id}/jobs/{job['id']}/rerun"
    assert f'action="{rerun_url}"' in row and ">Run again</button>" in row

    stored.write_bytes(photos_zip(3))  # the cause is fixed
    reply = forms.post(console, rerun_url, {}, page=f"/console/projects/{project.id}")
    assert reply.status_code == 302
    assert "runs again" in page_of(console, project)
    assert jobs_json(console, project)[0]["state"] == "queued"
    again = forms.post(console, rerun_url, {}, page=f"/console/projects/{project.id}")
    assert again.status_code == 302
    assert "only a failed job" in page_of(console, project)
    work()
    [done] = jobs_json(console, project)
    assert done["state"] == "done" and done["tasks_made"] == 3 and done["error"] is None


def test_another_organisations_project_is_404_on_every_route(app, console, forms, project,
                                                             otter, other_project):
    signed_in = app.test_client()
    forms.sign_in(signed_in, otter)
    otter = signed_in
    staged = send(otter, forms, other_project, {"o.csv": CSV.encode()}).headers["Location"]
    send(otter, forms, other_project, {"o.json": b'[{"text": "x"}]'})
    [theirs] = jobs_json(otter, other_project)
    send(console, forms, project, {"mine.json": b'[{"text": "x"}]'})
    [mine] = jobs_json(console, project)
    token = forms.token(console, f"/console/projects/{project.id}")
    pid, jid = other_project.id, theirs["id"]
    gets = [f"/console/projects/{pid}", f"/console/projects/{pid}/jobs.json",
            f"/console/projects/{pid}/jobs/{jid}.json", staged,
            f"/console/projects/{project.id}/jobs/{jid}.json",  # their job under my project
            f"/console/projects/{pid}/jobs/{mine['id']}.json"]  # my job under theirs
    posts = [f"/console/projects/{pid}/uploads", staged, f"{staged}/discard",
             f"/console/projects/{pid}/jobs/{jid}/rerun",
             f"/console/projects/{project.id}/jobs/{jid}/rerun"]
    for url in gets:
        reply = console.get(url)
        assert reply.status_code == 404, url
        assert "Page not found" in reply.get_data(as_text=True)  # the branded page
    for url in posts:
        reply = console.post(url, data={"csrf_token": token, "map.text": "caption",
                                        "files": [(io.BytesIO(b"[]"), "x.json")]},
                             content_type="multipart/form-data")
        assert reply.status_code == 404, url
    assert otter.get(staged).status_code == 200  # still theirs, untouched
    assert [j["id"] for j in jobs_json(otter, other_project)] == [jid]


def test_a_post_without_its_csrf_token_is_refused(console, forms, project):
    reply = send(console, forms, project, {"items.json": b'[{"text": "x"}]'}, token=False)
    assert reply.status_code == 400
    assert "form has expired" in reply.get_data(as_text=True)
    assert jobs_json(console, project) == []
    mapping_url = send(console, forms, project, {"seals.csv": CSV.encode()}).headers["Location"]
    assert console.post(mapping_url, data={"map.text": "caption"}).status_code == 400
    assert console.post(f"{mapping_url}/discard").status_code == 400
    send(console, forms, project, {"items.json": b'[{"text": "x"}]'})
    [job] = jobs_json(console, project)
    rerun_url = f"/console/projects/{project.id}/jobs/{job['id']}/rerun"
    assert console.post(rerun_url).status_code == 400
    assert jobs_json(console, project)[0]["state"] == "queued"


def test_a_too_large_upload_gets_a_clear_413_page(app, console, forms, project):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    boundary, body = encode_multipart({
        "csrf_token": forms.token(console, f"/console/projects/{project.id}"),
        "files": FileStorage(io.BytesIO(b"x" * (1024 * 1024 + 10)), "big.zip")})

    def send_big(**headers):
        return console.post(f"/console/projects/{project.id}/uploads", data=body,
                            content_type=f"multipart/form-data; boundary={boundary}",
                            headers=headers)

    reply = send_big()
    assert reply.status_code == 413
    html = reply.get_data(as_text=True)
    assert "This upload is larger than 1 MB, the most the server takes at once" in html
    assert "Back to the console" in html
    as_json = send_big(Accept="application/json")
    assert as_json.status_code == 413
    assert "larger than 1 MB" in as_json.get_json()["errors"]["files"]
    assert jobs_json(console, project) == []
    assert 'data-max-bytes="1048576"' in page_of(console, project)


def test_a_refused_json_upload_says_which_items_and_why(console, forms, project):
    """It said only "items.json: 2 item(s) are not valid" (a charity console audit)."""
    items = json.dumps([{"text": "a", "gold": "walrus"}, {"text": "b"},
                        {"text": "c", "colour": "red"}]).encode()
    reply = send(console, forms, project, {"items.json": items})
    page = console.get(reply.headers["Location"]).get_data(as_text=True) \
        if reply.status_code == 302 else reply.get_data(as_text=True)
    text = html.unescape(re.sub(r"\s+", " ", page))
    assert "items.json: 2 item(s) are not valid (item 1: gold:" in text, text[:3000]
    assert "item 3: colour: Unknown field." in text


def test_the_column_page_offers_columns_named_like_fields_whatever_their_case(console, forms,
                                                                             project):
    """A spreadsheet's "ID", "Text", "Gold" were offered for nothing (a charity
    console audit); two columns "text" and "TEXT" leave the choice to the person."""
    sent = send(console, forms, project, {"sheet.csv": b"ID,Text,Gold\nr1,a seal,seal\n"})
    page = console.get(sent.headers["Location"]).get_data(as_text=True)
    for field, column in (("id", "ID"), ("text", "Text"), ("gold", "Gold")):
        select = re.search(rf'<select id="map-{field}".*?</select>', page, re.S).group(0)
        assert re.search(rf'<option value="{column}"[^>]*selected', select), select
    sent = send(console, forms, project, {"two.csv": b"text,TEXT\na,b\n"})
    page = console.get(sent.headers["Location"]).get_data(as_text=True)
    assert "two.csv" in page and "<th" in page and ">TEXT<" in page
    select = re.search(r'<select id="map-text".*?</select>', page, re.S).group(0)
    assert "selected" not in select.replace('value="" selected', "")


def test_an_archived_project_offers_no_upload_form(console, forms, project, services, staff):
    """The form was still there, and its upload refused (a charity console audit)."""
    from engine import lifecycle
    from engine.accounts.staff import find_staff

    assert 'data-upload-form' in page_of(console, project)
    who = find_staff(services, staff.email).identity
    lifecycle.move(services, who, project.id, "archive")
    page = page_of(console, project)
    assert 'data-upload-form' not in page
    assert "This project is archived: its items and results stay as they are, so it takes " \
        "no more uploads." in page
