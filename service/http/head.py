"""Request heads too large for the service: a 431 (or 414 for a long URL) with a reason.

uvicorn's h11 protocol answers a head past h11's buffer limit with a bare 400
and closes the socket while the client is still sending, so the kernel resets
the connection and the client sees no answer at all (a 200 KiB header: ``Connection
reset by peer``). Whether a head was refused also depended on how it arrived: one
that came in a single read was parsed whatever its size.

:class:`HeadLimitedProtocol` measures every head the same way -- the request
line and the header lines, in bytes, against ``ALVO_MAX_HEAD_BYTES`` -- and
answers one over the limit with ``REQUEST_HEAD_TOO_LARGE`` (431) or, when the
request line alone is over it, ``URL_TOO_LONG`` (414): a JSON body like every
other refusal (:func:`service.http.errors.error_json`). It then closes
politely: it stops writing, reads and drops what the client still sends for a
few seconds, and only then closes, so the answer reaches a client that writes
its whole request before it reads (httpx, requests, curl).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.reasons import AlvoError, Reason

#: h11's own limit, when the server was started without one.
DEFAULT_HEAD_LIMIT = 16 * 1024
#: Seconds a refused client is given to finish sending before the socket closes.
LINGER_S = 5.0
#: Bytes read and dropped after a refusal at most; a client sending more is cut off.
LINGER_BYTES = 64 * 1024 * 1024


class _HeadTooLarge(h11.RemoteProtocolError):
    def __init__(self, error: AlvoError) -> None:
        super().__init__(str(error), error_status_hint=error.status)
        self.error = error


def head_refusal(limit: int, request_line: int, head: int) -> AlvoError | None:
    """The refusal of a head of ``head`` bytes whose request line has ``request_line``."""
    if request_line > limit:
        return AlvoError(
            Reason.URL_TOO_LONG,
            f"the request line has more than {limit} bytes; send long parameters in a "
            "POST body instead of the URL",
        )
    if head > limit:
        return AlvoError(
            Reason.REQUEST_HEAD_TOO_LARGE,
            f"the request line and headers have more than {limit} bytes; send fewer or "
            "shorter headers (cookies), or parameters in a POST body",
        )
    return None


class HeadLimitedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a fixed head limit and a refusal a client can read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_limit = int(self.config.h11_max_incomplete_event_size or DEFAULT_HEAD_LIMIT)
        self._refusal: AlvoError | None = None
        self._lingering = 0
        self._h11_next_event = self.conn.next_event
        self.conn.next_event = self._next_event  # type: ignore[method-assign]

    def _next_event(self) -> Any:
        """h11's next event, refusing a head over the limit however it arrived."""
        try:
            event = self._h11_next_event()
        except h11.RemoteProtocolError as error:
            if error.error_status_hint == 431:  # h11's "receive buffer too long"
                # h11 leaves the incomplete head in its buffer (no public way to see it)
                buffered = bytes(getattr(self.conn, "_receive_buffer", b""))
                line = buffered.find(b"\n")
                self._refusal = head_refusal(
                    self.head_limit, len(buffered) if line < 0 else line, len(buffered)
                )
            raise
        if isinstance(event, h11.Request):
            line = len(event.method) + len(event.target) + len(b"  HTTP/1.1\r\n")
            fields = sum(len(name) + len(value) + len(b": \r\n") for name, value in event.headers)
            head = line + fields
            refusal = head_refusal(self.head_limit, line, head)
            if refusal is not None:
                self._refusal = refusal
                raise _HeadTooLarge(refusal)
        return event

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        error, self._refusal = self._refusal, None
        self.logger.warning("refused a request: %s", error)
        body = json.dumps(
            {"error": str(error), "reason": error.reason.code, "detail": error.detail}
        )
        phrase = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}[error.status]
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (error.status, phrase, len(body))
        )
        self.transport.write(head + body.encode())
        self._linger()

    def _linger(self) -> None:
        """Half-close, then drop what the client still sends until it closes or time is up."""
        self._lingering = 1
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        super().data_received(data)

    def eof_received(self) -> None:
        if self._lingering:  # the client read the answer and closed its side
            self.transport.close()
