"""The oracle's pages: campaigns home, overview and the labelling page, plus their compact JSON.

``/``                                     campaigns home: what alvo is, the campaigns,
                                          a form that starts one (ingest jobs, then an
                                          ``iterate`` job) and follows its jobs
``/oracle``                               campaigns, metrics, learning curve, confusion
``/oracle/{name}``                        the labelling page (``?iteration=N``); the
                                          ``iterate`` job links here
``/oracle/static/...``                    hand-written JS/CSS (no build step, no CDN)
``/campaigns/{name}/batch``               one JSON document with every row of a batch
                                          (``ITERATION``, ``ROLE=query,precision-sample``
                                          or ``candidate``, ``LIMIT``); ``ROLE=surprise``:
                                          the iteration's ranked surprises; ``ROLE=similar
                                          &OF=<id>&K=10``: a spectrum's nearest neighbours
``/campaigns/{name}/performance``         confusion matrices per iteration
``/campaigns/{name}/labels/undo``         POST ``{"spectrum_id", "relevance"?}``: take
                                          back the caller's latest verdict on it (its
                                          latest interesting/boring answer with
                                          ``"relevance": true``)
``/campaigns/{name}/guide``               the labelling guide: typical labelled source
                                          spectra per class and the conventions
                                          (:mod:`service.web.guide`)

The batch as a VOTable for SAMP (same rows, same order) is the API's
``/campaigns/{name}/candidates?ROLE=query&ITERATION=N``.

The pages are static HTML shells; everything is drawn in the browser from the
JSON (canvas plots, SVG charts), so a 100-spectrum batch is one request.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from service import __version__
from service.http.bodies import MAX_FIELD_BYTES, read_json
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store.campaigns import Campaigns
from service.store.ownership import refusal
from service.vocabulary import BATCH_ROLES, CANDIDATE, PAGE_ROLES, ROLES, SIMILAR
from service.web import guide, oracle
from service.web.api import _guarded
from service.web.home import home_html

STATIC = Path(__file__).with_name("static")
#: The labelling page's parts beside label.js: the comment and flag per row, the overview
#: grid, the labelling guide, the surprises view and "more like this".
LABEL_MODULES = ("notes.js", "grid.js", "guide.js", "surprises.js")
Owner = Callable[[Request], str | None]


def routes(settings: Settings, owner: Owner | None = None) -> list[BaseRoute]:
    """The oracle's routes; ``owner`` is the UWS authenticator (labels are attributed by it)."""
    pages = OraclePages(settings, owner or (lambda request: None))
    return [
        Route("/", pages.home, methods=["GET"]),
        Route("/oracle", pages.overview, methods=["GET"]),
        Route("/oracle/{name}", pages.labelling, methods=["GET"]),
        Route("/tap", pages.tap, methods=["GET"]),
        Route("/uws", pages.uws, methods=["GET"]),
        Mount("/oracle-static", app=StaticFiles(directory=STATIC), name="oracle-static"),
        Route("/campaigns/{name}/batch", _guarded(pages.batch), methods=["GET"]),
        Route("/campaigns/{name}/performance", _guarded(pages.performance), methods=["GET"]),
        Route("/campaigns/{name}/labels/undo", _guarded(pages.undo), methods=["POST"]),
        *guide.routes(settings),
    ]


