"""IIIF Presentation manifests, v2 and v3, read into canvas images (plain data)."""
from __future__ import annotations

import pytest

from engine.errors import InvalidError
from engine.intake.iiif import (
    CanvasImage,
    CanvasProblem,
    is_presentation,
    parse_manifest,
    plain_label,
)

V2 = "http://iiif.io/api/presentation/2/context.json"
V3 = "http://iiif.io/api/presentation/3/context.json"
BASE = "https://museum.example"


def v2_canvas(n: int, service: dict | None = None, **extra) -> dict:
    resource = {"@id": f"{BASE}/derivative/{n}.jpg", "@type": "dctypes:Image"}
    if service is not None:
        resource["service"] = service
    return {"@id": f"{BASE}/canvas/{n}", "@type": "sc:Canvas", "label": f"p. {n}",
            "width": 2000, "height": 3000,
            "images": [{"@type": "oa:Annotation", "motivation": "sc:painting",
                        "resource": resource, "on": f"{BASE}/canvas/{n}"}], **extra}


def v2_manifest(canvases: list[dict]) -> dict:
    return {"@context": V2, "@id": f"{BASE}/manifest", "@type": "sc:Manifest",
            "label": "Letters", "sequences": [{"@type": "sc:Sequence", "canvases": canvases}]}


def v3_canvas(n: int, bodies: list[dict], **extra) -> dict:
    return {"id": f"{BASE}/canvas/{n}", "type": "Canvas", "width": 1200, "height": 800,
            "label": {"en": [f"Folio {n}"]},
            "items": [{"id": f"{BASE}/page/{n}", "type": "AnnotationPage",
                       "items": [{"id": f"{BASE}/anno/{n}/{i}", "type": "Annotation",
                                  "motivation": "painting", "body": body,
                                  "target": f"{BASE}/canvas/{n}"}
                                 for i, body in enumerate(bodies)]}], **extra}


def v3_image(n: int, service: list | None = None) -> dict:
    body = {"id": f"{BASE}/derivative/{n}.jpg", "type": "Image", "format": "image/jpeg"}
    if service is not None:
        body["service"] = service
    return body


def v3_manifest(canvases: list[dict]) -> dict:
    return {"@context": V3, "id": f"{BASE}/manifest", "type": "Manifest",
            "label": {"en": ["Letters"]}, "items": canvases}


def test_v2_uses_the_image_service_at_full_size_else_the_resource():
    manifest = parse_manifest(v2_manifest([
        v2_canvas(1, {"@context": "http://iiif.io/api/image/2/context.json",
                      "@id": f"{BASE}/iiif/1/", "profile": "http://iiif.io/api/image/2/level1"}),
        v2_canvas(2),
    ]))
    assert manifest.version == 2 and manifest.id == f"{BASE}/manifest"
    assert manifest.canvases == [
        CanvasImage(f"{BASE}/canvas/1", f"{BASE}/iiif/1/full/full/0/default.jpg", 2000, 3000,
                    "p. 1"),
        CanvasImage(f"{BASE}/canvas/2", f"{BASE}/derivative/2.jpg", 2000, 3000, "p. 2")]


def test_v3_uses_max_for_image_api_3_and_full_for_2():
    manifest = parse_manifest(v3_manifest([
        v3_canvas(1, [v3_image(1, [{"id": f"{BASE}/iiif3/1", "type": "ImageService3",
                                     "profile": "level1"}])]),
        v3_canvas(2, [v3_image(2, [{"@id": f"{BASE}/iiif2/2", "@type": "ImageService2",
                                     "profile": "level2"}])]),
        v3_canvas(3, [v3_image(3)]),
    ]))
    assert manifest.version == 3
    assert [c.image for c in manifest.canvases] == [
        f"{BASE}/iiif3/1/full/max/0/default.jpg", f"{BASE}/iiif2/2/full/full/0/default.jpg",
        f"{BASE}/derivative/3.jpg"]
    assert manifest.canvases[0].label == "Folio 1"
    assert (manifest.canvases[0].width, manifest.canvases[0].height) == (1200, 800)


def test_v3_reads_choices_skips_sound_and_reports_an_empty_canvas():
    sound = {"id": f"{BASE}/a.mp3", "type": "Sound"}
    choice = {"type": "Choice", "items": [v3_image(7), v3_image(8)]}
    manifest = parse_manifest(v3_manifest([
        v3_canvas(1, [choice, sound]),
        v3_canvas(2, [sound]),
        v3_canvas(3, [v3_image(3), v3_image(4)]),  # two images: two items
    ]))
    assert manifest.canvases[0].image == f"{BASE}/derivative/7.jpg"
    assert manifest.canvases[1] == CanvasProblem(f"{BASE}/canvas/2",
                                                 "no image is painted on this canvas")
    assert [c.image for c in manifest.canvases[2:]] == [f"{BASE}/derivative/3.jpg",
                                                        f"{BASE}/derivative/4.jpg"]


@pytest.mark.parametrize(("label", "text"), [
    ({"en": ["Folio 1r"], "fr": ["Feuillet"]}, "Folio 1r"),
    ({"none": ["MS 42"]}, "MS 42"),
    ({"de": ["Blatt 1", "recto"]}, "Blatt 1 recto"),
    ("p. <b>1</b> &amp; 2", "p. 1 & 2"),
    ([{"@value": "one", "@language": "en"}, "two"], "one two"),
    ({"@value": "value"}, "value"),
    ("bad\x00\x07text", "bad text"),
    (None, ""), (42, ""), ({}, ""),
])
def test_labels_become_plain_text(label, text):
    assert plain_label(label) == text


def test_a_long_label_is_cut():
    assert len(plain_label("x" * 5000)) == 500


@pytest.mark.parametrize(("document", "message"), [
    ({"@context": V2, "@type": "sc:Collection", "@id": "x"}, "collection"),
    ({"@context": V3, "type": "Collection", "id": "x"}, "collection"),
    ({"@context": V3, "type": "Canvas", "id": "x"}, "type is 'Canvas'"),
    ({"@context": V3, "type": "Manifest"}, "no 'id'"),
    ({"@context": V3, "type": "Manifest", "id": "x", "items": "nope"}, "not a list"),
    ({"@context": V3, "type": "Manifest", "id": "x", "items": []}, "no canvases"),
    ({"@context": V3, "type": "Manifest", "id": "x", "items": [5]}, "not an object"),
    ({"@context": V2, "@type": "sc:Manifest", "@id": "x"}, "no sequence"),
    ({"@context": V2, "@type": "sc:Manifest", "@id": "x", "sequences": [{}]}, "no canvases"),
    ({"@context": "http://iiif.io/api/presentation/1/context.json", "@type": "sc:Manifest"},
     "versions 2 and 3"),
    ({"@context": "https://schema.org", "type": "Manifest"}, "not a IIIF Presentation"),
    ([1, 2], "not a IIIF Presentation"),
])
def test_malformed_manifests_say_why(document, message):
    with pytest.raises(InvalidError, match=message):
        parse_manifest(document)


def test_a_canvas_without_an_id_is_a_malformed_manifest():
    canvas = v2_canvas(1)
    del canvas["@id"]
    with pytest.raises(InvalidError, match="a canvas in the IIIF manifest has no '@id'"):
        parse_manifest(v2_manifest([canvas]))


def test_presentation_is_recognised_by_its_context_only():
    assert is_presentation({"@context": [V3, "https://example.org/extra"]})
    assert is_presentation({"@context": V2})
    assert not is_presentation({"items": [{"@context": V3}]})
    assert not is_presentation([{"@context": V3}])
