"""The yardstick for bench/dispatch.py part (b): the cheapest JSON endpoint Flask can serve.

It runs under the same gunicorn flags as bitesize, so the ratio of the two
shows what the volunteer path costs on top of the HTTP stack itself.
"""
from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/ok")
def ok():
    return {"ok": True}
