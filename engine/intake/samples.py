"""Sample projects for `bitesize demo`, one or more per task type: images
drawn with Pillow (shapes, dots, a letter, a penguin colony), nothing downloaded.

The samples go in through the same door as a charity's upload (zip jobs and
a JSON job), so the demo exercises the real path end to end: the letter is
cut into lines and the colony into tiles by the worker.
"""
from __future__ import annotations

import io
import random
import zipfile

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from engine.identity import Identity, create_user, rotate_user
from engine.intake.jobs import create_job
from engine.projects import create_project
from engine.services import Services
from engine.store.models import Organisation, Project, User

DEMO_ORG = "Demo Charity"
SHAPES = ("circle", "square", "triangle")
COLOURS = ("#d1495b", "#edae49", "#00798c", "#30638e", "#6a4c93", "#2a9d8f")
COLOUR_NAMES = ("red", "yellow", "teal", "blue", "purple", "green")
LETTER = (
    "Dear Sir, I write to thank the society for the seeds",
    "you sent us in the spring. The beans came up well",
    "and the children of the village helped to water them",
    "every evening. We shall send you a basket in August.",
    "The old orchard by the church has been cleared, and",
    "the vicar hopes to plant twenty apple trees there.",
    "With gratitude and respect, your servant,",
    "Margaret Hale, Helstone, the fourth of June.",
)
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
    return _zip({f"camera-{n // 8 + 1}/{SHAPES[n % len(SHAPES)]}-{n:03d}.jpg":
                 shape_image(SHAPES[n % len(SHAPES)], n) for n in range(count)})


def dots_image(count: int, seed: int, size: int = 400) -> bytes:
    """A JPEG of ``count`` dots that do not touch, for counting."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    placed: list[tuple[int, int]] = []
    while len(placed) < count:
        x, y = rng.randint(30, size - 30), rng.randint(30, size - 30)
        if all((x - a) ** 2 + (y - b) ** 2 > 45 ** 2 for a, b in placed):
            placed.append((x, y))
            draw.ellipse((x - 14, y - 14, x + 14, y + 14), fill=rng.choice(COLOURS))
    return _jpeg(image)


def letter_page(lines: tuple[str, ...] = LETTER) -> bytes:
    """A scanned-looking page of handwriting-sized lines, for transcription."""
    font = ImageFont.load_default(size=30)
    image = Image.new("L", (1100, 140 + 64 * len(lines)), 236)
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        draw.text((70, 70 + 64 * n), line, fill=40, font=font)
    return _jpeg(image)


def penguin_colony(seed: int = 3, size: tuple[int, int] = (1600, 1100)) -> bytes:
    """A snowy slope with penguins (dark ovals with a white belly) to box."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (226, 233, 240))
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x, y = rng.randint(60, size[0] - 60), rng.randint(80, size[1] - 80)
        draw.ellipse((x - 22, y - 50, x + 22, y + 50), fill=(30, 32, 40))
        draw.ellipse((x - 13, y - 30, x + 13, y + 42), fill=(248, 248, 248))
        draw.polygon([(x - 4, y - 44), (x + 10, y - 40), (x - 4, y - 36)], fill=(240, 170, 40))
    return _jpeg(image)


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


DEMO_ADMIN = "Demo admin"


def create_demo(services: Services) -> tuple[str, list[int]]:
    """Make the demo charity (once) and a fresh admin token; returns (token, project ids).

    The admin is made once too: each start gives it a new token and ends the
    last start's, rather than adding another admin whose token never ends."""
    user_id, token = _demo_admin(services)
    with services.db.session() as session:
        org = session.scalar(select(Organisation).where(Organisation.name == DEMO_ORG))
        existing = list(session.scalars(select(Project.id).where(
            Project.organisation_id == org.id).order_by(Project.id)))
    if existing:
        return token, existing
    admin = Identity("user", user_id, org.id, "admin")
    makers = (_shapes_project, _sentences_project, _tags_project, _dots_project,
              _letter_project, _penguins_project)
    return token, [make(services, admin) for make in makers]


