"""Schema-driven fuzzing: schemathesis sends every operation of the OpenAPI
document requests built from the document itself, valid ones and (negative
mode) ones it forbids, to the real app (SQL + Redis), and checks each answer:

- not_a_server_error: never a 5xx;
- status_code_conformance: only statuses the document lists for the call;
- content_type_conformance and response_schema_conformance: an error is the
  documented JSON {"error": {"code", "message", "fields"}}.

Most cases use real ids (an active, a paused and a draft project, a job, a
task, a volunteer, a lease) so calls get past the 404 into the body, query and
state checks; the token is the caller the operation is for, or none, or one
of the wrong kind.

Deterministic (derandomize, no example database) and bounded: each operation
gets BITESIZE_FUZZ_EXAMPLES cases (10 in the suite; .ci/run's fuzz step asks
for 100 on PostgreSQL + Redis); BITESIZE_FUZZ_SEED=<n> draws other cases.
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from web.api.openapi import OPERATIONS

EXAMPLES = int(os.environ.get("BITESIZE_FUZZ_EXAMPLES", "10"))
# Unset: the same cases on every run. A number: other cases, to look further by hand.
SEED = os.environ.get("BITESIZE_FUZZ_SEED")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
CALLS = [(method, path) for method, path, *_ in OPERATIONS]


@pytest.fixture
def tokens(auth, charity, scene) -> dict[str, dict[str, str]]:
    """Headers per caller: the project's charity and admin, and a volunteer."""
    return {"charity": charity, "admin": auth.admin("Penguin Watch"),
            "volunteer": scene["volunteer"]["headers"], "none": {}}


def callers(roles: list[str]) -> list[str]:
    """The caller the operation is for first (Hypothesis prefers it), then none,
    then one of the wrong kind."""
    if roles == ["volunteer"]:
        return ["volunteer", "none", "charity"]
    if roles[0] == "anyone" and len(roles) == 1:
        return ["none", "volunteer"]
    right = "charity" if "charity" in roles else "admin"
    return [right, "none", "volunteer"] + (["charity"] if right == "admin" else [])


@pytest.fixture
def id_sets(api, charity, scene) -> list[dict]:
    """Real path parameters: the scene's active project, a paused one with a
    task, and a draft, each with the scene's task, volunteer and lease."""
    shared = {"task_id": scene["task"], "volunteer_id": scene["vid"], "token": scene["lease"],
              "event_id": 1}
    paused = api.project(charity)
    job = api.items(charity, paused["id"], [{"text": "photo 3", "id": "c"}])
    assert api.client.post(f"/api/v1/projects/{paused['id']}/pause",
                           headers=charity).status_code == 200
    draft = api.project(charity, state="draft")
    return [{**shared, "project_id": scene["project"], "job_id": scene["job"]},
            {**shared, "project_id": paused["id"], "job_id": job["id"]},
            {**shared, "project_id": draft["id"], "job_id": job["id"]}]


@pytest.mark.parametrize(("method", "path"), CALLS, ids=[f"{m} {p}" for m, p in CALLS])
def test_fuzzed_calls_get_documented_answers(app, id_sets, tokens, method, path):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema[path][method.upper()]
    raw = operation.definition.raw

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases(operation, id_sets), caller=st.sampled_from(callers(raw["x-roles"])))
    def fuzz(case, caller):
        headers = {**(case.headers or {}), **tokens[caller]}
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    (seed(int(SEED))(fuzz) if SEED else fuzz)()  # a @seed outranks derandomize


def cases(operation, id_sets: list[dict]):
    """Valid and (where the call has a parameter or a body to break) invalid
    requests, with generated ids and with each set of real ones."""
    raw = operation.definition.raw
    names = {p["name"] for p in raw.get("parameters", []) if p["in"] == "path"}
    fixed = [{"path_parameters": {name: ids[name] for name in names}} for ids in id_sets]
    modes = [GenerationMode.POSITIVE]
    if raw.get("parameters") or raw.get("requestBody"):
        modes.append(GenerationMode.NEGATIVE)
    return st.one_of([operation.as_strategy(generation_mode=mode, **extra)
                      for mode in modes for extra in ((fixed + [{}]) if names else [{}])])


# What fuzzing found (on PostgreSQL): a number past what SQL holds in a query
# string reached the database and came back a 500.
HUGE = "99999999999999999999"
HUGE_QUERIES = ["/projects/{project}/jobs?offset=" + HUGE, "/projects/{project}/review?offset="
                + HUGE, "/inbox?project=" + HUGE, "/audit?project=" + HUGE]


@pytest.mark.parametrize("query", HUGE_QUERIES)
def test_a_number_too_big_for_sql_in_a_query_is_422(api, client, scene, tokens, query):
    r = client.get("/api/v1" + query.format(**scene), headers=tokens["admin"])
    name = query.rsplit("?", 1)[1].split("=")[0]
    assert name in api.error(r, 422)["fields"]


def numbers(node, where: str = ""):
    """Every integer or number schema in the document, with where it is."""
    if isinstance(node, dict):
        if node.get("type") in ("integer", "number"):
            yield where, node
        for key, value in node.items():
            yield from numbers(value, f"{where}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from numbers(value, f"{where}/{n}")


def test_every_number_the_api_reads_is_bounded_in_the_document(client):
    """An unbounded number is one that can reach SQL too big for it (the 500s above)."""
    paths = client.get("/api/v1/openapi.json").json["paths"]
    found = [found for path, ops in paths.items() for method, op in ops.items()
             for found in numbers([op["parameters"], op.get("requestBody")], f"{method} {path}")]
    assert len(found) > 50
    for where, schema in found:
        assert "minimum" in schema and "maximum" in schema, where


def test_the_document_marks_public_calls_and_lists_path_parameters(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert paths["/volunteers"]["post"]["security"] == []
    assert {} in paths["/projects/{project_id}"]["get"]["security"]
    assert "security" not in paths["/projects"]["post"]  # the document's default: a token
    block = paths["/projects/{project_id}/volunteers/{volunteer_id}/block"]["post"]
    assert [p["name"] for p in block["parameters"] if p["in"] == "path"] == [
        "project_id", "volunteer_id"]
    jobs = paths["/projects/{project_id}/jobs"]["get"]
    state = next(p for p in jobs["parameters"] if p["name"] == "state")
    assert state["in"] == "query" and state["schema"]["enum"] == [
        "queued", "running", "done", "failed"]
    assert {"401", "403", "404", "422", "429"} <= set(jobs["responses"])


def test_the_docs_page_lists_every_call(client):
    page = client.get("/api/docs").get_data(True)
    assert "GET /projects/{project_id}/webhook/deliveries" in page
