"""Results as W3C Web Annotations on IIIF canvases, for museums and archives.

An item imported from a IIIF manifest remembers its canvas (engine.intake.importers).
Its task type's ``regions`` say where in the picture the crowd found what (a
transcribed line, a boxed penguin); each becomes one annotation whose target
is the canvas with a ``#xywh=`` fragment, scaled from the picture's pixels to
the canvas's coordinates, so any IIIF viewer can overlay the results on the
archive's own scans. Items that did not come from IIIF have no canvas to
point at and are left out. Streamed, one item at a time.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from engine.delivery.exports import item_groups, project_type
from engine.services import Services
from task_types import Region

CONTEXT = ["http://www.w3.org/ns/anno.jsonld", "http://iiif.io/api/presentation/3/context.json"]


def annotation_page(services: Services, project_id: int, page_id: str) -> Iterator[str]:
    """An AnnotationPage (IIIF Presentation 3) of every region of every IIIF item."""
    yield json.dumps({"@context": CONTEXT, "id": page_id, "type": "AnnotationPage"})[:-1]
    yield ', "items": ['
    for n, annotation in enumerate(annotations(services, project_id, page_id)):
        yield ("," if n else "") + json.dumps(annotation)
    yield "]}\n"


def annotations(services: Services, project_id: int, page_id: str) -> Iterator[dict[str, Any]]:
    task_type = project_type(services, project_id)
    for group in item_groups(services, project_id):
        canvas = (group.data.get("iiif") or {}).get("canvas")
        if not canvas:
            continue
        scale = _scale(group.data, group.parts)
        for n, region in enumerate(task_type.regions(group.parts, group.data)):
            yield annotation(f"{page_id}/{group.item_id}-{n}", canvas, region, scale)


def annotation(annotation_id: str, canvas: str, region: Region,
               scale: tuple[float, float]) -> dict[str, Any]:
    x, y, w, h = region.xywh
    sx, sy = scale
    xywh = ",".join(str(round(v)) for v in (x * sx, y * sy, max(w * sx, 1), max(h * sy, 1)))
    out = {"id": annotation_id, "type": "Annotation", "motivation": region.purpose}
    if region.text:  # a mark that only says where has no body (W3C allows it)
        out["body"] = {"type": "TextualBody", "value": region.text, "format": "text/plain",
                       "purpose": region.purpose}
    out["target"] = f"{canvas}#xywh={xywh}"
    out["bitesize:confidence"] = round(region.confidence, 4)
    return out


def _scale(data: dict, parts) -> tuple[float, float]:
    """Picture pixels to canvas units. The picture's size is known when the type
    recorded it in a payload (``size``); else the two are taken to match, as
    they do for the full-size images a IIIF image service gives by default."""
    iiif = data.get("iiif") or {}
    size = next((p.payload.get("size") for p in parts
                 if isinstance(p.payload, dict) and p.payload.get("size")), None)
    width, height = iiif.get("width"), iiif.get("height")
    if not (size and width and height):
        return 1.0, 1.0
    return width / size[0], height / size[1]
