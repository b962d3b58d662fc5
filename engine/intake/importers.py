"""Importers: each kind of upload checked when it arrives, then read as numbered entries.

A job's upload is one of: items (a JSON body or a .json file), a zip of
images, a CSV of rows, a IIIF manifest (by URL or as a .json file), or a
folder on the server (from the command line). What can be judged without
the job (file type, encoding, header, mapping, item schema of a JSON file)
is judged by ``plan_upload`` while the charity is still there to read why.

The job then reads the stored upload with ``open_source``, which numbers
everything it finds in order (``seq``: a zip member, a data row, a canvas
image), good or bad, the same way on every run. That numbering is what makes
a job resumable: a re-run skips the seqs already stored as items.
"""
from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from marshmallow import Schema, ValidationError
from marshmallow.fields import List, String

from engine.delivery.outbound import FetchError, check_url
from engine.errors import BitesizeError, InvalidError, TooLargeError, UnavailableError
from engine.intake.archives import (
    IMAGE_EXTENSIONS,
    _is_system,
    check_image_archive,
    count_archive_entries,
    read_image_archive,
)
from engine.intake.csv_rows import check_csv, count_rows, parse_mapping, preview, read_rows
from engine.intake.fetch import fetch
from engine.intake.iiif import CanvasProblem, Manifest, is_presentation, parse_manifest
from engine.intake.uploads import options_name
from engine.services import Services
from engine.store.models import Job, Project
from task_types.tag import split_cell

MiB = 1024 * 1024
MAX_JSON_BYTES = 64 * MiB  # a JSON upload is parsed whole, in memory
MAX_MANIFEST_BYTES = 16 * MiB
MAX_REPORTED_ERRORS = 20
MAX_ID = 200  # the longest item id the task types accept
KINDS = ("items", "zip", "csv", "iiif", "folder")

Check = Callable[[dict], tuple[dict | None, str | None]]


@dataclass(frozen=True)
class Entry:
    """One numbered thing found in an upload: an item, or why it cannot be one."""

    seq: int
    where: dict[str, Any]  # how the job's report names it: path, line or canvas
    item: dict | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Upload:
    """What to store for a new job: its kind, the file (if any) and its options."""

    kind: str
    ext: str  # of the stored file, "" when nothing is stored
    data: IO[bytes] | None = None
    options: dict[str, Any] | None = None


# --- at upload time -----------------------------------------------------------

def plan_upload(services: Services, project: Project, *, items: list[dict] | None = None,
                upload: IO[bytes] | None = None, filename: str = "",
                mapping: str | dict | None = None, iiif: str | None = None,
                folder: str | os.PathLike | None = None) -> Upload:
    """Check an upload of any kind; InvalidError/TooLargeError say what is wrong."""
    suffix = PurePosixPath(filename.lower()).suffix
    if isinstance(mapping, str) and not mapping.strip():
        mapping = None  # a form's empty field
    if mapping is not None and (upload is None or suffix != ".csv"):
        raise InvalidError("a mapping is only for a .csv upload", {"mapping": "not a CSV"})
    if items is not None:
        return _items_upload(validate_items(services, project, items))
    if iiif is not None:
        return Upload("iiif", "manifest.json", options={"url": _checked_url(iiif)})
    if folder is not None:
        return Upload("folder", "", options={"path": str(_checked_folder(folder))})
    if upload is None or suffix not in (".zip", ".csv", ".json"):
        raise InvalidError(f"{filename!r} is not a .zip, .csv or .json file: send a zip of "
                           "images, a CSV of rows, a JSON list of items or a IIIF manifest "
                           "as 'file', or JSON {\"items\": [...]}",
                           {"file": "expected a .zip, .csv or .json file"})
    if suffix == ".zip":
        return Upload("zip", "zip", _checked_zip(upload, filename))
    if suffix == ".csv":
        return _csv_upload(services, project, upload, filename, mapping)
    return _json_upload(services, project, upload, filename)


def validate_items(services: Services, project: Project, items: list) -> list[dict]:
    """The items as the task type's schema loads them (stripped, typed); the whole
    upload is refused if any item is malformed, naming each bad one by index."""
    schema = services.registry.get(project.task_type).item_schema(project.config)
    loaded, errors = [], {}
    for index, item in enumerate(items):
        try:
            loaded.append(schema.load(item))
        except ValidationError as exc:
            errors[str(index)] = exc.messages
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    if errors:
        raise InvalidError(f"{len(errors)} item(s) are not valid", {"items": errors})
    return loaded


def _items_upload(items: list[dict]) -> Upload:
    return Upload("items", "json", io.BytesIO(json.dumps(items).encode()))


