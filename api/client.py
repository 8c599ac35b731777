"""Who is on the other end of a request: the one client-address function.

Forwarded headers are believed only from the proxies named in
``settings.trusted_proxies`` (``TIAOJIE_TRUSTED_PROXIES``, comma-separated addresses;
default none). Without that, ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are ignored,
so a made-up header cannot dodge the per-address limits of sign-in and Open311 or make
a plain-http request look like https. Behind a trusted proxy the client is the
right-most address in ``X-Forwarded-For`` that is not itself a trusted proxy.
"""

from __future__ import annotations

from fastapi import Request

from models.settings import get_settings


def trusted_proxies() -> frozenset[str]:
    raw = get_settings().trusted_proxies
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _from_proxy(request: Request) -> bool:
    return _peer(request) in trusted_proxies()


def client_address(request: Request) -> str:
    peer = _peer(request)
    trusted = trusted_proxies()
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if hop not in trusted:
            return hop[:64]
    return peer


def is_https(request: Request) -> bool:
    """Whether the client reached us over https (directly, or via a trusted proxy)."""
    if request.url.scheme == "https":
        return True
    if not _from_proxy(request):
        return False
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https"


__all__ = ["client_address", "is_https", "trusted_proxies"]


def public_base(request: Request) -> str:
    """The address people reach the pages at, for links the pages hand out: the
    installation's public address (``TIAOJIE_PUBLIC_URL``) when it names one, else the
    address this request came to (so the port the app was started on, never a fixed
    one)."""
    public = get_settings().public_url
    return (public or str(request.base_url)).rstrip("/")