def _shell(
    title: str,
    script: str,
    root: str,
    data: dict[str, str],
    preload: str = "",
    content: str = "",
    modules: tuple[str, ...] = (),
) -> HTMLResponse:
    """The HTML a page starts as; ``data`` goes into ``data-*`` attributes of ``<body>``.

    ``root`` is the relative way back to the service root, so the pages also
    work behind a proxy that serves the service under a path prefix. ``preload``
    is the URL of the data the page's script fetches first: the browser starts
    it while the scripts load (the script must ask for exactly this URL).
    ``content`` is HTML that works before (and without) the script. ``modules`` are
    the page's own parts in files of their own, loaded before ``script`` (which calls them).
    """
    data = {"root": root, **data}
    early = (
        f'<link rel="preload" href="{html.escape(preload)}" as="fetch" crossorigin="anonymous">'
        if preload
        else ""
    )
    attributes = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in data.items())
    parts = "".join(f'<script src="{root}oracle-static/{m}"></script>\n' for m in modules)
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
{early}
<link rel="stylesheet" href="{root}oracle-static/oracle.css">
</head>
<body {attributes}>
<noscript>This page draws the spectra in your browser: please enable JavaScript.</noscript>
{content}
<script src="{root}oracle-static/plot.js"></script>
<script src="{root}oracle-static/quality.js"></script>
<script src="{root}oracle-static/samp.js"></script>
<script src="{root}oracle-static/jobs.js"></script>
{parts}<script src="{root}oracle-static/{script}"></script>
</body></html>""",
        headers={"Cache-Control": "no-store"},
    )


class OraclePages:
    def __init__(self, settings: Settings, owner: Owner) -> None:
        self.settings = settings
        self.owner = owner

    async def home(self, request: Request) -> Response:
        service = self.settings.public_url
        return _shell(
            f"alvo {__version__}: campaigns",
            "home.js",
            "",
            {"service": service, "version": __version__},
            content=home_html(service),
        )

    async def tap(self, request: Request) -> Response:
        """The TAP service's root for a person: what it holds and how to query it."""
        base = html.escape(self.settings.public_url)
        return _plain_page(
            "alvo TAP service",
            f"<p>The result tables (campaigns, iterations, predictions, labels, spectra) "
            f"queryable in ADQL with TAP 1.1. Point TOPCAT (<em>VO → Table Access Protocol</em>) "
            f"or pyvo (<code>pyvo.dal.TAPService('{base}/tap')</code>) at "
            f"<code>{base}/tap</code>.</p>"
            f"<ul><li><a href='tap/examples'>example queries</a> (DALI examples) "
            f"and the <a href='tap/tables'>tables</a> (VOSI)</li>"
            f"<li><a href='tap/capabilities'>capabilities</a>, "
            f"<a href='tap/availability'>availability</a>; "
            f"<a href='tap/async'>asynchronous jobs</a></li></ul>",
        )

    async def uws(self, request: Request) -> Response:
        """The UWS job lists for a person: each list (shown as a table by its XSLT)."""
        lists = [
            ("ingest", "fill a dataset from SSA, DataLink, access URLs or an upload"),
            ("train", "train a CNN on a labelled dataset"),
            ("classify", "classify a dataset with a trained model"),
            ("iterate", "one active-learning step of a campaign"),
            ("tap/async", "asynchronous ADQL queries"),
        ]
        items = "".join(
            f"<li><a href='{name}'>/{name}</a>: {what} "
            f"(<a href='{name}?PHASE=QUEUED&amp;PHASE=EXECUTING'>running now</a>)</li>"
            for name, what in lists
        )
        return _plain_page(
            "alvo job lists (UWS 1.1)",
            f"<p>Every long operation is a UWS 1.1 job. POST parameters to a list (with "
            f"<code>PHASE=RUN</code>), or use <code>alvo submit</code> or pyvo; a browser "
            f"shows each list and job as a table.</p><ul>{items}</ul>",
        )

    async def overview(self, request: Request) -> Response:
        return _shell("alvo: campaigns", "overview.js", "", {})

    async def labelling(self, request: Request) -> Response:
        name = request.path_params["name"]
        user = self.owner(request)
        known = await anyio.to_thread.run_sync(
            lambda: Campaigns(self.settings).seen_by(user).get(name)
        )
        if known is None:  # a real 404, not an empty page that fails later in the browser
            return HTMLResponse(
                f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>alvo: no campaign {html.escape(name)}</title>"
                f"<link rel='stylesheet' href='../oracle-static/oracle.css'></head><body>"
                f"<main class='home-main'><section><h1>No campaign named "
                f"{html.escape(name)}</h1><p>Start one, or open another, on the "
                f"<a href='../'>campaigns home</a> (or with an <code>iterate</code> job: "
                f"<code>CAMPAIGN</code>, <code>SOURCE</code>, <code>TARGET</code>).</p>"
                f"</section></main></body></html>",
                status_code=404,
            )
        iteration = request.query_params.get("iteration", "")
        batch = f"../campaigns/{quote(name, safe='')}/batch"
        if iteration.isdecimal():
            batch += f"?ITERATION={iteration}"
        return _shell(
            f"alvo: label {name}",
            "label.js",
            "../",
            {"campaign": name},
            batch,
            modules=(*LABEL_MODULES, "sky.js"),
        )

    async def batch(self, request: Request) -> Response:
        query = _upper(request)
        roles = tuple(r for r in query.get("ROLE", ",".join(BATCH_ROLES)).split(",") if r)
        if any(role not in (*ROLES, *PAGE_ROLES) for role in roles):
            raise AlvoError(
                Reason.BAD_PARAMETER,
                f"ROLE: a comma-separated list of {', '.join((*ROLES, *PAGE_ROLES))}",
            )
        like = query.get("OF", "")
        if SIMILAR in roles and not like:
            raise AlvoError(Reason.BAD_PARAMETER, "ROLE=similar: name the spectrum with OF=")
        k_text = query.get("K", str(oracle.SIMILAR_K))
        if not k_text.isdecimal() or not 1 <= int(k_text[:9]) <= oracle.MAX_SIMILAR_K:
            raise AlvoError(
                Reason.BAD_PARAMETER, f"K: a whole number from 1 to {oracle.MAX_SIMILAR_K}"
            )
        if not query.get("LIMIT", "1").isdecimal() or len(query.get("LIMIT", "")) > 9:
            raise AlvoError(Reason.BAD_PARAMETER, "LIMIT must be a whole number of spectra")
        limit = int(query["LIMIT"]) if query.get("LIMIT") else None
        if CANDIDATE in roles:
            limit = min(limit or oracle.MAX_CANDIDATES, oracle.MAX_CANDIDATES)
        wanted = oracle.BatchRequest(
            campaign=request.path_params["name"],
            iteration=_iteration(query),
            roles=roles,
            limit=limit,
            user=self.owner(request) or "",
            like=like or None,
            k=int(k_text),
        )
        document = await anyio.to_thread.run_sync(oracle.batch, self.settings, wanted)
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    async def performance(self, request: Request) -> Response:
        name = request.path_params["name"]

        user = self.owner(request)

        def build() -> dict[str, Any]:
            campaigns = Campaigns(self.settings).seen_by(user)
            return oracle.performance(campaigns, campaigns.require(name))

        return JSONResponse(await anyio.to_thread.run_sync(build))

    async def undo(self, request: Request) -> Response:
        name = request.path_params["name"]
        data = await read_json(request, MAX_FIELD_BYTES)
        spectrum_id = data.get("spectrum_id") if isinstance(data, dict) else None
        if isinstance(spectrum_id, bool) or not isinstance(spectrum_id, int):
            raise AlvoError(Reason.BAD_PARAMETER, 'send {"spectrum_id": <id>}')
        user = self.owner(request) or ""
        relevance = data.get("relevance") is True

        def undo() -> str | None:
            campaigns = Campaigns(self.settings).seen_by(user or None)
            campaign = campaigns.require(name)
            if not campaign.may_label(user or None):  # service.store.ownership
                raise refusal("campaign", name, campaign.owner, "ask its owner to invite you")
            return campaigns.undo_verdict(campaign, spectrum_id, user, relevance)

        now = await anyio.to_thread.run_sync(undo)
        return JSONResponse({"spectrum_id": spectrum_id, "label": now})