def _checked_zip(upload: IO[bytes], filename: str) -> IO[bytes]:
    """The uploaded zip, its central directory checked now: a file that is no zip,
    or too big a one, is refused at upload time instead of failing the job later."""
    try:
        check_image_archive(upload)
    except BitesizeError as exc:
        raise type(exc)(f"{filename}: {exc.message}", {"file": exc.message}) from exc
    return upload


def _csv_upload(services: Services, project: Project, upload: IO[bytes], filename: str,
                mapping: str | dict | None) -> Upload:
    if isinstance(mapping, str) or mapping is None:
        mapping = parse_mapping(mapping)
    fields = [field.name for field in item_fields(services, project)]
    try:
        columns = check_csv(upload, fields, mapping)
    except InvalidError as exc:
        raise InvalidError(f"{filename}: {exc.message}", exc.fields) from exc
    return Upload("csv", "csv", upload, {"columns": columns})


@dataclass(frozen=True)
class ItemField:
    """A field of the project's items, as a CSV column can fill it."""

    name: str
    required: bool


@dataclass(frozen=True)
class CsvPreview:
    """A CSV's columns and first rows, the item fields they may fill, and the
    column each field would take unmapped (the one named like it)."""

    columns: list[str]
    rows: list[list[str]]
    fields: list[ItemField]
    suggested: dict[str, str]


def item_fields(services: Services, project: Project) -> list[ItemField]:
    """The fields the project's task type reads from an item (a CSV's columns map
    onto these; ``gold`` among them marks a gold item)."""
    schema = services.registry.get(project.task_type).item_schema(project.config)
    return [ItemField(field.data_key or name, field.required)
            for name, field in schema.load_fields.items()]


def preview_csv(services: Services, project: Project, upload: IO[bytes], filename: str,
                rows: int = 5, checked: bool = False) -> CsvPreview:
    """What a person needs to map a CSV's columns; its encoding and header are
    checked now, as ``plan_upload`` would (InvalidError naming the file), unless
    ``checked`` (csv_rows.preview)."""
    try:
        columns, first = preview(upload, rows, checked)
    except InvalidError as exc:
        raise InvalidError(f"{filename}: {exc.message}", exc.fields) from exc
    fields = item_fields(services, project)
    return CsvPreview(columns, first, fields, _suggested(columns, fields))


def _suggested(columns: list[str], fields: list) -> dict[str, str]:
    """The column to offer for each item field: the one named like it, whatever
    its case (a spreadsheet's "ID", "Text"), when exactly one is."""
    named: dict[str, list[str]] = {}
    for column in columns:
        named.setdefault(column.casefold(), []).append(column)
    return {f.name: found[0] for f in fields
            if len(found := named.get(f.name.casefold(), [])) == 1}


def _json_upload(services: Services, project: Project, upload: IO[bytes],
                 filename: str) -> Upload:
    """A .json file: a IIIF manifest if its @context says so, else items (a list,
    or an object with ``items``) checked like a JSON body's."""
    data = upload.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise TooLargeError(f"{filename} is over {MAX_JSON_BYTES // MiB} MB, the limit for a "
                            "JSON upload: send a CSV for more", {"file": "too large"})
    document = load_json(data, filename)
    if is_presentation(document):
        try:
            parse_manifest(document)
        except InvalidError as exc:
            raise InvalidError(f"{filename}: {exc.message}", {"file": exc.message}) from exc
        return Upload("iiif", "manifest.json", io.BytesIO(data))
    if isinstance(document, dict) and set(document) == {"items"}:
        document = document["items"]
    if not isinstance(document, list) or not document:
        raise InvalidError(f"{filename} must hold a non-empty list of items, or "
                           "{\"items\": [...]}, or a IIIF manifest", {"file": "no items"})
    try:
        return _items_upload(validate_items(services, project, document))
    except InvalidError as exc:
        raise InvalidError(f"{filename}: {exc.message}", exc.fields) from exc


