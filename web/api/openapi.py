"""The OpenAPI document (/api/v1/openapi.json) and a plain page to browse it.

Request bodies and query strings are described from the same marshmallow
schemas that validate them, limits included (web.api.json_schema), so the
document cannot drift from what the API accepts. Each call's row below gives
its summary, who may make it and its own statuses; the statuses every call of
its kind may answer (401, 403, 404, 400/413/422, 429) are added from who may
make it and what it reads, every error with the Error schema. Public calls are
marked (`security`), path parameters listed. tests/api/test_schemathesis.py
fuzzes the app from this document: a status or an error shape it leaves out
fails there.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Flask, render_template
from marshmallow import Schema

from web.api import bp
from web.api.json_schema import object_json, query_parameters
from web.api.news import NewsCreate
from web.api.openapi_replies import REPLIES
from web.api.review import AuditQuery, BlockBody, InboxQuery, Resolution, ReviewQuery, Why
from web.api.schemas import (
    AnswerCreate,
    AnswersQuery,
    CurrentCredential,
    JobForm,
    JobItems,
    JobsQuery,
    NextQuery,
    ProjectCreate,
    ProjectUpdate,
    ReportCreate,
    ResultsQuery,
    VolunteerClaim,
    VolunteerCreate,
    VolunteerSignIn,
)
from web.api.webhooks import DeliveriesQuery, EventsQuery, WebhookSet
from web.converters import MAX_ID

# Who may call (README: Roles). The owner of a project is its organisation: its
# charity members and organisation admins. A platform admin may make every call an
# owner or admin may make, on every organisation's project. To anyone else, an
# owner's call on a project (or its job, task, webhook) answers 404, as if missing.
ANYONE = "anyone"
VOLUNTEER = "volunteer"
STAFF = "charity, admin, platform-admin (the project belongs to the caller's organisation)"
PUBLIC_OR_OWNER = ("anyone (active projects); charity, admin of the project's organisation "
                   "and platform-admin (every state)")
OWNER = "charity or admin of the project's organisation, platform-admin (any organisation)"
ADMIN = ("admin of the project's organisation, platform-admin (any organisation); 403 for "
         "a charity member")
# The roles each of those admits, as the document's `x-roles`.
AUDITOR = ("admin of the organisation (its projects), platform-admin (every organisation); 403 "
           "for a charity member")
ROLES_OF = {ANYONE: ["anyone"], VOLUNTEER: ["volunteer"], AUDITOR: ["admin", "platform-admin"],
            STAFF: ["charity", "admin", "platform-admin"],
            PUBLIC_OR_OWNER: ["anyone", "charity", "admin", "platform-admin"],
            OWNER: ["charity", "admin", "platform-admin"],
            ADMIN: ["admin", "platform-admin"]}

# (method, path, summary, who, request schema, responses)
OPERATIONS: list[tuple[str, str, str, str, type[Schema] | None, dict[str, str]]] = [
    ("post", "/volunteers", "Create an anonymous volunteer", ANYONE, VolunteerCreate,
     {"201": "the volunteer's id and token", "409": "the challenge was used already",
      "422": "invalid body; where the site asks for proof of work, code challenge_required "
             "(no challenge sent) or a challenge or nonce that is wrong or expired"}),
    ("get", "/volunteers/challenge",
     "The proof of work a sign-up needs here: a challenge and the leading zero bits of "
     "SHA-256(challenge:nonce) asked for (bits 0 and no challenge: none needed)",
     ANYONE, None, {"200": "the challenge"}),
    ("post", "/projects", "Create a project", STAFF, ProjectCreate,
     {"201": "the project", "422": "invalid body or config"}),
    ("get", "/projects", "List projects with progress", PUBLIC_OR_OWNER,
     None, {"200": "the projects"}),
    ("get", "/projects/{project_id}", "Show a project with progress", PUBLIC_OR_OWNER,
     None, {"200": "the project", "404": "no such project"}),
    ("patch", "/projects/{project_id}",
     "Edit a project: any of name, description, redundancy, confidence, lease_seconds, "
     "strategy, gold mixing; `config` keys are merged into its config. Once volunteers have "
     "answered, list entries (labels, tags) may be added but not removed or renamed, wording "
     "(question, instructions) may change, other config fields may not",
     OWNER, ProjectUpdate,
     {"200": "the project", "404": "no such project", "409": "the project is archived",
      "422": "invalid values, or a config change that would change how answers are read"}),
    ("post", "/projects/{project_id}/publish",
     "Publish: a draft, paused or completed project becomes active and hands out tasks",
     OWNER, None, {"200": "the project, active", "404": "no such project",
                     "409": "not publishable from its state (active or archived)"}),
    ("post", "/projects/{project_id}/pause",
     "Pause an active project: volunteers get no tasks until it is published again",
     OWNER, None, {"200": "the project, paused", "404": "no such project",
                     "409": "the project is not active"}),
    ("post", "/projects/{project_id}/complete",
     "Mark an active or paused project completed: no more tasks are handed out",
     OWNER, None, {"200": "the project, completed", "404": "no such project",
                     "409": "the project is not active or paused"}),
    ("post", "/projects/{project_id}/archive",
     "Archive a project that is not a draft (final: it cannot be published again)",
     OWNER, None, {"200": "the project, archived", "404": "no such project",
                     "409": "a draft (delete it instead) or already archived"}),
    ("delete", "/projects/{project_id}",
     "Delete a draft with everything it holds (items, tasks, jobs, webhook)", OWNER, None,
     {"204": "deleted", "404": "no such project", "409": "the project is not a draft"}),
    ("post", "/projects/{project_id}/jobs",
     "Upload a job: JSON {items} or {iiif: manifest URL}, or multipart file= (.zip of images, "
     ".csv with an optional mapping= field, .json of items or a IIIF manifest) and priority=",
     OWNER, JobItems, {"202": "the job, queued", "409": "the project is archived",
                         "413": "file too large", "422": "invalid items, file or mapping"}),
    ("get", "/projects/{project_id}/jobs", "List a project's jobs, newest first "
     "(?state=queued|running|done|failed, ?limit, ?offset)", OWNER, None,
     {"200": "the jobs, each with its first 20 problems"}),
    ("get", "/jobs/{job_id}", "Show a job's state, progress, duplicates, problems and error",
     OWNER, None, {"200": "the job"}),
    ("post", "/jobs/{job_id}/rerun", "Run a failed job again (or one whose worker stopped): it "
     "resumes, making nothing twice", OWNER, None,
     {"202": "the job, queued",
      "409": "the job has not failed and its worker is alive, or the project is archived"}),
    ("get", "/volunteers/me",
     "The calling volunteer's record: answers, time given (hand-out to answer, at most "
     "10 minutes a task), and per project the tasks they helped finish", VOLUNTEER, None,
     {"200": "the record"}),
    ("post", "/volunteers/me/account",
     "Keep the calling volunteer's work under an email and password, so they can sign in "
     "on another device. Once the work is kept (by a password or a recovery code), a change "
     "needs current_password (the password or the recovery code) and signs out every other "
     "device", VOLUNTEER, VolunteerClaim,
     {"201": "the account (email, whether it is confirmed, whether a recovery code "
             "exists), how many other devices were signed out, and whether a link to "
             "confirm a new email was sent (where the site sends email)",
      "409": "the email already keeps another volunteer's work",
      "422": "not an email address, a password under 10 characters, or current_password "
             "needed or not right",
      "429": "too many requests naming this email, or from this address, or too many wrong "
             "current passwords (Retry-After)"}),
    ("post", "/volunteers/me/email-confirmation",
     "Send again the link that confirms the kept email: news by email goes only to a "
     "confirmed address (the link works for 7 days, and only while the email is the same)",
     VOLUNTEER, None,
     {"202": "a link is on its way",
      "409": "the site sends no email, no email is kept, it is confirmed already, or it is "
             "not one plain address (kept before addresses were checked as now)",
      "429": "too many requests naming this email, or from this address (Retry-After)"}),
    ("post", "/volunteers/me/recovery-code",
     "A recovery code to write down (for volunteers without email), shown once; an earlier "
     "code stops working. Once the work is kept, the body gives current_password (the "
     "password or the recovery code) and every other device is signed out", VOLUNTEER,
     CurrentCredential,
     {"201": "the code, the account and how many other devices were signed out",
      "422": "current_password needed or not right",
      "429": "too many wrong current passwords (Retry-After)"}),
    ("post", "/volunteers/sign-in",
     "Sign in on this device with an email and password or a recovery code: a new token of "
     "that volunteer's, for this device (other devices stay signed in)", ANYONE,
     VolunteerSignIn,
     {"201": "the volunteer's id and this device's token",
      "422": "the credentials are not right (one message whatever was wrong)",
      "429": "too many failed sign-ins from this address or on this email (Retry-After)"}),
    ("get", "/volunteers/me/data",
     "Everything kept about the calling volunteer (account, answers, reports) as a JSON "
     "file", VOLUNTEER, None, {"200": "the data, as an attachment"}),
    ("delete", "/volunteers/me",
     "Delete the calling volunteer's account: email, name and every token end at once; "
     "their answers stay in the results, no longer linked to anyone. Once the work is kept, "
     "the body gives current_password (the password or the recovery code)", VOLUNTEER,
     CurrentCredential,
     {"200": "deleted",
      "422": "current_password needed or not right",
      "429": "too many wrong current passwords (Retry-After)"}),
    ("put", "/projects/{project_id}/news-subscription",
     "The calling volunteer gets this project's news by email (they must have kept their "
     "work with an email and confirmed it, and the site must send email)", VOLUNTEER, None,
     {"200": "subscribed",
      "409": "no email kept, the email not confirmed, or the site sends no email"}),
    ("delete", "/projects/{project_id}/news-subscription",
     "No more news by email from this project", VOLUNTEER, None, {"200": "unsubscribed"}),
    ("post", "/projects/{project_id}/news",
     "Send a note (subject, message) to the project's volunteers who asked for its news; a "
     "worker emails it, each with a one-step unsubscribe link", OWNER, NewsCreate,
     {"202": "the note and how many it goes to", "409": "the site sends no email"}),
    ("get", "/projects/{project_id}/tasks/next",
     "Lease the next task (?count=N, N <= 5, also leases `queue` to preload)", VOLUNTEER, None,
     {"200": "task and lease", "204": "nothing left for this volunteer",
      "409": "the project is paused or completed: no tasks are handed out",
      "429": "the volunteer holds max_leases live leases: answer or skip one (Retry-After)"}),
    ("post", "/tasks/{task_id}/answers",
     "Answer a leased task; with `next`: N > 0 the reply's `next` also leases the next "
     "task(s) of its project, as GET .../tasks/next?count=N would (null: nothing left; "
     "`next_error` says why none could be handed out); on a volunteer's first practice "
     "(gold) tasks, `feedback`: the charity's answer and whether theirs was right",
     VOLUNTEER, AnswerCreate,
     {"201": "stored", "409": "already answered",
      "410": "lease gone, the task skipped or reported, or its lease ended over a day "
             "ago (`ended too long ago`)", "422": "invalid answer",
      "429": "too many answers (rate limit, Retry-After)"}),
    ("delete", "/leases/{token}", "Skip: give a leased task back", VOLUNTEER, None,
     {"200": "released (false: the lease was not live); its answers are refused from now on",
      "410": "no such lease token"}),
    ("post", "/leases/{token}/report",
     "Something is wrong with this task (blank, offensive, unreadable, other): reported "
     "to the charity's inbox, the lease given back as with a skip; `withdrawn` when this "
     "report took the task out of circulation", VOLUNTEER, ReportCreate,
     {"201": "reported", "409": "the project is archived",
      "410": "no such lease token, not this volunteer's, or a lease "
             "that ended over a day ago",
      "422": "an unknown reason, or a note over 300 characters"}),
    ("post", "/leases/{token}/extend", "Keep working: extend a live lease", VOLUNTEER, None,
     {"200": "the new expiry", "409": "extended max_extends times already",
      "410": "the lease has ended"}),
    ("get", "/projects/{project_id}/results",
     "Download results (?format=csv|json|jsonl, ?level=task|item)",
     OWNER, None, {"200": "one row per task, or per item with its combined result; gold "
                          "tasks are left out (an item's gold parts carry its known answer)"}),
    ("get", "/projects/{project_id}/answers",
     "Download every raw answer (?format=csv|json|jsonl, ?bom=1); the CSV is what "
     "`bitesize consensus` reads", OWNER, None, {"200": "one row per answer"}),
    ("get", "/projects/{project_id}/annotations",
     "Results of items imported from IIIF, as a IIIF AnnotationPage of W3C Web Annotations "
     "(transcribed lines, located marks) targeting each canvas", OWNER, None,
     {"200": "the annotation page"}),
    ("get", "/inbox",
     "What waits for a human across the caller's projects, newest first: quarantined "
     "volunteers (admins only), contested tasks, failed jobs, dead webhook events; "
     "?kind=volunteer|task|job|webhook, ?project, ?limit, ?offset. Each item: kind, project, "
     "volunteer, task, job, event, state (quarantined|contested|failed|dead), reasons, "
     "message, since; with counts per kind", STAFF, None,
     {"200": "a page of the inbox", "404": "?project names no project the caller manages"}),
    ("get", "/audit",
     "The audit log: every block, unblock, quarantine (the flags' own, by `bitesize`), "
     "clear, settle, spot-check, re-check reopen, reports dismissed and draft deleted with "
     "who, when and why, newest first; a deleted draft's entries are kept with `project` "
     "null (?project, ?limit, ?offset; ?format=csv downloads all of it, formula-escaped)",
     AUDITOR, None, {"200": "a page of entries, or the CSV",
                     "404": "?project names no project the caller audits"}),
    ("get", "/projects/{project_id}/review", "Contested tasks with every answer (?limit, ?offset)",
     OWNER, None, {"200": "the review queue"}),
    ("post", "/tasks/{task_id}/resolution", "Settle a task; it serves as gold from then on "
     "(`note`: why, kept in the audit log)",
     OWNER, Resolution, {"200": "settled", "409": "not reviewable, or the project is archived",
                         "422": "invalid answer"}),
    ("post", "/tasks/{task_id}/reports/dismiss",
     "Volunteers' reports of this task were unfounded: resolved, and a task they took out "
     "of circulation is merged again from its answers (`reason`: kept in the audit log)",
     OWNER, Why, {"200": "dismissed: how many, and the task's state now",
                  "409": "the task has no open report, or the project is archived"}),
    ("get", "/projects/{project_id}/volunteers",
     "Volunteers' reliability, speed, flags, quarantine (when, why) and block "
     "(`blocked_scope`: `project`, `organisation` or `platform`, the widest that applies)",
     OWNER, None,
     {"200": "per-volunteer statistics"}),
    ("post", "/projects/{project_id}/volunteers/{volunteer_id}/block",
     "Block a volunteer: answers stop counting, touched tasks merged again; `scope`: "
     "`project` (default), `organisation` (every project of the project's organisation) "
     "or `platform` (the volunteer's token stops working; platform-admin only, 403 "
     "otherwise; an archived project's results are left as they are)", ADMIN, BlockBody,
     {"200": "blocked", "403": "scope not allowed",
      "409": "scope `project` in an archived project"}),
    ("post", "/projects/{project_id}/volunteers/{volunteer_id}/quarantine",
     "Quarantine a volunteer by hand (flags do it by themselves): answers stop counting, "
     "touched tasks merged again, still handed tasks; listed for review", ADMIN, Why,
     {"200": "quarantined",
      "409": "already quarantined or blocked here, or the project is archived"}),
    ("post", "/projects/{project_id}/volunteers/{volunteer_id}/clear",
     "Clear a quarantined volunteer: answers count again, tasks merged again, flags start "
     "again from their next answers", ADMIN, Why,
     {"200": "cleared", "409": "not quarantined, or the project is archived"}),
    ("delete", "/projects/{project_id}/volunteers/{volunteer_id}/block",
     "Unblock a volunteer (their answers count again; the tasks are merged again) at a "
     "`scope` as for block (a volunteer blocked platform-wide: platform scope only; "
     "blocked organisation-wide: organisation scope, which also ends its projects' own "
     "blocks; a platform unblock ends the platform's block alone, a charity's own blocks "
     "stand: `blocked` says whether they are still blocked in this project)", ADMIN,
     BlockBody, {"200": "unblocked", "403": "scope not allowed",
                 "409": "blocked platform-wide (below platform scope) or organisation-wide "
                        "(at project scope), not blocked platform-wide (at platform scope), "
                        "or scope `project` in an archived project"}),
    ("put", "/projects/{project_id}/webhook",
     "Set or replace the project's webhook (url, secret, events, active)", OWNER, WebhookSet,
     {"201": "created", "200": "replaced", "422": "invalid URL, secret or events"}),
    ("get", "/projects/{project_id}/webhook", "Show the webhook (the secret's last 4 only)",
     OWNER, None, {"200": "the webhook", "404": "none set"}),
    ("delete", "/projects/{project_id}/webhook",
     "Delete the webhook with its outbox and delivery log", OWNER, None,
     {"200": "deleted", "404": "none set"}),
    ("get", "/projects/{project_id}/webhook/events",
     "The outbox: events with their state, newest first (?state, ?limit, ?offset)", OWNER,
     None, {"200": "a page of events"}),
    ("get", "/projects/{project_id}/webhook/deliveries",
     "The delivery log: every attempt, newest first (?event, ?limit, ?offset)", OWNER, None,
     {"200": "a page of attempts"}),
    ("post", "/projects/{project_id}/webhook/events/{event_id}/redeliver",
     "Send an event again under its idempotency key, with a fresh day of retries", OWNER,
     None, {"202": "queued", "404": "no such event",
           "409": "already waiting, or an attempt of it is being sent"}),
    ("get", "/openapi.json", "This document", ANYONE, None, {"200": "the OpenAPI document"}),
]


# The query strings operations read, from the schemas that read them.
QUERIES: dict[tuple[str, str], type[Schema]] = {
    ("get", "/projects/{project_id}/jobs"): JobsQuery,
    ("get", "/projects/{project_id}/tasks/next"): NextQuery,
    ("get", "/projects/{project_id}/results"): ResultsQuery,
    ("get", "/projects/{project_id}/answers"): AnswersQuery,
    ("get", "/inbox"): InboxQuery,
    ("get", "/audit"): AuditQuery,
    ("get", "/projects/{project_id}/review"): ReviewQuery,
    ("get", "/projects/{project_id}/webhook/events"): EventsQuery,
    ("get", "/projects/{project_id}/webhook/deliveries"): DeliveriesQuery,
}

# Bodies that may be left out: the defaults (or no reason) apply.
OPTIONAL_BODY = {VolunteerCreate, BlockBody, Why, CurrentCredential}

# What every call may answer besides its own statuses (README: Errors).
# A blocked volunteer's token is named apart (engine.identity.blocked_volunteer):
# their page stops there, where for any other 401 it may start afresh.
BLOCKED_TOKEN = ('; a token of a volunteer blocked platform-wide: `fields` '
                 '`{"token": "blocked"}`')
UNAUTHENTICATED = ("no token, or a token that matches nobody (WWW-Authenticate: Bearer)"
                   + BLOCKED_TOKEN)
WRONG_KIND = "a token of the wrong kind (a volunteer's on a staff call, or the reverse)"
RATE_LIMITED = ("too many calls, sign-ups, answers, uploads or bad tokens (Settings."
                "rate_limits; Retry-After)")


def schema_json(schema: type[Schema]) -> dict[str, Any]:
    """A request body's JSON Schema, limits included (web.api.json_schema)."""
    return object_json(schema)


