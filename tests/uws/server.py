"""Run the example UWS application under uvicorn, for the black-box tests.

``python -m tests.uws.server --store URL --executor local|dask --workdir DIR --port N``

On SIGTERM/SIGINT the pending WAIT requests are released first (they answer
with the job as it is), then uvicorn shuts down as usual: a WAIT of up to
``max_wait`` seconds must not hold a restart hostage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from uws.auth import HeaderAuthenticator
from uws.example import create_app


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: Any) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: Any) -> None:
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(self.service.release_waits)
        super().handle_exit(sig, frame)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--executor", default="local")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    async def waiting(request: Request) -> PlainTextResponse:  # test instrumentation
        return PlainTextResponse(str(request.app.state.uws.waiting()))

    app = create_app(
        args.store,
        args.executor,
        args.workdir,
        authenticator=HeaderAuthenticator(),
        workers=args.workers,
        extra_routes=[Route("/_uws/waiting", waiting)],
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    _Server(config, app.state.uws).run()


if __name__ == "__main__":
    main()
