"""Refuse state-changing requests that a web page on another site makes a browser send.

alvo runs on the astronomer's own machine with anonymous access by default, so
any page they visit could otherwise POST a form to ``127.0.0.1:8000`` -- store
labels, start or delete jobs (cross-site request forgery). Browsers say where
such a request comes from: ``Origin`` (the page's origin) and
``Sec-Fetch-Site`` (``cross-site``, ``same-site``, ``same-origin`` or ``none``).
VO clients (pyvo, TOPCAT, STILTS, curl) send neither, so UWS and TAP clients
are unaffected.

The origins trusted are those of the *configured* service -- the public base
URL and, for a service bound to a loopback or wildcard address, the loopback
names on its port -- never the request's own ``Host`` header: under DNS
rebinding a hostile name resolves to 127.0.0.1, and ``Host`` and ``Origin``
then agree with each other but not with the configuration.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sec-Fetch-Site values of requests made by this service's own pages or by the user.
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_OR_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case, default port left out ('' if none)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        return ""
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}".lower()
    return f"{parts.scheme}://{host}:{port}".lower()


def trusted_origins(public_url: str, bind_host: str, port: int) -> frozenset[str]:
    """The origins whose pages may write: the public URL's, and loopback on the bound port."""
    origins = {origin_of(public_url)}
    if bind_host.strip("[]") in WILDCARD_OR_LOOPBACK:
        origins |= {origin_of(f"http://{name}:{port}") for name in LOOPBACK_NAMES}
    return frozenset(origins - {""})


class SameOriginWrites:
    """ASGI middleware: 403 for a write a browser sends on behalf of another site's page."""

    def __init__(self, app: ASGIApp, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = dict(scope["headers"])
            origin = headers.get(b"origin", b"").decode("latin-1").strip()
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
            if origin and origin_of(origin) not in self.origins:
                await _forbidden(f"a page from {origin}", send)
                return
            if site and site not in TRUSTED_FETCH_SITES:
                await _forbidden(f"a page on another site (Sec-Fetch-Site: {site})", send)
                return
        await self.app(scope, receive, send)


async def _forbidden(who: str, send: Send) -> None:
    await refuse(
        send,
        403,
        f"Forbidden: {who} may not change anything on this service. "
        "Use alvo's own pages, or a VO client (pyvo, TOPCAT, curl), which send no Origin. "
        "Behind a proxy, set ALVO_BASE_URL to the public URL.\n",
    )


async def refuse(send: Send, status: int, text: str) -> None:
    """Answer a request a middleware refuses: plain text, never reaching the app."""
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
