"""Who is asking: pluggable authenticators, ``callable(request) -> owner id or None``.

UWS leaves authentication to the deployment. ``None`` means anonymous; an
anonymous caller sees only anonymous jobs, an identified one only their own.
"""

from __future__ import annotations

from typing import Any

from uws.models import UnauthorizedError

__all__ = ["DEFAULT_IDENTITY_HEADER", "HeaderAuthenticator", "anonymous"]

#: The header oauth2-proxy and Apache (``RequestHeader set X-Forwarded-User``) use.
DEFAULT_IDENTITY_HEADER = "X-Forwarded-User"


def anonymous(request: Any) -> str | None:
    """Everyone is anonymous (the default for an open service)."""
    return None


class HeaderAuthenticator:
    """Trust the user name an authenticating reverse proxy puts in ONE header.

    Use only behind a proxy that sets the header and strips any copy a client
    sent. Exactly one header is read (``X-Forwarded-User`` unless configured):
    trusting several, first one wins, let a client pick the one the proxy does
    not strip and call itself anyone. With ``required=True`` a request without
    it is refused (HTTP 401) instead of being treated as anonymous.
    """

    def __init__(self, header: str = DEFAULT_IDENTITY_HEADER, required: bool = False) -> None:
        if not isinstance(header, str) or not header.strip():
            raise ValueError("name the one identity header the proxy sets")
        self.header = header.strip()
        self.required = required

    def __call__(self, request: Any) -> str | None:
        value = str(request.headers.get(self.header, "")).strip()
        if value:
            return value
        if self.required:
            raise UnauthorizedError(f"authentication required (no {self.header} header)")
        return None
