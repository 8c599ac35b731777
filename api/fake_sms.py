"""A local stand-in for an SMS gateway, for the demo and the tests: it accepts what
:class:`tasks.sms.SmsGateway` sends, keeps each message once per ``Idempotency-Key``
(as a real gateway should), and lists what it received.

Run it beside the app and point the app at it::

    python -m api.fake_sms --port 8025
    TIAOJIE_SMS_URL=http://127.0.0.1:8025/messages tiaojie up

``GET /messages`` lists the messages received (JSON); ``GET /`` shows them as a page.
Messages are kept in memory only.
"""

from __future__ import annotations

import argparse
import html
import json
import threading
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route


class FakeSmsReceiver:
    """The received messages, once per idempotency key. ``handle`` answers an
    ``httpx.Request`` (for ``httpx.MockTransport`` in tests); :meth:`app` is ASGI."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.messages: list[dict[str, Any]] = []
        self.posts = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def receive(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.key and headers.get("authorization") != f"Bearer {self.key}":
            return 401, {"error": "bad key"}
        try:
            data = json.loads(body)
            to, template = str(data["to"]), str(data["template"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": "send to, template and params as JSON"}
        key = headers.get("idempotency-key") or ""
        with self._lock:
            self.posts += 1
            if key and key in self._seen:
                return 200, {"status": "duplicate"}
            self._seen.add(key)
            self.messages.append(
                {"key": key, "to": to, "template": template, "params": data.get("params", {})}
            )
        return 202, {"status": "accepted"}

    def handle(self, request: httpx.Request) -> httpx.Response:
        status, body = self.receive(request.headers, request.read())
        return httpx.Response(status, json=body)

    def app(self) -> Starlette:
        async def post(request: Request) -> Response:
            status, body = self.receive(request.headers, await request.body())
            return JSONResponse(body, status_code=status)

        async def listing(_request: Request) -> Response:
            return JSONResponse(self.messages)

        async def page(_request: Request) -> Response:
            rows = "".join(
                f"<tr><td>{html.escape(m['to'])}</td><td>{html.escape(m['template'])}</td>"
                f"<td>{html.escape(json.dumps(m['params'], ensure_ascii=False))}</td></tr>"
                for m in reversed(self.messages)
            )
            return HTMLResponse(
                "<!doctype html><meta charset=utf-8><title>短信（本地模拟）</title>"
                "<h1>收到的短信 Messages received (local fake gateway)</h1>"
                "<table border=1><tr><th>to</th><th>template</th><th>params</th></tr>"
                f"{rows}</table>"
            )

        return Starlette(
            routes=[
                Route("/messages", post, methods=["POST"]),
                Route("/messages", listing, methods=["GET"]),
                Route("/", page, methods=["GET"]),
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="A local fake SMS gateway (demo, tests).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--key", default=None, help="the API key to expect (optional)")
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(FakeSmsReceiver(args.key).app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
