"""One project's page in the console: everything about it on one screen.

The page is made of panels, each a template partial owned by the module
that serves its actions: the state and its actions (web.console.wizard),
uploads and their jobs (web.console.uploads), progress and the dashboard
(web.console.dashboard), downloads (web.console.results). Each partial gets
what it needs from a template global its module registers, so this view
stays the same as panels grow.
"""
from __future__ import annotations

from flask import render_template

from engine.identity import organisation_names
from engine.projects import get_owned_project, project_view
from web.console import bp, staff_identity
from web.services import services


@bp.get("/projects/<int:project_id>")
def project(project_id: int):
    who = staff_identity()
    owned = get_owned_project(services(), who, project_id)
    # A platform admin may open another organisation's project: say whose it is.
    owner = (None if owned.organisation_id == who.organisation_id
             else organisation_names(services()).get(owned.organisation_id))
    return render_template("console/project.html", project=owned, owner=owner,
                           view=project_view(services(), owned))
