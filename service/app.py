"""``create_app(settings)``: the whole service, built from one settings object.

Each VO protocol module contributes its routes; nothing here holds state at
module level, so tests can build as many independent apps as they like.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from service import __version__
from service.jobs import uws_service
from service.settings import Settings
from service.vo import datalink, labels, ssa, vosi
from service.vo import tap as tap_routes
from service.web import pages as oracle_pages
from service.web.access import AnonymousReadOnly
from service.web.api import CampaignAPI
from service.web.origin import SameOriginWrites, trusted_origins


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    routes: list[BaseRoute] = [Route("/", _landing_page(settings), methods=["GET"])]
    routes += vosi.routes(settings)
    routes += ssa.routes(settings) + datalink.routes(settings) + labels.routes(settings)
    routes += tap_routes.routes(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.save_snapshot()  # job runners in other processes read it (Settings.for_job)
    jobs = uws_service(settings, extra=[tap_routes.async_job_list(settings)])
    routes += jobs.routes()
    routes += CampaignAPI(settings, owner=jobs.authenticator).routes()
    routes += oracle_pages.routes(settings, owner=jobs.authenticator)
    origins = trusted_origins(settings.public_url, settings.host, settings.port)
    middleware = [Middleware(SameOriginWrites, origins=origins)]
    if settings.auth == "header":  # a shared service: anonymous callers only read
        middleware.append(Middleware(AnonymousReadOnly, identify=jobs.authenticator))
    app = Starlette(routes=routes, lifespan=jobs.lifespan, middleware=middleware)
    app.state.settings = settings
    app.state.uws = jobs
    return app


def _landing_page(settings: Settings):  # type: ignore[no-untyped-def]
    async def landing(request: Request) -> HTMLResponse:
        base = settings.public_url
        return HTMLResponse(
            f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>alvo {__version__}</title></head>
<body>
<h1>alvo {__version__}</h1>
<p>Active deep learning for rare objects in spectral archives, as an IVOA VO service.</p>
<ul>
<li><a href="{base}/oracle">Campaigns and the oracle's labelling pages</a></li>
<li>UWS 1.1 job lists: <a href="{base}/ingest">ingest</a>, <a href="{base}/train">train</a>,
<a href="{base}/classify">classify</a>, <a href="{base}/iterate">iterate</a></li>
<li>SSA 1.1: <a href="{base}/ssa/ondrejov?REQUEST=queryData&amp;MAXREC=20">ondrejov</a>,
<a href="{base}/ssa/lamost?REQUEST=queryData&amp;MAXREC=20">lamost</a>
(DataLink at <code>{base}/datalink/&lt;collection&gt;?ID=</code>)</li>
<li>TAP 1.1: <code>{base}/tap</code> (<a href="{base}/tap/tables">tables</a>,
<a href="{base}/tap/examples">examples</a>, <a href="{base}/tap/async">async jobs</a>)</li>
<li>VOSI: <a href="{base}/availability">availability</a>,
<a href="{base}/capabilities">capabilities</a></li>
</ul>
</body></html>"""
        )

    return landing
