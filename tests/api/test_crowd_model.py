"""The project's JSON says which crowd model weighs its answers, to its owners."""
from __future__ import annotations

from engine.quality.reliability import estimate_project


def _answer_all(api, volunteer, project_id, label_of) -> None:
    while True:
        r = api.client.get(f"/api/v1/projects/{project_id}/tasks/next",
                           headers=volunteer["headers"])
        if r.status_code == 204:
            return
        task = r.json["task"]
        assert api.answer(volunteer["headers"], task["id"], r.json["lease"]["token"],
                          label_of(task)).status_code == 201


def test_owners_see_the_chosen_model_and_its_scores(api, charity, other_charity, services):
    project = api.project(charity, min_answers=4, max_answers=4, confidence=0.99)
    api.items(charity, project["id"], [{"text": f"photo {n}"} for n in range(60)])
    for n in range(6):
        _answer_all(api, api.volunteer(), project["id"],
                    lambda task, n=n: "penguin" if n < 5 else "seal")
    shown = api.client.get(f"/api/v1/projects/{project['id']}", headers=charity).json
    assert shown["crowd_model"] is None  # no quality run yet
    estimate_project(services, project["id"])
    model = api.client.get(f"/api/v1/projects/{project['id']}",
                           headers=charity).json["crowd_model"]
    assert model["chosen"] in model["scores"] and model["hidden"] == 60
    assert model["reason"] == "best held-out answer likelihood"
    assert model["name"] and model["at"]
    public = api.client.get(f"/api/v1/projects/{project['id']}", headers=other_charity)
    assert "crowd_model" not in public.json