def load_json(data: bytes, what: str) -> Any:
    """Strict JSON (no NaN, no lone surrogates or NULs, which no database stores)."""
    try:
        document = json.loads(data.decode("utf-8-sig"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidError(f"{what} is not valid JSON: {exc}", {"file": "not JSON"}) from exc
    if _holds_unstorable(document):
        raise InvalidError(f"{what} holds a NUL character or an unpaired surrogate: not text",
                           {"file": "not text"})
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _holds_unstorable(document: Any) -> bool:
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value):
                return True
        elif isinstance(value, dict):
            stack += [*value.keys(), *value.values()]
        elif isinstance(value, list):
            stack += value
    return False


def _checked_url(url: Any) -> str:
    """A URL the outbound guard would request (http(s), a host, no credentials);
    its address is checked when the job fetches it."""
    try:
        if not isinstance(url, str) or len(url) > 2048:
            raise FetchError(str(url)[:50], "not an http(s) URL")
        check_url(url)
    except FetchError as exc:
        raise InvalidError(f"iiif must be the http(s) URL of a IIIF manifest: {exc.reason}",
                           {"iiif": exc.reason}) from None
    return url


def _checked_folder(folder: str | os.PathLike) -> Path:
    path = Path(folder).resolve()
    if not path.is_dir():
        raise InvalidError(f"{folder} is not a folder", {"path": "not a folder"})
    return path


def write_options(services: Services, job: Job, options: dict[str, Any]) -> None:
    services.uploads.put_json(options_name(job.id), options)


def _options(services: Services, job: Job) -> dict[str, Any]:
    """What the job needs beside its file: a CSV's columns, a manifest's URL, a folder."""
    return services.uploads.get_json(options_name(job.id)) or {}


# --- when the job runs ----------------------------------------------------------

def open_source(services: Services, job: Job, project: Project, path: Path | None,
                ) -> tuple[int, Iterator[Entry]]:
    """How many entries the stored upload holds, and the entries in order;
    `path` is a local copy of the upload (Uploads.opened), read before the
    block that made it ends (None for a folder job, which has no upload)."""
    if job.kind == "items":
        items = json.loads(path.read_text())
        return len(items), (Entry(seq, {}, item) for seq, item in enumerate(items))
    if job.kind == "zip":
        members = read_image_archive(path)
        return count_archive_entries(path), (
            _image_entry(services, seq, member.path, getattr(member, "data", None),
                         getattr(member, "reason", None)) for seq, member in enumerate(members))
    options = _options(services, job)
    if job.kind == "csv":
        return _csv_entries(path, options["columns"], _checker(services, project, cells=True))
    if job.kind == "iiif":
        return _iiif_entries(path, lambda: services.uploads.keep(job.source, path),
                             options.get("url"), _checker(services, project),
                             services.settings.fetch_allow)
    if job.kind == "folder":
        return _folder_entries(services, Path(options["path"]))
    raise InvalidError(f"a job of kind {job.kind!r} cannot be split")


def _checker(services: Services, project: Project, cells: bool = False) -> Check:
    """Load an item with the project's item schema: (item, None) or (None, why).

    ``cells``: the item is a CSV row's, every value one string, so a field that
    takes a list of texts (tag's gold) gets its entries split on ";" as
    `bitesize consensus` splits an answers CSV's tags (task_types.tag.split_cell).
    """
    schema = services.registry.get(project.task_type).item_schema(project.config)
    lists = _text_lists(schema) if cells else set()

    def check(item: dict) -> tuple[dict | None, str | None]:
        if lists:
            item = {name: split_cell(value) if name in lists else value
                    for name, value in item.items()}
        try:
            return schema.load(item), None
        except ValidationError as exc:
            return None, _reason(item, exc.messages)

    return check


def _text_lists(schema: Schema) -> set[str]:
    """The item fields that take a list of texts, by the name a CSV column gives."""
    return {field.data_key or name for name, field in schema.load_fields.items()
            if isinstance(field, List) and isinstance(field.inner, String)}


def _reason(item: dict, messages: Any) -> str:
    """marshmallow's messages as one line; a file path where an image URL belongs
    gets a hint, since it is the commonest mistake in a spreadsheet."""
    flat = messages if isinstance(messages, dict) else {"item": messages}
    said: dict[str, list[str]] = {}  # one message, every field it is about
    for field, text in flat.items():
        said.setdefault(" ".join(map(str, text)) if isinstance(text, list) else str(text),
                        []).append(str(field))
    parts = [f"{', '.join(fields)}: {text}" for text, fields in said.items()]
    image = item.get("image")
    if "image" in flat and isinstance(image, str) and "://" not in image \
            and not image.startswith("/media/"):
        parts.insert(0, f"image {image[:100]!r} is a file path, not an http(s) URL or a "
                        "/media/ image: send the pictures as a .zip, or import their folder "
                        "with `bitesize import`")
    return "; ".join(parts)


def _csv_entries(path: Path, columns: dict[str, int], check: Check,
                 ) -> tuple[int, Iterator[Entry]]:
    def entries() -> Iterator[Entry]:
        for seq, row in enumerate(read_rows(path, columns)):
            if row.values is None:
                yield Entry(seq, {"line": row.line}, problem=row.problem)
            else:
                item, problem = check(row.values)
                yield Entry(seq, {"line": row.line}, item, problem)

    return count_rows(path), entries()


def _iiif_entries(path: Path, keep: Callable[[], None], url: str | None, check: Check,
                  allow: str) -> tuple[int, Iterator[Entry]]:
    """The manifest is fetched on the first run and kept (only if it reads as one),
    so every later run numbers the same canvases: written at `path`, then
    `keep` (Uploads.keep) before any canvas is split."""
    if not path.exists():
        data = _fetched_manifest(url, allow)
        manifest = parse_manifest(load_json(data, "the IIIF manifest"))
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        part.write_bytes(data)
        os.replace(part, path)
        keep()
    else:
        manifest = parse_manifest(load_json(path.read_bytes(), "the IIIF manifest"))
    return len(manifest.canvases), (_canvas_entry(seq, manifest, check)
                                    for seq in range(len(manifest.canvases)))


def _fetched_manifest(url: str | None, allow: str) -> bytes:
    """The manifest's bytes, through the outbound guard; no answer or a server
    error is worth trying again later (UnavailableError), anything else is the
    URL's fault. The error is the guard's own words, never the server's reply."""
    try:
        return fetch(url or "", MAX_MANIFEST_BYTES, timeout=60, allow=allow)
    except FetchError as exc:
        error = UnavailableError if exc.transient else InvalidError
        raise error(f"the IIIF manifest could not be fetched: {exc.reason}") from None


def _canvas_entry(seq: int, manifest: Manifest, check: Check) -> Entry:
    """One canvas image as an item. The item schema sees what it knows (image,
    id); the rest is kept beside it under ``iiif`` for exports and later use."""
    canvas = manifest.canvases[seq]
    where = {"canvas": canvas.canvas}
    if isinstance(canvas, CanvasProblem):
        return Entry(seq, where, problem=canvas.reason)
    ref = canvas.canvas if len(canvas.canvas) <= MAX_ID else f"canvas {seq + 1}"
    item, problem = check({"image": canvas.image, "id": ref})
    if item is None:
        return Entry(seq, where, problem=problem)
    return Entry(seq, where, {**item, "iiif": {
        "canvas": canvas.canvas, "width": canvas.width, "height": canvas.height,
        "label": canvas.label, "manifest": manifest.id}})


def _image_entry(services: Services, seq: int, path: str, data: bytes | None,
                 refusal: str | None) -> Entry:
    """A picture found in a zip or a folder, stored (by content) as an item."""
    if refusal is not None or data is None:
        return Entry(seq, {"path": path}, problem=refusal or "cannot be read")
    try:
        stored = services.media.put(data, path)
    except BitesizeError as exc:
        return Entry(seq, {"path": path}, problem=exc.message)
    return Entry(seq, {"path": path}, {"image": f"/media/{stored.name}",
                                       "thumb": f"/media/{stored.thumb}", "id": path})


def _folder_entries(services: Services, root: Path) -> tuple[int, Iterator[Entry]]:
    found = _folder_files(root, services.media.max_bytes)

    def entries() -> Iterator[Entry]:
        for seq, (path, refusal) in enumerate(found):
            data, problem = None, refusal
            if refusal is None:
                try:
                    data = (root / path).resolve().read_bytes()
                except OSError as exc:
                    problem = f"cannot be read: {exc.strerror or exc}"
            yield _image_entry(services, seq, path, data, problem)

    return len(found), entries()


def _folder_files(root: Path, max_bytes: int) -> list[tuple[str, str | None]]:
    """(path relative to the folder, why it is refused or None), sorted so every
    run numbers the files alike. Hidden and system files are skipped; symbolic
    links are followed only to files inside the folder."""
    real_root = root.resolve()
    found = []
    for base, dirs, files in os.walk(root):  # does not descend into linked folders
        here = Path(base)
        dirs[:] = sorted(d for d in dirs if not _is_system(d))
        for name in dirs:
            if (here / name).is_symlink():
                found.append((_relative(here / name, root), "a symbolic link to a folder: "
                                                            "not followed"))
        for name in files:
            relative = _relative(here / name, root)
            if not _is_system(relative):
                found.append((relative, _refusal(here / name, real_root, max_bytes)))
    return sorted(found)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _refusal(path: Path, real_root: Path, max_bytes: int) -> str | None:
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return "not an image file"
    real = path.resolve()
    if not real.is_relative_to(real_root):
        return "a symbolic link out of the folder: not followed"
    try:
        info = real.stat()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > max_bytes:
        return f"too large: {info.st_size} bytes, over the limit of {max_bytes}"
    return None
