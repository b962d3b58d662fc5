"""The organisation's projects: state, progress and estimated finish.

The console's home page. Progress and estimates come from grouped queries
over all the organisation's projects at once (engine.projects, engine.delivery.insight),
so the page costs the same few queries for three projects or three hundred.
"""
from __future__ import annotations

from flask import render_template

from engine.delivery.insight import estimates
from engine.projects import every_project
from web.console import bp, staff_identity
from web.services import services


@bp.get("/")
def projects():
    views = every_project(services(), staff_identity().organisation_id)
    return render_template("console/projects.html", views=views,
                           estimates=estimates(services(), views))
