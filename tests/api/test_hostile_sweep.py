"""A sweep: hostile values in every field of every JSON call never make a 5xx.

Whatever the value, the reply is a success or a well-formed JSON error.
"""
from __future__ import annotations

import json

import pytest

LABELS = ["penguin", "seal", "empty"]
PROJECT = {"name": "Seal cams", "task_type": "classify",
           "config": {"question": "What is it?", "labels": LABELS}}

HOSTILE = [None, True, False, -1, 0, 2**64, -(2**64), 1e308, -1e308, 0.5, "", " ",
           "x" * 20_000, [], {}, [[]], {"a": {"b": {}}}, ["a", 1, None], "../../etc/passwd",
           "<script>alert(1)</script>", "=cmd|' /C calc'!A0", "\u202egnp.exe", "🐧",
           "javascript:alert(1)", "/media/../../secret", "https://", "1.2.3.4.5"]
SWEEP = [  # (path, who, a valid body, where to put the hostile value)
    ("/api/v1/volunteers", None, {"name": "Ada"}, ["name", "other"]),
    ("/api/v1/projects", "charity", dict(PROJECT, min_answers=2, max_answers=3),
     ["name", "description", "task_type", "config", "min_answers", "max_answers",
      "confidence", "lease_seconds", "strategy", "gold_start", "gold_floor", "gold_ramp",
      "config.question", "config.labels", "config.labels.0", "config.instructions"]),
    ("/api/v1/projects/{project}/jobs", "charity", {"items": [{"text": "x", "id": "a"}]},
     ["items", "items.0", "items.0.text", "items.0.image", "items.0.thumb", "items.0.id",
      "items.0.gold", "priority"]),
    ("/api/v1/tasks/{task}/answers", "volunteer",
     {"lease": "{lease}", "answer": {"label": "seal"}}, ["lease", "answer", "answer.label"]),
    ("/api/v1/tasks/{task}/resolution", "admin", {"answer": {"label": "seal"}},
     ["answer", "answer.label", "note"]),
]


def _put(body, path: str, value):
    """A deep copy of body with value at the dotted path (list indexes as numbers)."""
    body = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return body


@pytest.mark.parametrize(("path", "who", "body", "where"), [
    pytest.param(p, w, b, f, id=f"{p}:{f}") for p, w, b, fs in SWEEP for f in fs])
def test_hostile_values_never_make_a_5xx(api, client, url, auth, scene, charity, path, who, body,
                                         where):
    headers = {None: {}, "charity": charity, "volunteer": scene["volunteer"]["headers"],
               "admin": auth.admin("Penguin Watch")}[who]
    body = json.loads(json.dumps(body).replace("{lease}", scene["lease"]))
    for value in HOSTILE:
        r = client.post(url(path, scene), json=_put(body, where, value), headers=headers)
        assert r.status_code < 500, (value, r.get_data(True))
        if r.status_code >= 400:
            api.error(r, r.status_code)
