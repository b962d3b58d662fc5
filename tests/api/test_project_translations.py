"""A charity's project texts in several languages (Project.translations): given
through the API, shown on the volunteer pages in the page's language, while
answers keep the project's own labels."""
from __future__ import annotations

import html

FRENCH = {"name": "Caméras à manchots", "description": "Aidez-nous à compter les manchots.",
          "question": "Qu’y a-t-il sur la photo ?",
          "labels": {"penguin": "manchot", "seal": "phoque"},
          "tutorial": ["Regardez bien la photo."],
          "field_guide": "Les manchots sont noirs et blancs."}


def test_translations_are_stored_and_replaced_whole(client, api, charity):
    project = api.project(charity, translations={"fr": FRENCH})
    assert project["translations"] == {"fr": FRENCH}
    r = client.patch(f"/api/v1/projects/{project['id']}", headers=charity,
                     json={"translations": {"fr": {"name": "Manchots"}}})
    assert r.status_code == 200, r.get_data(True)
    assert r.json["translations"] == {"fr": {"name": "Manchots"}}


def test_bad_translations_name_their_field(client, api, charity):
    for bad, where in (({"xx": {"name": "?"}}, "translations"),
                       ({"fr": {"name": ""}}, "translations"),
                       ({"fr": {"labels": {"penguin": "x" * 201}}}, "translations"),
                       ({"fr": "Manchots"}, "translations")):
        r = client.post("/api/v1/projects", headers=charity, json={
            "name": "Seal cams", "task_type": "classify", "translations": bad,
            "config": {"question": "What is it?", "labels": ["penguin", "seal"]}})
        assert where in api.error(r, 422)["fields"], bad


def test_the_volunteer_page_shows_the_charitys_words_in_the_pages_language(client, api,
                                                                            charity):
    project = api.project(charity, translations={"fr": FRENCH})
    api.items(charity, project["id"], [{"text": "photo 1", "id": "a"}])
    french = html.unescape(client.get(f"/projects/{project['id']}",
                                      headers={"Accept-Language": "fr"}).get_data(True))
    for words in ("Caméras à manchots", "Aidez-nous à compter les manchots.",
                  "Qu’y a-t-il sur la photo ?", "Regardez bien la photo.",
                  "Les manchots sont noirs et blancs."):
        assert words in french, words
    # the button says "manchot" and still answers "penguin"
    assert "manchot" in french and '{"label": "penguin"}' in french
    english = html.unescape(client.get(f"/projects/{project['id']}",
                                       headers={"Accept-Language": "en"}).get_data(True))
    assert "Penguin cams" in english and "manchot" not in english
    listing = html.unescape(client.get("/", headers={"Accept-Language": "fr"}).get_data(True))
    assert "Caméras à manchots" in listing


def test_the_volunteers_record_names_projects_in_their_language(client, api, charity):
    project = api.project(charity, translations={"fr": FRENCH})
    api.items(charity, project["id"], [{"text": "photo 1", "id": "a"}])
    volunteer = api.volunteer()
    handout = api.next_task(volunteer["headers"], project["id"])
    assert api.answer(volunteer["headers"], handout["task"]["id"],
                      handout["lease"]["token"]).status_code == 201

    def name(**headers) -> str:
        r = client.get("/api/v1/volunteers/me", headers={**volunteer["headers"], **headers})
        return r.json["projects"][0]["name"]

    assert name() == "Penguin cams"
    assert name(**{"Accept-Language": "fr-FR"}) == "Caméras à manchots"
    client.set_cookie("bitesize_lang", "fr")  # the switch's choice, over the browser's
    assert name(**{"Accept-Language": "en"}) == "Caméras à manchots"