def _demo_admin(services: Services) -> tuple[int, str]:
    """The demo admin's id and a new token (the old one ends), made on the first start."""
    with services.db.session() as session:
        found = session.scalar(select(User.id).join(Organisation).where(
            Organisation.name == DEMO_ORG, User.name == DEMO_ADMIN, User.role == "admin",
            User.email.is_(None)).order_by(User.id))
    if found is None:
        return create_user(services, DEMO_ORG, "admin", DEMO_ADMIN)
    return found, rotate_user(services, found)


# The demo's visitors are its whole crowd, all of them minutes old: trust is
# not earned there (engine.quality.trust), or nothing would retire for half an hour.
DEMO_QUALITY = {"trusted_after_minutes": 0}


def _project(services: Services, admin: Identity, upload: bytes, **fields) -> int:
    """A demo project filled by a zip job, as a charity's upload would be."""
    view = create_project(services, admin, {"quality": DEMO_QUALITY, **fields})
    create_job(services, admin, view.project.id, upload=io.BytesIO(upload),
               filename="sample.zip")
    return view.project.id


def _shapes_project(services: Services, admin: Identity) -> int:
    return _project(
        services, admin, shapes_zip(), name="Shapes on camera", task_type="classify",
        description="Our (pretend) camera traps caught shapes. Which one is it?",
        config={"question": "Which shape do you see?", "labels": list(SHAPES)},
        min_answers=2, max_answers=4, confidence=0.75)


def _sentences_project(services: Services, admin: Identity) -> int:
    view = create_project(services, admin, {
        "name": "Good news or bad?", "task_type": "classify",
        "description": "Sort our newsletter snippets by mood.",
        "config": {"question": "Is this good news or bad news?",
                   "labels": ["positive", "negative"]},
        "min_answers": 2, "max_answers": 3, "confidence": 0.75, "quality": DEMO_QUALITY})
    items = [{"text": text, "id": f"snippet-{n}"} for n, (text, _) in enumerate(SENTENCES)]
    create_job(services, admin, view.project.id, items=items)
    return view.project.id


def _tags_project(services: Services, admin: Identity) -> int:
    return _project(
        services, admin, shapes_zip(12), name="Tag the shapes", task_type="tag",
        description="Pick every word that fits the picture; add your own if you like.",
        config={"question": "Which tags fit this picture?",
                "tags": [*SHAPES, *COLOUR_NAMES], "free_tags": True,
                "synonyms": {"round": "circle", "box": "square"}},
        min_answers=2, max_answers=4, confidence=0.75)


def _dots_project(services: Services, admin: Identity) -> int:
    counts = (3, 5, 7, 4, 9, 6, 11, 8)
    return _project(
        services, admin, _zip({f"dots-{n:02d}.jpg": dots_image(count, n)
                               for n, count in enumerate(counts)}),
        name="Count the dots", task_type="number",
        description="How many dots are there? Counting helps us check nest surveys.",
        config={"question": "How many dots do you count?", "unit": "dots",
                "integer": True, "min": 0, "max": 100},
        min_answers=2, max_answers=4, confidence=0.6)


def _letter_project(services: Services, admin: Identity) -> int:
    return _project(
        services, admin, _zip({"letters/hale-1861.jpg": letter_page()}),
        name="Transcribe a letter", task_type="transcribe",
        description="A letter from our archive, cut into lines. Type what you read.",
        config={"instructions": "Type the line as written, keeping its spelling. "
                                "Put [unclear] for a word you cannot read."},
        min_answers=2, max_answers=4, confidence=0.7)


def _penguins_project(services: Services, admin: Identity) -> int:
    return _project(
        services, admin, _zip({"colony/slope-a.jpg": penguin_colony()}),
        name="Find the penguins", task_type="locate",
        description="Our drone photographed a colony. Draw a box around every penguin.",
        config={"question": "Draw a box around every penguin", "tile_size": 512,
                "overlap": 64},
        min_answers=2, max_answers=4, confidence=0.6)
