"""The campaign API: JSON for the labelling pages, VOTable/CSV for VO tools.

``/campaigns``                       GET list, POST create (name, source, target, batch,
                                      oracles: who besides the creator may label)
``/campaigns/{name}``                GET summary: datasets, iterations, label counts, conflicts
``/campaigns/{name}/candidates``     GET an iteration's candidates or query batch (VOTable)
``/campaigns/{name}/labels``         GET export (``FORMAT=votable|csv|json``), POST verdicts
                                      (JSON ``{"labels": [{"pubdid"|"spectrum_id", "label"}]}``,
                                      or a VOTable/CSV body or ``file`` upload with ``label``)

Labels are attributed to the caller as the UWS job lists know them (the same
authenticator), so two people labelling one campaign never overwrite each
other silently: the reply lists the conflicts a POST created.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import numpy as np
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.campaigns import Campaigns, LabelOutcome, Verdict
from service.jobs.params import NAME
from service.labelfiles import parse_labels
from service.ownership import parse_oracles, refusal
from service.settings import Settings
from service.tables import schema

Handler = Callable[[Request], Awaitable[Response]]
VOTABLE_TYPE = "application/x-votable+xml"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _guarded(handler: Handler) -> Handler:
    """Domain errors become 4xx with the message; nothing escapes as a 500 traceback."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except LookupError as error:
            return _error(404, str(error.args[0] if error.args else error))
        except ValueError as error:
            return _error(400, str(error))
        except PermissionError as error:  # service.ownership: not the caller's to change
            return _error(403, str(error))

    return wrapped


class CampaignAPI:
    def __init__(self, settings: Settings, owner: Callable[[Request], str | None]) -> None:
        self.settings = settings
        self.owner = owner

    @property
    def campaigns(self) -> Campaigns:
        return Campaigns(self.settings)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/campaigns", _guarded(self.list_or_create), methods=["GET", "POST"]),
            Route("/campaigns/{name}", _guarded(self.summary), methods=["GET"]),
            Route("/campaigns/{name}/labels", _guarded(self.labels), methods=["GET", "POST"]),
            Route("/campaigns/{name}/candidates", _guarded(self.candidates), methods=["GET"]),
        ]

    async def list_or_create(self, request: Request) -> Response:
        if request.method == "GET":
            names = await anyio.to_thread.run_sync(self.campaigns.names)
            return JSONResponse({"campaigns": names})
        data = await _payload(request)
        name = str(data.get("name", ""))
        if not NAME.match(name):
            raise ValueError("name: use letters, digits, '_', '.', '-' (at most 64)")
        if not (data.get("source") and data.get("target")):
            raise ValueError("source and target: name the labelled source dataset and the pool")
        batch = int(data.get("batch", 100))
        owner, oracles = self.owner(request), parse_oracles(data.get("oracles", ()))

        def create() -> None:
            self.campaigns.create(
                name, str(data.get("source", "")), str(data.get("target", "")), batch,
                str(data.get("description", "")), owner, oracles,
            )  # fmt: skip

        await anyio.to_thread.run_sync(create)
        return JSONResponse({"campaign": name}, status_code=201, headers={"Location": f"{name}"})

    async def summary(self, request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(await anyio.to_thread.run_sync(self._summary, name))

    def _summary(self, name: str) -> dict[str, Any]:
        campaigns = self.campaigns
        campaign = campaigns.require(name)
        verdicts = campaigns.pool_verdicts(campaign)
        counts: dict[str, int] = {}
        for verdict in verdicts.values():
            counts[verdict] = counts.get(verdict, 0) + 1
        return {
            "name": campaign.name,
            "description": campaign.description,
            "source": campaign.source.name,
            "target": campaign.target.name,
            "batch_size": campaign.batch_size,
            "label_counts": counts,
            "conflicts": campaigns.conflicts(campaign),
            "iterations": [
                {k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v) for k, v in it.items()}
                for it in campaigns.iterations(campaign)
            ],
        }

    async def candidates(self, request: Request) -> Response:
        """An iteration's candidates or query batch as VOTable (latest iteration by default).

        ``ITERATION`` (number), ``ROLE`` (candidates | query), ``RESPONSEFORMAT``.
        """
        from service.jobs.params import JobParams
        from service.jobs.results import candidates_votable
        from service.vo import dali

        params = JobParams(request.query_params.multi_items())
        try:
            fmt = dali.response_format(params)
            role = params.choice("ROLE", ["candidates", "query"], "candidates")
            number = params.integer("ITERATION", -1, 0) if params.get("ITERATION") else None
        except dali.DaliError as error:
            return dali.error_response(error)
        name = request.path_params["name"]

        def build() -> bytes:
            campaign = self.campaigns.require(name)
            last = self.campaigns.last_iteration(campaign)
            iteration = last if number is None else number
            if iteration is None or (last is not None and iteration > last):
                raise LookupError(f"campaign {name!r} has no iteration {iteration}: run /iterate")
            roles = ("query", "precision-sample") if role == "query" else None
            return candidates_votable(
                self.settings, campaign, iteration, roles, role, fmt.serialization
            )

        return Response(await anyio.to_thread.run_sync(build), media_type=fmt.media_type)

    async def labels(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            fmt = request.query_params.get("FORMAT", request.query_params.get("format"))
            fmt = fmt or _accepted_format(request.headers.get("accept", ""))
            body, media = await anyio.to_thread.run_sync(self._export, name, fmt.lower())
            return Response(body, media_type=media)
        user = self.owner(request)
        verdicts = await _verdicts(request, user or "")

        def store() -> LabelOutcome:
            campaign = self.campaigns.require(name)
            if not campaign.may_label(user):
                raise refusal("campaign", name, campaign.owner, "ask its owner to invite you")
            return self.campaigns.add_labels(campaign, verdicts)

        outcome = await anyio.to_thread.run_sync(store)
        return JSONResponse(
            {
                "stored": outcome.stored,
                "unchanged": outcome.unchanged,
                "unknown": outcome.unknown,
                "conflicts": outcome.conflicts,
            }
        )

    def _export(self, name: str, fmt: str) -> tuple[bytes, str]:
        campaign = self.campaigns.require(name)
        label, spectrum = schema.label, schema.spectrum
        query = (
            sa.select(
                spectrum.c.pubdid,
                spectrum.c.designation,
                spectrum.c.ra,
                spectrum.c.dec,
                label.c.label,
                label.c.oracle_user,
                label.c.labelled,
                label.c.iteration,
                label.c.source,
            )
            .join(spectrum, spectrum.c.spectrum_id == label.c.spectrum_id)
            .where(label.c.campaign_id == campaign.campaign_id)
            .order_by(label.c.label_id)
        )
        with self.campaigns.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["labelled"] = row["labelled"].isoformat() + "Z" if row["labelled"] else None
        if fmt == "json":
            import json

            return json.dumps({"labels": rows}).encode(), "application/json"
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(query.selected_columns.keys()))
            writer.writeheader()
            writer.writerows(rows)
            return out.getvalue().encode(), "text/csv"
        if fmt in ("votable", VOTABLE_TYPE):
            return _labels_votable(rows), VOTABLE_TYPE
        raise ValueError(f"FORMAT must be json, csv or votable, not {fmt!r}")


