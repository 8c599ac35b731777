"""The Tiaojie HTTP app: staff REST under ``/api/v1``, Open311 GeoReport v2 under
``/open311/v2``, the web pages, ``/healthz`` and the OpenAPI schema at ``/openapi.json``.

Serve it with ``uvicorn api.app:app`` (or ``tiaojie up``)."""

from __future__ import annotations

import gc
import importlib
import importlib.resources
import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from api.errors import install_error_handlers
from api.headers import SecurityHeaders
from api.middleware import BodyGuard
from api.ratelimit import RateLimiter
from models import keys
from models.db import get_engine
from models.settings import Settings, get_settings

log = logging.getLogger("tiaojie.api")

DESCRIPTION = """\
基层矛盾纠纷调解工作流的 HTTP 接口。Staff REST (`/api/v1`, bearer token from
`POST /api/v1/auth/token` or `tiaojie token create`) and the public Open311 GeoReport v2
endpoint (`/open311/v2`, `api_key` from `tiaojie token create --role open311`).

Errors: `{"code", "message" (zh-CN), "message_en", "fields": [{"field", "message",
"message_en"}]}`. Updates carry the case `version` (or `If-Match`); a stale one gets 409.
Creating POSTs honour `Idempotency-Key`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    keys.refuse_loose_files()
    # Swagger UI at /docs and ReDoc at /redoc, their scripts and styles served from the
    # fastapi-offline package's files at /docs-assets: no CDN. (Swagger UI and ReDoc are
    # MIT and Apache-2.0 licensed, fastapi-offline MIT.)
    app = FastAPIOffline(
        title="Tiaojie 调解 API",
        version="1.0",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        static_url="/docs-assets",
    )
    app.state.settings = settings
    app.state.engine = get_engine(settings.resolved_database_url)
    app.state.open311_ip_limiter = RateLimiter(settings.open311_rate_limit_per_min)
    app.state.open311_key_limiter = RateLimiter(settings.open311_rate_limit_per_min)
    app.state.resident_limiter = RateLimiter(settings.resident_per_minute)
    install_error_handlers(app)

    from api.v1 import (
        auth,
        case_actions,
        cases,
        documents,
        metrics,
        risk,
        triage,
        units,
    )

    v1 = APIRouter(prefix="/api/v1")
    for module in (
        auth,
        cases,
        case_actions,
        documents,
        units,
        metrics,
        triage,
        risk,
    ):
        v1.include_router(module.router)
    app.include_router(v1)

    from api import open311

    app.include_router(open311.router)

    @app.get("/healthz", tags=["ops"], summary="健康检查 Health (checks the database)")
    def healthz(request: Request) -> JSONResponse:
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            log.error("health check: database unreachable (%s)", type(exc).__name__)
            return JSONResponse(
                {"status": "error", "database": "unreachable 数据库不可用"}, status_code=503
            )
        ready_file = settings.ready_file
        if ready_file is not None and not ready_file.exists():
            # Under `tiaojie up`: the database answers, but the rest is still starting.
            return JSONResponse(
                {"status": "starting", "detail": "启动中 other components are starting"},
                status_code=503,
            )
        return JSONResponse({"status": "ok"})

    _include_web(app)
    # The body limit and content-type checks run before anything is parsed (a resident's
    # photos and the scans attached to a case have their own limits); outermost, the
    # security headers go on every answer (the guard's refusals included).
    app.add_middleware(
        BodyGuard,
        max_body_bytes=settings.max_body_bytes,
        upload_bytes=settings.resident_photos_max * settings.resident_photo_max_bytes + 65536,
        max_upload_bytes=settings.attachment_max_bytes,
    )
    app.add_middleware(SecurityHeaders)
    if settings.bench_sql_count:
        from api.sql_count import SqlCount, count_statements

        count_statements(app.state.engine)
        app.add_middleware(SqlCount)
    return app


def _include_web(app: FastAPI) -> None:
    """Mount the server-rendered pages when that package is present."""
    try:
        web = importlib.import_module("api.web")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("api.web"):
            return
        raise
    mount = getattr(web, "mount", None)
    if callable(mount):
        mount(app)
    elif isinstance(getattr(web, "router", None), APIRouter):
        app.include_router(web.router)


app = create_app()
# What importing made (the libraries, the routes, the compiled templates) lives as long
# as the process: out of the collector's full passes, which re-scanned all of it (about
# 230,000 objects: a 0.2 to 0.3 s pause every few dozen pages on the bench city, the
# slowest request of a run; 40 ms at most after, over 80 case pages).
gc.collect()
gc.freeze()
