"""New project wizard, edits, and the project's state (publish, pause, ...)."""
from __future__ import annotations

from flask import render_template

from web.console import bp


@bp.get("/projects/new")
def new_project():
    return render_template("console/layout.html")
