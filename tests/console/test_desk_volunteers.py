"""The quality desk's volunteer page and newcomers' spot-check through the
console's forms (CSRF and all): each action flashes what it did and writes
the audit log with the admin's reason; the engine's refusals come back as a
flashed error with their 4xx status; only admins of the project's
organisation (and platform admins) get in."""
from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from engine.accounts.staff import find_staff
from engine.identity import Identity, create_volunteer
from engine.intake.jobs import create_job, run_job
from engine.projects import create_project
from engine.quality import moderation
from engine.store.models import AuditEntry, VolunteerStat
from engine.volunteering import next_task, submit_answer

ADMIN_EMAIL = "ada@penguins.org"


@pytest.fixture
def admin(make_staff):
    return make_staff(email=ADMIN_EMAIL, role="admin")


@pytest.fixture
def desk(app, admin, forms):
    """A test client signed in as an admin of Penguin Watch."""
    client = app.test_client()
    forms.sign_in(client, admin)
    return client


def identity(services, login) -> Identity:
    return find_staff(services, login.email).identity


def answer_all(services, project, label="a", count=None) -> Identity:
    """A new volunteer answers `count` tasks (every one by default) with `label`."""
    who = Identity("volunteer", create_volunteer(services)[0])
    done = 0
    while (count is None or done < count) and (
            handout := next_task(services, who, project.id)) is not None:
        submit_answer(services, who, handout.task_id, handout.lease, {"label": label})
        done += 1
    return who


@pytest.fixture
def colony(services, admin):
    """Penguin Watch's project of four texts; two volunteers agree on each, so
    all four retire; blocking one reopens them all."""
    project = create_project(services, identity(services, admin), {
        "name": "Penguin cams", "task_type": "classify",
        "config": {"question": "Penguin?", "labels": ["a", "b"]},
        "min_answers": 2, "max_answers": 3, "confidence": 0.5,
        "quality": {"quarantine": False, "trusted_after_minutes": 0}}).project
    run_job(services, create_job(services, identity(services, admin), project.id,
                                 items=[{"text": f"t{n}"} for n in range(4)]).id)
    subject, other = answer_all(services, project), answer_all(services, project)
    return {"project": project, "subject": subject.id, "other": other.id}


def page_of(colony) -> str:
    return f"/console/desk/projects/{colony['project'].id}/volunteers/{colony['subject']}"


def text(reply) -> str:
    return reply.get_data(as_text=True)


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-(\w+)">([^<]*)</p>', html)


def audit_entries(services, action: str) -> list[AuditEntry]:
    with services.db.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_the_page_shows_numbers_chart_and_last_answers(desk, colony):
    reply = desk.get(page_of(colony))
    html = text(reply)
    assert reply.status_code == 200
    assert f"Volunteer {colony['subject']} in Penguin cams" in html
    assert re.search(r'id="stat-answers">4<', html)
    assert 'id="volunteer-flags">none<' in html and "answers count" in html
    assert 'role="img"' in html and "Answers per day</title>" in html
    assert re.search(r"<details class=\"chart-data\">.*<td class=\"num\">4</td>", html, re.S)
    assert html.count("agrees</span> with the result") == 4  # every task merged as "a"
    assert "Every project of Penguin Watch" in html
    assert "Everywhere on this platform" not in html  # an organisation's admin
    assert ">Quarantine</button>" in html and ">Clear</button>" not in html


def test_block_in_every_project_of_the_organisation(services, desk, forms, colony, admin):
    url = page_of(colony)
    reply = forms.post(desk, url + "/block", {"scope": "organisation", "reason": "a script"},
                       page=url)
    assert reply.status_code == 302 and reply.headers["Location"].endswith(url)
    html = text(desk.get(url))
    [entry] = audit_entries(services, "block")
    reopened = entry.detail["tasks_reopened"]
    assert reopened == 4
    assert ("info", f"Volunteer {colony['subject']} blocked in every project of Penguin "
            f"Watch; {reopened} tasks reopened for more answers") in flashes(html)
    assert (entry.reason, entry.scope, entry.user_id, entry.volunteer_id) == (
        "a script", "organisation", admin.id, colony["subject"])
    assert ">Unblock</button>" in html and ">Block</button>" not in html


