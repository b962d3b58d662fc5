"""Sample projects for `bitesize demo`: images drawn with Pillow, nothing downloaded.

The samples go in through the same door as a charity's upload (a zip job
and a JSON job), so the demo exercises the real path end to end.
"""
from __future__ import annotations

import io
import random
import zipfile

from PIL import Image, ImageDraw
from sqlalchemy import select

from engine.identity import Identity, create_user
from engine.intake import create_job
from engine.models import Organisation, Project
from engine.projects import create_project
from engine.services import Services

DEMO_ORG = "Demo Charity"
SHAPES = ("circle", "square", "triangle")
COLOURS = ("#d1495b", "#edae49", "#00798c", "#30638e", "#6a4c93", "#2a9d8f")
SENTENCES = (
    ("The volunteers cleaned the whole beach in one morning.", "positive"),
    ("The shelter had to turn animals away again this week.", "negative"),
    ("Our new hedgehog hospital opened its doors today!", "positive"),
    ("The river survey was cancelled because of the floods.", "negative"),
    ("Thanks to you, 300 seedlings were planted.", "positive"),
    ("Funding for the night bus for homeless people was cut.", "negative"),
)


def shape_image(shape: str, seed: int, size: int = 480) -> bytes:
    """A JPEG of one coloured shape on a pale background."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (245, 242, 235))
    draw = ImageDraw.Draw(image)
    margin = rng.randint(60, 140)
    box = (margin, margin, size - margin, size - margin)
    colour = rng.choice(COLOURS)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(size // 2, margin), (size - margin, size - margin),
                      (margin, size - margin)], fill=colour)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def shapes_zip(count: int = 24) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n in range(count):
            shape = SHAPES[n % len(SHAPES)]
            archive.writestr(f"camera-{n // 8 + 1}/{shape}-{n:03d}.jpg", shape_image(shape, n))
    return out.getvalue()


def create_demo(services: Services) -> tuple[str, list[int]]:
    """Make the demo charity (once) and a fresh admin token; returns (token, project ids)."""
    user_id, token = create_user(services, DEMO_ORG, "admin", "Demo admin")
    with services.db.session() as session:
        org = session.scalar(select(Organisation).where(Organisation.name == DEMO_ORG))
        existing = list(session.scalars(select(Project.id).where(
            Project.organisation_id == org.id).order_by(Project.id)))
    if existing:
        return token, existing
    admin = Identity("user", user_id, org.id, "admin")
    return token, [_shapes_project(services, admin), _sentences_project(services, admin)]


def _shapes_project(services: Services, admin: Identity) -> int:
    view = create_project(services, admin, {
        "name": "Shapes on camera", "task_type": "classify",
        "description": "Our (pretend) camera traps caught shapes. Which one is it?",
        "config": {"question": "Which shape do you see?", "labels": list(SHAPES)},
        "min_answers": 2, "max_answers": 4, "confidence": 0.75})
    create_job(services, admin, view.project.id, upload=io.BytesIO(shapes_zip()),
               filename="shapes.zip")
    return view.project.id


def _sentences_project(services: Services, admin: Identity) -> int:
    view = create_project(services, admin, {
        "name": "Good news or bad?", "task_type": "classify",
        "description": "Sort our newsletter snippets by mood.",
        "config": {"question": "Is this good news or bad news?",
                   "labels": ["positive", "negative"]},
        "min_answers": 2, "max_answers": 3, "confidence": 0.75})
    items = [{"text": text, "id": f"snippet-{n}"} for n, (text, _) in enumerate(SENTENCES)]
    create_job(services, admin, view.project.id, items=items)
    return view.project.id
