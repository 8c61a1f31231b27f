"""``create_app(settings)``: the whole service, built from one settings object.

Each VO protocol module contributes its routes; nothing here holds state at
module level, so tests can build as many independent apps as they like.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from service.http.access import AnonymousReadOnly
from service.http.origin import SameOriginWrites, trusted_origins
from service.jobs.lists import uws_service
from service.settings import Settings
from service.vo import archive_links, datalink, moc, similar, ssa, vosi
from service.vo import published_labels as labels
from service.vo.tap import routes as tap_routes
from service.web import pages as oracle_pages
from service.web import sky
from service.web.api import CampaignAPI


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    routes: list[BaseRoute] = vosi.routes(settings)
    routes += ssa.routes(settings) + datalink.routes(settings) + labels.routes(settings)
    tap = tap_routes.database(settings)
    routes += tap_routes.routes(settings, db=tap) + archive_links.routes(settings)
    routes += similar.routes(settings) + moc.routes(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.save_snapshot()  # job runners in other processes read it (Settings.for_job)
    jobs = uws_service(settings, extra=[tap_routes.async_job_list(settings)])
    routes += jobs.routes()
    routes += CampaignAPI(settings, owner=jobs.authenticator).routes()
    routes += oracle_pages.routes(settings, owner=jobs.authenticator) + sky.routes(settings)
    origins = trusted_origins(settings.public_url, settings.host, settings.port)
    middleware = [Middleware(SameOriginWrites, origins=origins)]
    if settings.auth == "header":  # a shared service: anonymous callers only read
        middleware.append(Middleware(AnonymousReadOnly, identify=jobs.authenticator))
    app = Starlette(
        routes=routes,
        lifespan=jobs.lifespan,
        middleware=middleware,
        exception_handlers={404: oracle_pages.not_found},  # browsers get a way back
    )
    app.state.settings = settings
    app.state.uws = jobs
    app.state.tap = tap  # VOSI availability shows its running queries
    return app
