"""URL converters: every ``<int:...>`` in a route is a row id, and is bounded like one.

Ids are SQL INTEGER columns (32-bit on PostgreSQL). A bigger number in a URL
can name nothing, so it is answered 404 at routing instead of reaching the
database, where SQLite overflows on it and PostgreSQL refuses it: a 500 for
what is only a wrong address.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """Werkzeug's int converter, with ids over MAX_ID a plain 404.

    Not ``max=MAX_ID``: werkzeug notes a rule's methods before running its
    converters, so a rejected id on a URL with several methods (POST and
    DELETE .../block) came out as a 405 naming the wrong methods.
    """

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        if number > MAX_ID:
            raise NotFound(f"{value} is not an id: ids go up to {MAX_ID}")
        return number


def init_app(app: Flask) -> None:
    """Must run before any route is added: rules bind their converters when added."""
    app.url_map.converters["int"] = RowIdConverter