def path_parameters(path: str) -> list[dict[str, Any]]:
    """The {names} of a path: ids are row ids (web.converters: digits only, at most
    MAX_ID, else 404), a lease is text."""
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1} if name == "token"
             else {"type": "integer", "minimum": 0, "maximum": MAX_ID}}
            for name in re.findall(r"{(\w+)}", path)]


def error_statuses(path: str, who: str, schema: type[Schema] | None,
                   query: type[Schema] | None) -> dict[str, str]:
    """The errors an operation may answer that its own row leaves out."""
    out: dict[str, str] = {"429": RATE_LIMITED}
    if who == PUBLIC_OR_OWNER:
        out["401"] = ("a token was sent and matches nobody (no token: the public view)"
                      + BLOCKED_TOKEN)
    elif who != ANYONE:
        out["401"] = UNAUTHENTICATED
    if who not in (ANYONE, PUBLIC_OR_OWNER):
        out["403"] = WRONG_KIND
    if who in (OWNER, ADMIN):
        out["404"] = "no such project (or not one the caller's role may manage)"
    elif "{" in path and "{token}" not in path:
        out["404"] = "no such " + path.rsplit("{", 1)[1].split("_")[0]
    if who == ADMIN:
        out["403"] = "the caller is a charity member, not an admin; " + WRONG_KIND
    if schema is not None:
        out |= {"400": "the body is not JSON, or holds NUL or an unpaired surrogate",
                "413": "the body is over max_upload_mb",
                "422": "the body is not a JSON object, or not valid (`fields` says where)"}
    if query is not None:
        out["422"] = "the query string is not valid (`fields` says where)"
    return out


