"""Run an application that holds a :class:`uws.service.UWSService` under uvicorn.

On SIGTERM/SIGINT uvicorn first waits for open requests to finish and only
then runs the lifespan shutdown; a WAIT may be blocked for up to ``max_wait``
seconds, so a restart would hang that long. :func:`serve` releases the blocked
WAITs (they answer with the job as it is) the moment the signal arrives.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: Any) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: Any) -> None:
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(self.service.release_waits)
        super().handle_exit(sig, frame)


def serve(app: Any, service: Any, **config: Any) -> None:
    """``uvicorn.run(app, **config)``, releasing ``service``'s WAITs at shutdown."""
    _Server(uvicorn.Config(app, **config), service).run()
