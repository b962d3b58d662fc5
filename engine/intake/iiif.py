"""IIIF Presentation manifests (versions 2 and 3): one item per canvas image.

A manifest is how museums and archives publish scans: a list of canvases
(pages, photographs), each painted with one or more images, usually served by
a IIIF Image API service that can deliver any size of the picture. Reading
one needs no IIIF library: the two versions differ in key names (``@id`` and
``id``, ``sequences`` and ``items``, annotations' ``resource`` and ``body``)
and in how labels are written, and that is what this module smooths over.

Manifests come from other people's servers, so nothing here trusts their
shape: a wrong type anywhere is an InvalidError naming what was expected,
and one canvas without a usable image is that canvas's problem only.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidError

PRESENTATION_CONTEXT = "iiif.io/api/presentation/"
MAX_LABEL = 500
_TAG = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]+")


@dataclass(frozen=True)
class CanvasImage:
    """One image painted on a canvas, with what a charity wants to keep of it."""

    canvas: str  # the canvas id (a URL)
    image: str  # a URL of the whole image, as large as the server gives
    width: int | None  # of the canvas, in the manifest's coordinates
    height: int | None
    label: str  # the canvas label, as plain text


@dataclass(frozen=True)
class CanvasProblem:
    canvas: str
    reason: str


@dataclass(frozen=True)
class Manifest:
    id: str
    version: int  # 2 or 3
    canvases: list[CanvasImage | CanvasProblem]  # in reading order


def is_presentation(document: Any) -> bool:
    """Whether a parsed JSON document says it is IIIF Presentation (any version)."""
    return isinstance(document, dict) and any(
        PRESENTATION_CONTEXT in context for context in _contexts(document))


def parse_manifest(document: Any) -> Manifest:
    """The canvas images of a v2 or v3 manifest; InvalidError if it is not one."""
    version = _version(document)
    kind = document.get("@type" if version == 2 else "type")
    if kind in ("sc:Collection", "Collection"):
        raise InvalidError("this is a IIIF collection, not a manifest: import each of its "
                           "manifests")
    if kind not in ("sc:Manifest", "Manifest"):
        raise InvalidError(f"not a IIIF manifest: its type is {kind!r}")
    manifest_id = _string(document, "@id" if version == 2 else "id", "the manifest")
    canvases = _v2_canvases(document) if version == 2 else _list(document, "items", "manifest")
    found = [entry for canvas in canvases for entry in _canvas_images(canvas, version)]
    if not found:
        raise InvalidError("the IIIF manifest has no canvases")
    return Manifest(manifest_id, version, found)


def _contexts(document: dict) -> list[str]:
    context = document.get("@context")
    contexts = context if isinstance(context, list) else [context]
    return [c for c in contexts if isinstance(c, str)]


def _version(document: Any) -> int:
    if not is_presentation(document):
        raise InvalidError("not a IIIF Presentation manifest: its @context names no "
                           "http://iiif.io/api/presentation/ context")
    contexts = " ".join(_contexts(document))
    if f"{PRESENTATION_CONTEXT}3" in contexts:
        return 3
    if f"{PRESENTATION_CONTEXT}2" in contexts:
        return 2
    raise InvalidError("only IIIF Presentation versions 2 and 3 are supported")


def _v2_canvases(document: dict) -> list:
    """The canvases of the first sequence: v2 says it is the default reading order."""
    sequences = _list(document, "sequences", "manifest")
    if not sequences or not isinstance(sequences[0], dict):
        raise InvalidError("the IIIF manifest has no sequence of canvases")
    return _list(sequences[0], "canvases", "sequence")


def _canvas_images(canvas: Any, version: int) -> list[CanvasImage | CanvasProblem]:
    if not isinstance(canvas, dict):
        raise InvalidError("a canvas of the IIIF manifest is not an object")
    canvas_id = _string(canvas, "@id" if version == 2 else "id", "a canvas")
    try:
        resources = _v2_resources(canvas) if version == 2 else _v3_bodies(canvas)
        images = [_image_url(resource, version) for resource in resources]
    except InvalidError as exc:
        return [CanvasProblem(canvas_id, exc.message)]
    if not images:
        return [CanvasProblem(canvas_id, "no image is painted on this canvas")]
    width, height = _size(canvas, "width"), _size(canvas, "height")
    label = plain_label(canvas.get("label"))
    return [CanvasImage(canvas_id, image, width, height, label) for image in images]


def _v2_resources(canvas: dict) -> list[dict]:
    resources = []
    for annotation in _list(canvas, "images", "canvas"):
        resource = annotation.get("resource") if isinstance(annotation, dict) else None
        if isinstance(resource, dict) and resource.get("@type") == "oa:Choice":
            resource = resource.get("default")  # the image shown unless a viewer picks
        if not isinstance(resource, dict):
            raise InvalidError("an image annotation has no resource")
        resources.append(resource)
    return resources


def _v3_bodies(canvas: dict) -> list[dict]:
    """The image bodies of the canvas's painting annotations; sound, video and
    text are not pictures a volunteer can be shown, so they are left out."""
    bodies = []
    for page in _list(canvas, "items", "canvas"):
        if not isinstance(page, dict):
            raise InvalidError("an annotation page is not an object")
        for annotation in _list(page, "items", "annotation page"):
            if not isinstance(annotation, dict) or annotation.get("motivation") != "painting":
                continue
            body = annotation.get("body")
            for one in body if isinstance(body, list) else [body]:
                if isinstance(one, dict) and one.get("type") == "Choice":
                    choices = one.get("items")
                    one = choices[0] if isinstance(choices, list) and choices else None
                if isinstance(one, dict) and one.get("type") == "Image":
                    bodies.append(one)
    return bodies


def _image_url(resource: dict, version: int) -> str:
    """The whole image from its Image API service when there is one (the resource's
    own URL is often a small derivative), else the resource's URL."""
    service = _image_service(resource.get("service"))
    if service is not None:
        service_id, size = service
        return f"{service_id.rstrip('/')}/full/{size}/0/default.jpg"
    return _string(resource, "@id" if version == 2 else "id", "an image")


