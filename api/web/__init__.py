"""The web pages (HTML) of Tiaojie: ``router`` for the pages, ``mount_static`` for the
stylesheet and script they use (served by the app itself, no CDN)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web.routes import STATIC_DIR, router

web_router = router


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


__all__ = ["mount_static", "router", "web_router"]
