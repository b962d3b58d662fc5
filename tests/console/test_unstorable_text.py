"""No console form or query carries a NUL or an unpaired surrogate to the
database: PostgreSQL's text refuses NUL with an error that was a 500 (the
security review stored a token name with one on SQLite), so the console
refuses them as the API's bodies do, with a 4xx naming the field."""
from __future__ import annotations

from engine.store.models import ApiToken


def test_a_token_name_that_is_not_text_is_refused_and_nothing_is_stored(console, forms,
                                                                       services):
    reply = forms.post(console, "/console/tokens", {"name": "nul\x00here", "expires": "never"})
    assert reply.status_code == 422
    assert "name: holds a NUL character" in reply.get_data(as_text=True)
    with services.db.session() as session:
        assert not any("\x00" in t.name for t in session.query(ApiToken).all())


def test_a_query_that_is_not_text_is_refused(console):
    reply = console.get("/console/desk?kind=%00")
    assert reply.status_code == 422 and "kind: holds a NUL character" in reply.get_data(True)
