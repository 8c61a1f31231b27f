"""Run the example UWS application under uvicorn, for the black-box tests.

``python -m tests.uws.server --store URL --executor local|dask --workdir DIR --port N``

It runs through :func:`uws.serving.serve`: on SIGTERM/SIGINT the pending WAIT
requests are released first, so a WAIT cannot hold a restart hostage.
"""

from __future__ import annotations

import argparse
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from uws.auth import HeaderAuthenticator
from uws.example import create_app
from uws.serving import serve


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
    serve(app, app.state.uws, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
