"""Who is asking: pluggable authenticators, ``callable(request) -> owner id or None``.

UWS leaves authentication to the deployment. ``None`` means anonymous; an
anonymous caller sees only anonymous jobs, an identified one only their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from uws.models import UnauthorizedError

__all__ = ["HeaderAuthenticator", "anonymous"]


def anonymous(request: Any) -> str | None:
    """Everyone is anonymous (the default for an open service)."""
    return None


class HeaderAuthenticator:
    """Trust the user name an authenticating reverse proxy puts in a header.

    Use only behind a proxy that sets (and strips client-sent copies of) the
    header: ``X-Forwarded-User`` (oauth2-proxy, Apache ``RequestHeader``),
    ``X-Remote-User`` or ``Remote-User`` (a forwarded ``REMOTE_USER``). The first
    header present wins. With ``required=True`` a request without any is refused
    (HTTP 401) instead of being treated as anonymous.
    """

    def __init__(
        self,
        headers: Sequence[str] = ("X-Forwarded-User", "X-Remote-User", "Remote-User"),
        required: bool = False,
    ) -> None:
        self.headers = tuple(headers)
        self.required = required

    def __call__(self, request: Any) -> str | None:
        for header in self.headers:
            value = request.headers.get(header, "").strip()
            if value:
                return str(value)
        if self.required:
            raise UnauthorizedError(f"authentication required (no {self.headers[0]} header)")
        return None
