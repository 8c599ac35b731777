"""The web pages (HTML) of Tiaojie. :func:`mount` adds the pages and the static files
they use (served by the app itself, no CDN)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def mount(app: FastAPI) -> None:
    """Add the pages and their static files (stylesheet, script, icon) to the app."""
    from api.web import (
        admin,
        case_files,
        case_list,
        reports,
        resident,
        resident_links,
        routes,
        simulations,
        welcome,
    )

    # The list before the case page, whose /web/cases/{number} would otherwise match;
    # the links (/r/link/...) before the resident's page (/r/{code}/{verb}).
    modules = (
        case_list,
        routes,
        case_files,
        welcome,
        reports,
        simulations,
        admin,
        resident_links,
        resident,
    )
    for module in modules:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(routes.STATIC_DIR)), name="static")
    for name in routes.templates.env.list_templates():  # compile once, not on a request
        routes.templates.env.get_template(name)
