"""`bitesize import PROJECT PATH`: folders, zips, CSVs and JSON split in-process."""
from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
from PIL import Image
from sqlalchemy import func, select

from engine.errors import InvalidError
from engine.intake import importers
from engine.store.models import Job, Task
from web.cli import cli


def image(path, colour, fmt="JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue())
    return out.getvalue()


@pytest.fixture
def project(client, auth) -> dict:
    r = client.post("/api/v1/projects", headers=auth.charity(), json={
        "name": "Bat boxes", "task_type": "classify",
        "config": {"question": "Bat?", "labels": ["bat", "no bat"]}})
    assert r.status_code == 201, r.json
    return r.json


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    image(root / "a.jpg", "red")
    image(root / "site" / "2024" / "b.png", "green", "PNG")
    image(root / "site" / "2024" / "deep" / "c.jpg", "blue")
    (root / "notes.txt").write_text("field notes")
    (root / ".DS_Store").write_bytes(b"\0")
    image(root / ".hidden" / "d.jpg", "gray")
    (root / "broken.jpg").write_bytes(image(tmp_path / "whole.jpg", "teal")[:200])
    image(tmp_path / "outside.jpg", "white")
    image(tmp_path / "elsewhere" / "e.jpg", "black")
    os.symlink(root / "a.jpg", root / "link-inside.jpg")
    os.symlink(tmp_path / "outside.jpg", root / "link-out.jpg")
    os.symlink(tmp_path / "elsewhere", root / "linked-folder")
    return root


def tasks(services, project_id: int) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Task)
                              .where(Task.project_id == project_id))


def test_a_folder_is_imported_with_a_report_and_twice_makes_nothing_twice(
        runner, services, project, folder):
    result = runner.invoke(cli, args=["import", str(project["id"]), str(folder)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "job 1" in result.stderr  # the progress bar's label
    assert "job 1 (folder): done" in out
    assert "items 3 of 8, tasks 3, duplicates 1, problems 4" in out
    for line in ["  broken.jpg: ", "  link-inside.jpg: already in this project",
                 "  link-out.jpg: a symbolic link out of the folder: not followed",
                 "  linked-folder: a symbolic link to a folder: not followed",
                 "  notes.txt: not an image file"]:
        assert line in out, out
    assert "outside" not in out.replace("out of the folder", "")
    assert tasks(services, project["id"]) == 3

    again = runner.invoke(cli, args=["import", str(project["id"]), str(folder)])
    assert again.exit_code == 0, again.output
    assert "items 0 of 8, tasks 0, duplicates 4, problems 4" in again.stdout
    assert tasks(services, project["id"]) == 3


def test_a_zip_csv_and_json_import_alike(runner, services, project, tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("x/1.jpg", image(tmp_path / "1.jpg", "red"))
        out.writestr("x/2.jpg", image(tmp_path / "2.jpg", "navy"))
    rows = tmp_path / "rows.csv"
    rows.write_text("ref,caption\nr1,a bat\nr2,\n", encoding="utf-8")
    items = tmp_path / "items.json"
    items.write_text(json.dumps({"items": [{"text": "dusk"}, {"text": "dawn"}]}))
    mapping = json.dumps({"id": "ref", "text": "caption"})
    for path, extra, summary in [
            (archive, [], "items 2 of 2, tasks 2"),
            (rows, ["--mapping", mapping, "--priority", "5"], "items 1 of 2, tasks 1"),
            (items, [], "items 2 of 2, tasks 2")]:
        result = runner.invoke(cli, args=["import", str(project["id"]), str(path), *extra])
        assert result.exit_code == 0, result.output
        assert summary in result.stdout
    assert tasks(services, project["id"]) == 5
    with services.db.session() as session:
        assert session.scalar(select(func.max(Task.priority))) == 5


@pytest.mark.parametrize(("args", "words"), [
    (["999", "{folder}"], "project 999 does not exist"),
    (["{project}", "{folder}/notes.txt"], "not a .zip, .csv or .json"),
    (["{project}", "{folder}", "--mapping", '{{"text": "t"}}'], "a mapping is only for a .csv"),
    (["{project}", "{rows}", "--mapping", '{{"text": "nope"}}'], "no column named 'nope'"),
    (["{project}", "{folder}/missing"], "no such file or folder"),
])
def test_what_cannot_be_imported_is_refused_before_a_job(runner, services, project, folder,
                                                         tmp_path, args, words):
    rows = tmp_path / "rows.csv"
    rows.write_text("text\nhello\n")
    args = [a.format(project=project["id"], folder=folder, rows=rows) for a in args]
    result = runner.invoke(cli, args=["import", *args])
    assert result.exit_code != 0
    assert words in result.output, result.output
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_a_job_that_fails_prints_its_error_and_exits_1(runner, project, folder, monkeypatch):
    def broken(*_):
        raise InvalidError("the folder vanished")

    monkeypatch.setattr("engine.intake.jobs.open_source", broken)
    result = runner.invoke(cli, args=["import", str(project["id"]), str(folder)])
    assert result.exit_code == 1
    assert "job 1 (folder): failed: the folder vanished" in result.stdout


def test_a_huge_file_in_a_folder_is_refused_unread(runner, services, project, tmp_path,
                                                   monkeypatch):
    image(tmp_path / "big" / "a.jpg", "red")
    monkeypatch.setattr(services.media, "max_bytes", 100)
    read, real = [], importers.Path.read_bytes
    monkeypatch.setattr(importers.Path, "read_bytes", lambda self: read.append(self) or real(self))
    result = runner.invoke(cli, args=["import", str(project["id"]), str(tmp_path / "big")])
    assert result.exit_code == 0, result.output
    assert "a.jpg: too large" in result.stdout
    assert not [path for path in read if path.name == "a.jpg"]