def test_an_organisation_block_is_shown_and_unblocked_as_a_whole(services, desk, forms,
                                                                  colony, admin):
    """The page says the block covers every project of the organisation, later
    ones too, and its unblock form offers no "this project" (the engine would
    refuse it: 409)."""
    moderation.block(services, identity(services, admin), colony["project"].id,
                     colony["subject"], "organisation")
    url = page_of(colony)
    html = text(desk.get(url))
    assert re.search(r'id="volunteer-organisation-block">Blocked in every project of '
                     r'Penguin Watch, those it makes later too', html)
    assert 'id="unblock-scope-project"' not in html
    assert re.search(r'value="organisation" id="unblock-scope-organisation" checked', html)
    reply = forms.post(desk, url + "/unblock", {"scope": "project"}, page=url)
    assert reply.status_code == 409
    assert "blocked in every project of this organisation" in text(reply)
    forms.post(desk, url + "/unblock", {"scope": "organisation"}, page=url)
    html = text(desk.get(url))
    assert "volunteer-organisation-block" not in html and ">Block</button>" in html


def test_unblock_in_this_project(services, desk, forms, colony, admin):
    moderation.block(services, identity(services, admin), colony["project"].id,
                     colony["subject"])
    url = page_of(colony)
    forms.post(desk, url + "/unblock", {"scope": "project", "reason": "a mistake"}, page=url)
    [(kind, message)] = flashes(text(desk.get(url)))
    assert kind == "info" and message.startswith(
        f"Volunteer {colony['subject']} unblocked in Penguin cams: their answers count again")
    [entry] = audit_entries(services, "unblock")
    assert (entry.reason, entry.scope, entry.user_id) == ("a mistake", "project", admin.id)
    with services.db.session() as session:
        assert not session.get(VolunteerStat, (colony["project"].id, colony["subject"])).blocked


def test_quarantine_then_clear(services, desk, forms, colony, admin):
    url = page_of(colony)
    forms.post(desk, url + "/quarantine", {"reason": "all the same label"}, page=url)
    html = text(desk.get(url))
    assert ("info", f"Volunteer {colony['subject']} quarantined: their answers no longer "
            "count until someone blocks or clears them") in flashes(html)
    assert 'id="volunteer-reasons">quarantined by hand<' in html
    assert ">Clear</button>" in html and ">Quarantine</button>" not in html
    [entry] = audit_entries(services, "quarantine")
    assert (entry.reason, entry.user_id) == ("all the same label", admin.id)

    forms.post(desk, url + "/clear", {"reason": "checked by hand"}, page=url)
    [(kind, message)] = flashes(text(desk.get(url)))
    assert kind == "info" and message.startswith(
        f"Volunteer {colony['subject']} cleared: their answers count again")
    [entry] = audit_entries(services, "clear")
    assert (entry.reason, entry.user_id) == ("checked by hand", admin.id)


def test_clear_of_someone_not_quarantined_is_a_flashed_409(services, desk, forms, colony):
    url = page_of(colony)
    reply = forms.post(desk, url + "/clear", {"reason": "why not"}, page=url)
    assert reply.status_code == 409
    assert ("error", f"Not done: volunteer {colony['subject']} is not quarantined here.") \
        in flashes(text(reply))
    assert audit_entries(services, "clear") == []


def test_an_organisation_admin_may_not_block_platform_wide(services, desk, forms, colony):
    url = page_of(colony)
    reply = forms.post(desk, url + "/block", {"scope": "platform", "reason": "spam"}, page=url)
    assert reply.status_code == 403
    assert ("error", "Not done: only a platform admin may act platform-wide.") \
        in flashes(text(reply))
    assert audit_entries(services, "block") == []
    with services.db.session() as session:
        assert session.get(VolunteerStat, (colony["project"].id, colony["subject"])) is None


