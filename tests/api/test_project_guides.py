"""A project's tutorial (screens of Markdown) and field guide, through the API."""
from __future__ import annotations


def test_a_project_carries_its_tutorial_and_field_guide(client, api, charity):
    project = api.project(charity, tutorial=["Welcome!", "Seals have ear holes."],
                          field_guide="# Seal or sea lion\nLook at the flippers.")
    assert project["tutorial"] == ["Welcome!", "Seals have ear holes."]
    assert project["field_guide"].startswith("# Seal or sea lion")
    public = client.get(f"/api/v1/projects/{project['id']}").json  # volunteers read it too
    assert public["tutorial"] == project["tutorial"]
    r = client.patch(f"/api/v1/projects/{project['id']}", headers=charity,
                     json={"tutorial": ["Only one screen now."], "field_guide": ""})
    assert r.status_code == 200, r.get_data(True)
    assert r.json["tutorial"] == ["Only one screen now."] and r.json["field_guide"] == ""


def test_a_project_without_guides_says_so(api, charity):
    project = api.project(charity)
    assert project["tutorial"] == [] and project["field_guide"] == ""


def test_guides_beyond_their_limits_are_refused_naming_the_field(client, api, charity):
    for extra, field in (({"tutorial": ["x"] * 11}, "tutorial"),
                         ({"tutorial": ["x" * 5001]}, "tutorial"),
                         ({"tutorial": [""]}, "tutorial"),
                         ({"tutorial": "one string"}, "tutorial"),
                         ({"field_guide": "x" * 20_001}, "field_guide")):
        r = client.post("/api/v1/projects", headers=charity, json={
            "name": "Guides", "task_type": "classify",
            "config": {"question": "Which?", "labels": ["a", "b"]}, **extra})
        assert field in api.error(r, 422)["fields"], (extra, r.json)