def operation(method: str, path: str, summary: str, who: str, schema: type[Schema] | None,
              responses: dict[str, str]) -> dict[str, Any]:
    query = QUERIES.get((method, path))
    responses = {**error_statuses(path, who, schema, query), **responses}
    op: dict[str, Any] = {
        "summary": summary, "description": f"Who: {who}.", "x-roles": ROLES_OF[who],
        "parameters": path_parameters(path) + (query_parameters(query) if query else []),
        "responses": {code: _response(code, text) for code, text in sorted(responses.items())}}
    if (method, path) in REPLIES:
        code, body = REPLIES[method, path]
        op["responses"][code]["content"] = {"application/json": {"schema": body}}
    if who == ANYONE:
        op["security"] = []  # public: no token needed
    elif who == PUBLIC_OR_OWNER:
        op["security"] = [{}, {"bearer": []}]  # public; a token shows the owner's view
    if schema is not None:
        op["requestBody"] = {"required": schema not in OPTIONAL_BODY, "content": {
            "application/json": {"schema": schema_json(schema)}}}
    if schema is JobItems:
        op["requestBody"]["content"]["multipart/form-data"] = {"schema": upload_json()}
    return op


def upload_json() -> dict[str, Any]:
    """A job as a file upload: the form fields of JobForm and the file itself."""
    form = object_json(JobForm)
    return {**form, "properties": {"file": {"type": "string", "format": "binary"},
                                   **form["properties"]}, "required": ["file"]}


def _response(code: str, text: str) -> dict[str, Any]:
    if code.startswith(("4", "5")):
        return {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    return {"description": text}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, summary, who, schema, responses in OPERATIONS:
        paths.setdefault(path, {})[method] = operation(method, path, summary, who, schema,
                                                       responses)
    return {"openapi": "3.0.3",
            "info": {"title": "bitesize API", "version": "1"},
            "servers": [{"url": "/api/v1"}],
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                           "schemas": {"Error": _ERROR}},
            "security": [{"bearer": []}],
            "paths": paths}


_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message", "fields"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object"}}}}}


@bp.get("/openapi.json")
def openapi_json():
    return document()


def init_app(app: Flask) -> None:
    @app.get("/api/docs")
    def api_docs():
        return render_template("api_docs.html", doc=document())