def test_a_platform_admin_blocks_everywhere(services, app, forms, make_staff, colony):
    ops = make_staff(org="Bitesize Ops", email="ops@bitesize.example", role="platform-admin")
    client = app.test_client()
    forms.sign_in(client, ops)
    url = page_of(colony)
    assert "Everywhere on this platform" in text(client.get(url))
    forms.post(client, url + "/block", {"scope": "platform", "reason": "spam"}, page=url)
    html = text(client.get(url))
    assert ("info", f"Volunteer {colony['subject']} blocked everywhere on this platform; "
            "4 tasks reopened for more answers") in flashes(html)
    assert "Blocked everywhere on this platform" in html
    assert 'id="unblock-scope-platform"' in html
    assert 'id="unblock-scope-project"' not in html
    assert 'id="unblock-scope-organisation"' not in html


def test_an_organisation_admin_cannot_unblock_a_platform_block(services, app, desk, make_staff,
                                                             colony):
    """No unblock form they could only be refused by: the page says who can."""
    ops = make_staff(org="Bitesize Ops", email="ops@bitesize.example", role="platform-admin")
    moderation.block(services, identity(services, ops), colony["project"].id,
                     colony["subject"], "platform")
    html = text(desk.get(page_of(colony)))
    assert "only a platform admin can unblock them" in html
    assert "/unblock" not in html and 'id="unblock-scope-platform"' not in html
    # a block of their own, which a platform unblock leaves, is theirs to make
    assert 'id="block-scope-project"' in html and 'id="block-scope-platform"' not in html


def test_a_charitys_own_block_outlives_a_platform_unblock_and_the_pages_say_so(
        services, app, desk, forms, make_staff, colony):
    ops = make_staff(org="Bitesize Ops", email="ops@bitesize.example", role="platform-admin")
    url, subject = page_of(colony), colony["subject"]
    moderation.block(services, identity(services, ops), colony["project"].id, subject,
                     "platform")
    forms.post(desk, url + "/block", {"scope": "organisation", "reason": "ours too"}, page=url)
    client = app.test_client()
    forms.sign_in(client, ops)
    html = text(client.get(url))
    assert "This block stands when the platform's ends." in html  # the organisation's
    assert "A platform unblock ends the platform's block only" in html
    forms.post(client, url + "/unblock", {"scope": "platform", "reason": "appeal"}, page=url)
    html = text(client.get(url))
    assert ("info", f"Volunteer {subject}: the platform's block ended, but they stay blocked "
            "in Penguin cams by a block of its own or of Penguin Watch; no task merged again"
            ) in [(kind, unescape(said)) for kind, said in flashes(html)]
    assert "Blocked everywhere on this platform" not in html
    assert 'id="volunteer-organisation-block"' in html
    assert [e.detail.get("still_blocked") for e in audit_entries(services, "unblock")] \
        == ["organisation"]


def test_a_bad_scope_or_a_missing_csrf_token_changes_nothing(services, desk, forms, colony):
    url = page_of(colony)
    reply = forms.post(desk, url + "/block", {"scope": "galaxy"}, page=url)
    assert reply.status_code == 422 and flashes(text(reply))[0][0] == "error"
    assert desk.post(url + "/block", data={"scope": "project"}).status_code == 400
    assert audit_entries(services, "block") == []


def test_only_admins_of_the_organisation_get_in(services, app, console, forms, make_staff,
                                                colony):
    url = page_of(colony)
    newcomers = f"/console/projects/{colony['project'].id}/newcomers"
    assert console.get(url).status_code == 403  # a charity member of Penguin Watch
    assert console.get(newcomers).status_code == 403
    token = forms.token(console, "/console/")
    for path in (url + "/block", f"{newcomers}/{colony['subject']}/checked"):
        assert console.post(path, data={"csrf_token": token}).status_code == 403
    seals = make_staff(org="Seal Count", email="sam@seals.org", role="admin")
    client = app.test_client()
    forms.sign_in(client, seals)
    assert client.get(url).status_code == 404
    assert client.get(newcomers).status_code == 404
    assert audit_entries(services, "block") == [] and audit_entries(services, "spot_check") == []


