"""The JSON API, v1: the contract of DESIGN.md's API table."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, request

from engine.accounts import challenge
from web import rate_limits
from web.auth import identity

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The answer call that web.hot_path did not take (a query string, another body
# type) counts against the volunteer's answer limit as it does there: refused
# here while this process knows the window is full, else counted by the
# answer's own submit (the view hands the tally to answer_reply).
ANSWER_ENDPOINT = "api.submit_answer_"


@bp.before_request
def _answer_limit() -> None:
    if request.endpoint != ANSWER_ENDPOINT:
        return
    caller = identity()  # a 401 here is the one the view would give
    limiter = rate_limits.limiter_of(current_app)
    if caller.is_volunteer and limiter is not None:
        try:
            g.answer_tally = limiter.answer_tally(caller.id)
        except rate_limits.RateLimitedError as exc:
            g.rate_limit = exc.verdict
            raise


def init_app(app: Flask) -> None:
    # a sign-up difficulty nobody could meet stops the start, as a bad limit does
    challenge.check_setting(app.extensions["bitesize"].settings.signup_work)
    from web.api import (  # noqa: F401
        jobs,
        news,
        openapi,
        projects,
        review,
        tasks,
        volunteers,
        webhooks,
    )

    app.register_blueprint(bp)
    openapi.init_app(app)