def _image_service(services: Any) -> tuple[str, str] | None:
    """(service id, the size keyword of its Image API version): ``max`` for Image
    API 3, ``full`` for 2 and 1 (``max`` only exists from 2.1 on)."""
    for service in services if isinstance(services, list) else [services]:
        if not isinstance(service, dict):
            continue
        kind = str(service.get("type") or service.get("@type") or "")
        context = service.get("@context")
        profile = service.get("profile")
        hints = " ".join(str(v) for v in (kind, context, profile) if v)
        if "ImageService" not in kind and "iiif.io/api/image" not in hints \
                and "image-api" not in hints:
            continue
        service_id = service.get("id") or service.get("@id")
        if isinstance(service_id, str) and service_id:
            v3 = kind == "ImageService3" or "iiif.io/api/image/3" in hints
            return service_id, "max" if v3 else "full"
    return None


def plain_label(label: Any) -> str:
    """A label as one line of plain text: v3 language maps (English first, then
    no language, then any), v2 strings, lists and ``@value`` objects; HTML
    tags and control characters removed."""
    if isinstance(label, dict) and "@value" not in label:
        values = label.get("en") or label.get("none") or next(iter(label.values()), [])
    else:
        values = label
    parts = [_text(value) for value in (values if isinstance(values, list) else [values])]
    text = " ".join(part for part in parts if part)
    return text[:MAX_LABEL]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("@value")
    if not isinstance(value, str):
        return ""
    text = html.unescape(_TAG.sub(" ", value))
    return " ".join(_CONTROL.sub(" ", text).split())


def _list(document: dict, key: str, what: str) -> list:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise InvalidError(f"the IIIF {what}'s {key!r} is not a list")
    return value


def _string(document: dict, key: str, what: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidError(f"{what} in the IIIF manifest has no {key!r}")
    return value.strip()


def _size(canvas: dict, key: str) -> int | None:
    value = canvas.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