def test_a_volunteer_with_nothing_here_is_a_404(services, desk, colony):
    stranger = create_volunteer(services)[0]
    assert desk.get(f"/console/desk/projects/{colony['project'].id}/volunteers/{stranger}") \
        .status_code == 404


def newcomer_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<h2 id="newcomer-(\d+)">', html)]


def test_newcomers_looks_right_takes_them_off_the_list(services, desk, forms, colony, admin):
    url = f"/console/projects/{colony['project'].id}/newcomers"
    html = text(desk.get(url))
    assert newcomer_ids(html) == [colony["other"], colony["subject"]]  # newest first
    assert html.count('<td class="value">a</td>') == 8  # two volunteers, four answers each
    assert html.count('class="verdict verdict-agrees">agrees') == 8
    assert "t0" in html and "result: a" in html
    reply = forms.post(desk, f"{url}/{colony['other']}/checked", {"note": "fine"}, page=url)
    assert reply.status_code == 302
    html = text(desk.get(url))
    assert newcomer_ids(html) == [colony["subject"]]
    assert ("info", f"Volunteer {colony['other']} spot-checked: their first answers look "
            "right") in flashes(html)
    [entry] = audit_entries(services, "spot_check")
    assert (entry.reason, entry.user_id, entry.volunteer_id) == ("fine", admin.id,
                                                                colony["other"])


def test_newcomers_quarantine_with_a_reason(services, desk, forms, colony, admin):
    url = f"/console/projects/{colony['project'].id}/newcomers"
    forms.post(desk, f"{url}/{colony['subject']}/quarantine", {"reason": "odd"}, page=url)
    html = text(desk.get(url))
    assert ("info", f"Volunteer {colony['subject']} quarantined: their answers no longer "
            "count until someone blocks or clears them") in flashes(html)
    assert colony["subject"] in newcomer_ids(html)  # still to look at, now quarantined
    assert "quarantined</span> (quarantined by hand)" in html
    [entry] = audit_entries(services, "quarantine")
    assert (entry.reason, entry.user_id) == ("odd", admin.id)
    again = forms.post(desk, f"{url}/{colony['subject']}/quarantine", {"reason": "odd"},
                       page=url)
    assert again.status_code == 409 and flashes(text(again))[0][0] == "error"


def test_newcomers_come_twenty_a_page(services, desk, colony, admin):
    project = colony["project"]
    run_job(services, create_job(services, identity(services, admin), project.id,
                                 items=[{"text": f"u{n}"} for n in range(20)]).id)
    for _ in range(20):
        answer_all(services, project, count=1)
    url = f"/console/projects/{colony['project'].id}/newcomers"
    first = text(desk.get(url))
    assert len(newcomer_ids(first)) == 20 and colony["subject"] not in newcomer_ids(first)
    assert 'rel="next">Older</a>' in first and "Newer</a>" not in first
    second = text(desk.get(url + "?page=2"))
    assert newcomer_ids(second) == [colony["other"], colony["subject"]]
    assert 'rel="prev">Newer</a>' in second and "Older</a>" not in second


def test_the_unblock_form_offers_only_scopes_that_lift_the_block():
    """A platform unblock lifts only a platform block (a charity's own stand),
    and a narrower unblock does not lift a wider block: a platform admin
    looking at an organisation-wide block is offered the organisation alone."""
    from web.console.volunteer_page import scope_choices, unblock_choices

    scopes = scope_choices("Penguin Watch", platform_admin=True)
    offered = {blocked: [c[0] for c in unblock_choices(scopes, blocked)]
               for blocked in ("project", "organisation", "platform")}
    assert offered == {"project": ["project", "organisation"],
                       "organisation": ["organisation"], "platform": ["platform"]}
