"""Refuse state-changing requests that a web page on another site makes a browser send.

alvo runs on the astronomer's own machine with anonymous access by default, so
any page they visit could otherwise POST a form to ``127.0.0.1:8000`` -- store
labels, start or delete jobs (cross-site request forgery). Browsers name the
page's origin in ``Origin`` on such requests; VO clients (pyvo, TOPCAT, STILTS,
curl) send none, so UWS and TAP clients are unaffected. Same-site pages (the
oracle's workbench) and the public URL behind a proxy pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SameOriginWrites:
    """ASGI middleware: 403 for a write whose ``Origin`` is neither this host nor public_url."""

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        self.public = urlsplit(public_url).netloc.lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = dict(scope["headers"])
            origin = headers.get(b"origin", b"").decode("latin-1").strip()
            host = headers.get(b"host", b"").decode("latin-1").lower()
            if origin and not self._allowed(origin, host):
                await _forbidden(origin, send)
                return
        await self.app(scope, receive, send)

    def _allowed(self, origin: str, host: str) -> bool:
        netloc = urlsplit(origin).netloc.lower()  # "null" (sandboxed pages) has none
        return bool(netloc) and netloc in {host, self.public}


async def _forbidden(origin: str, send: Send) -> None:
    body = (
        f"Forbidden: a page from {origin} may not change anything on this service. "
        "Use alvo's own pages, or a VO client (pyvo, TOPCAT, curl), which send no Origin.\n"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
