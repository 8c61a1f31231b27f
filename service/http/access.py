"""With ``auth=header``, anonymous callers may read but not change anything.

One ASGI middleware in front of every route, so a write endpoint added later
is covered without remembering to: any request that is not a read (GET, HEAD,
OPTIONS) and carries no user from the authenticating proxy is refused with
401 and ``SIGN_IN_REQUIRED``. The exceptions are the DALI queries that may be
POSTed but change nothing: TAP ``/tap/sync``, SSA and DataLink.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.http.origin import SAFE_METHODS, refuse
from service.reasons import Reason

#: Paths where a POST is a query (DALI allows POST for long parameters).
READ_ONLY_POSTS = ("/tap/sync", "/ssa/", "/datalink/")


def caller(request: Request) -> str | None:
    """The user the authenticating proxy named for ``request`` (None: anonymous, or
    ``auth=anonymous``), through the application's UWS service's authenticator."""
    uws = getattr(request.app.state, "uws", None)
    return uws.authenticator(request) if uws is not None else None


class AnonymousReadOnly:
    """ASGI middleware: 401 for a write by a caller ``identify`` names no one."""

    def __init__(self, app: ASGIApp, identify: Callable[[Request], str | None]) -> None:
        self.app = app
        self.identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not scope["path"].startswith(READ_ONLY_POSTS)
            and self.identify(Request(scope)) is None
        ):
            await refuse(
                send,
                401,
                f"{Reason.SIGN_IN_REQUIRED.code}: anonymous callers may only read this "
                "service; sign in through its authenticating proxy to change anything.\n",
            )
            return
        await self.app(scope, receive, send)
