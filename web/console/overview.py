"""The organisation's projects: state, progress and estimated finish.

The console's home page. Progress and estimates come from grouped queries
over all the organisation's projects at once (engine.projects, engine.delivery.insight),
so the page costs the same few queries for three projects or three hundred.
A platform admin sees every organisation's projects, each labelled with its
organisation.
"""
from __future__ import annotations

from flask import render_template

from engine.delivery.insight import estimates
from engine.identity import organisation_names
from engine.projects import managed_projects
from web.console import bp, staff_identity
from web.services import services


@bp.get("/")
def projects():
    who = staff_identity()
    views = managed_projects(services(), who)
    owners = organisation_names(services()) if who.is_platform_admin else None
    return render_template("console/projects.html", views=views, owners=owners,
                           estimates=estimates(services(), views))