def _plain_page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A small HTML page without script (landings, dead ends), with a way back."""
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<link rel='stylesheet' href='/oracle-static/oracle.css'></head><body>"
        f"<main class='home-main'><section><p><a href='/'>alvo home</a> · "
        f"<a href='/oracle'>campaigns</a> · <a href='/tap'>TAP</a> · <a href='/uws'>jobs</a></p>"
        f"<h1>{html.escape(title)}</h1>{body}</section></main></body></html>",
        status_code=status,
    )


async def not_found(request: Request, exc: Exception) -> Response:
    """A 404 of no route: an HTML page with a way back for a browser (``Accept:
    text/html``), the bare ``Not Found`` text for every other client."""
    if "text/html" not in request.headers.get("accept", ""):
        return PlainTextResponse("Not Found", status_code=404)
    path = html.escape(request.url.path)
    return _plain_page(
        "Nothing here",
        f"<p>alvo has no page at <code>{path}</code>. Try the <a href='/'>campaigns home</a> "
        "(start or open a campaign), the <a href='/oracle'>campaigns overview</a>, the "
        "<a href='/tap'>TAP service</a> or the <a href='/uws'>job lists</a>.</p>",
        404,
    )


def _upper(request: Request) -> dict[str, str]:
    """Query parameters with upper-case names (VO habit: names are case-insensitive)."""
    return {key.upper(): value for key, value in request.query_params.items()}


def _iteration(query: dict[str, str]) -> int | None:
    raw = query.get("ITERATION", "")
    if not raw:
        return None
    if not raw.isdecimal() or len(raw) > 9:
        raise AlvoError(Reason.BAD_PARAMETER, "ITERATION must be a non-negative integer")
    return int(raw)
