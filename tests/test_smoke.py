def test_volunteer_created(client):
    r = client.post("/api/v1/volunteers")
    assert r.status_code == 201
    assert r.json["token"].startswith("bsv_")