def _accepted_format(accept: str) -> str:
    """The label export a client's ``Accept`` header asks for (pyvo, TOPCAT: VOTable)."""
    accept = accept.lower()
    if VOTABLE_TYPE in accept or "text/xml" in accept:
        return "votable"
    return "csv" if "text/csv" in accept else "json"


def _labels_votable(rows: list[dict[str, Any]]) -> bytes:
    from lxml import etree

    from service.tables.output import field_element
    from service.tables.schema import column_meta
    from service.vo.templates import VOTABLE_NS, VOTableDocument, v

    root = etree.Element(v("VOTABLE"), nsmap={None: VOTABLE_NS}, version="1.4")
    resource = etree.SubElement(root, v("RESOURCE"), type="results")
    etree.SubElement(resource, v("INFO"), name="QUERY_STATUS", value="OK")
    table = etree.SubElement(resource, v("TABLE"), name="labels")
    columns = [
        schema.spectrum.c.pubdid, schema.spectrum.c.designation, schema.spectrum.c.ra,
        schema.spectrum.c.dec, schema.label.c.label, schema.label.c.oracle_user,
        schema.label.c.labelled, schema.label.c.iteration, schema.label.c.source,
    ]  # fmt: skip
    for column in columns:
        table.append(field_element(column_meta(column)))
    document = VOTableDocument(root)
    data: dict[str, Any] = {}
    for column in columns:
        values = [row[column.name] for row in rows]
        if column.name in ("ra", "dec"):
            data[column.name] = np.array([np.nan if x is None else x for x in values], float)
        elif column.name == "iteration":
            data[column.name] = np.ma.masked_array(
                [x or 0 for x in values], mask=[x is None for x in values], dtype=np.int32
            )
        else:
            data[column.name] = np.array(values, dtype=object)
    document.fill("labels", data)
    return document.to_bytes()


async def _payload(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("send a JSON object")
        return data
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _verdicts(request: Request, user: str) -> list[Verdict]:
    """Verdicts from JSON, or from a VOTable/CSV body or ``file`` form upload."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        data = await request.json()
        items = data.get("labels", []) if isinstance(data, dict) else []
        source = str(data.get("source", "api")) if isinstance(data, dict) else "api"
        if source not in schema.LABEL_SOURCES:
            raise ValueError(f"source must be one of {', '.join(schema.LABEL_SOURCES)}")
        verdicts = []
        for item in items:
            if not isinstance(item, dict) or "label" not in item:
                raise ValueError("each label needs 'label' and 'pubdid' or 'spectrum_id'")
            verdicts.append(
                Verdict(
                    label=str(item["label"]).lower(),
                    spectrum_id=int(item["spectrum_id"]) if "spectrum_id" in item else None,
                    pubdid=str(item.get("pubdid", item.get("spectrum", ""))) or None,
                    user=user,
                    source=source,
                    iteration=int(item["iteration"]) if item.get("iteration") is not None else None,
                )
            )
        return verdicts
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValueError("upload the labels as a 'file' part (VOTable or CSV)")
        body = await upload.read()
    else:
        body = await request.body()
    return _table_verdicts(body, user)


def _table_verdicts(body: bytes, user: str) -> list[Verdict]:
    """Verdicts from a VOTable or CSV body, their source named after the format."""
    source = "votable" if b"<VOTABLE" in body[:4000].upper() else "csv"
    return [
        Verdict(label=x.label, pubdid=x.spectrum, user=user, source=source)
        for x in parse_labels(body)
    ]
