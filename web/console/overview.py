"""The organisation's projects: state, progress and estimated finish."""
from __future__ import annotations

from flask import render_template

from engine.projects import every_project
from web.console import bp, staff_identity
from web.services import services


@bp.get("/")
def projects():
    views = every_project(services(), staff_identity().organisation_id)
    return render_template("console/projects.html", views=views)
