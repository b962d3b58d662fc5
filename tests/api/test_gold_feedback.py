"""Learn by doing: a volunteer's first gold answers are told the charity's answer
(engine.quality.feedback)."""
from __future__ import annotations


def _gold_project(api, charity, golds: int, **quality) -> dict:
    """Every hand-out is gold while gold lasts (gold_start = gold_floor = 1)."""
    project = api.project(charity, gold_start=1.0, gold_floor=1.0,
                          quality={"quarantine": False, "trusted_after_minutes": 0, **quality})
    api.items(charity, project["id"], [{"text": f"gold {n}", "gold": "seal"}
                                       for n in range(golds)]
              + [{"text": "photo", "id": "real"}])
    return project


def _answer_next(api, volunteer, project, label):
    handout = api.next_task(volunteer["headers"], project["id"])
    r = api.answer(volunteer["headers"], handout["task"]["id"], handout["lease"]["token"], label)
    assert r.status_code == 201, r.get_data(True)
    return handout, r.json


def test_a_gold_answer_is_told_the_charitys_answer(api, charity):
    project = _gold_project(api, charity, golds=2)
    volunteer = api.volunteer()
    _, wrong = _answer_next(api, volunteer, project, "penguin")
    assert wrong["feedback"] == {"right": False, "score": 0.0, "expected": "seal"}
    _, right = _answer_next(api, volunteer, project, "seal")
    assert right["feedback"] == {"right": True, "score": 1.0, "expected": "seal"}
    _, real = _answer_next(api, volunteer, project, "seal")  # not gold: nothing said
    assert "feedback" not in real


def test_only_the_first_gold_answers_are_told(api, charity, client):
    project = _gold_project(api, charity, golds=3, gold_feedback=2)
    volunteer = api.volunteer()
    told = [_answer_next(api, volunteer, project, "seal") for _ in range(3)]
    assert ["feedback" in reply for _, reply in told] == [True, True, False]
    # a retry of a told answer is told again, the same
    handout, first = told[0]
    again = api.answer(volunteer["headers"], handout["task"]["id"],
                       handout["lease"]["token"], "seal")
    assert again.json["feedback"] == first["feedback"]


def test_a_project_can_turn_feedback_off(api, charity):
    project = _gold_project(api, charity, golds=1, gold_feedback=0)
    _, reply = _answer_next(api, api.volunteer(), project, "seal")
    assert "feedback" not in reply


def test_a_change_of_the_setting_holds_from_the_next_answer(api, charity, client):
    """The settings are kept per process by the project's version, which hashes
    the quality thresholds (engine.quality.project_settings): turning feedback
    off mid-way is not answered from what was kept."""
    project = _gold_project(api, charity, golds=3)
    volunteer = api.volunteer()
    _, told = _answer_next(api, volunteer, project, "seal")
    assert told["feedback"]["right"] is True
    r = client.patch(f"/api/v1/projects/{project['id']}", headers=charity,
                     json={"quality": {"gold_feedback": 0}})
    assert r.status_code == 200, r.get_data(True)
    _, untold = _answer_next(api, volunteer, project, "seal")
    assert "feedback" not in untold
