"""The campaign API: JSON for the labelling pages, VOTable/CSV for VO tools.

``/campaigns``                       GET list, POST create (name, source, target, batch,
                                      oracles: who besides the creator may label)
``/campaigns/{name}``                GET summary: datasets, iterations, label counts, conflicts,
                                    ``stopping`` (the stopping rule on the latest iteration)
``/campaigns/{name}/candidates``     GET an iteration's candidates or query batch (VOTable)
``/campaigns/{name}/labels``         GET export (``FORMAT=votable|csv|json``), POST verdicts
                                      (JSON ``{"labels": [{"pubdid"|"spectrum_id", "label",
                                      "comment"?, "flag"?}]}``, or a VOTable/CSV body or
                                      ``file`` upload with ``label`` and optional ``comment``,
                                      ``flag`` columns)

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
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.http.bodies import MAX_FIELD_BYTES, media_type, read_body, read_form, read_json
from service.http.errors import json_errors
from service.jobs.params import NAME
from service.learn.stability import latest_stopping
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import privacy, schema
from service.store.campaigns import VERDICT_COLUMNS, Campaigns, LabelOutcome, Verdict
from service.store.datasets import Datasets
from service.store.ownership import parse_oracles, refusal
from service.vo.label_tables import parse_labels
from service.vocabulary import PRECISION_SAMPLE, QUERY

Handler = Callable[[Request], Awaitable[Response]]
VOTABLE_TYPE = "application/x-votable+xml"


#: What a campaign's ``batch`` may be: spectra shown to the oracle per iteration.
MAX_BATCH = 100_000
#: Longest campaign description, characters.
MAX_DESCRIPTION = 10_000


def _guarded(handler: Handler) -> Handler:
    """Refusals become JSON with their reason's status; nothing escapes as a traceback."""
    return json_errors(handler)


def _bad(detail: str) -> AlvoError:
    return AlvoError(Reason.BAD_PARAMETER, detail)


def _text(data: dict[str, Any], name: str, required: bool = True) -> str:
    """A text field of a JSON or form body (numbers would be a client's mix-up: refused)."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"{name}: required")
        return ""
    if not isinstance(value, str):
        raise _bad(f"{name}: give text, not {type(value).__name__}")
    return value


def _identifier(data: dict[str, Any], name: str) -> str:
    value = _text(data, name)
    if not NAME.match(value):
        raise _bad(f"{name}: {value[:80]!r}: use letters, digits, '_', '.', '-' (at most 64)")
    return value


def _count(data: dict[str, Any], name: str, default: int, hi: int) -> int:
    """A whole number in 1..hi from JSON (an int) or a form (digits)."""
    value = data.get(name, default)
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 9:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise _bad(f"{name}: give a whole number from 1 to {hi}, not {str(value)[:40]!r}")
    return value


class CampaignAPI:
    def __init__(self, settings: Settings, owner: Callable[[Request], str | None]) -> None:
        self.settings = settings
        self.owner = owner

    @property
    def campaigns(self) -> Campaigns:
        return Campaigns(self.settings)

    def seen_by(self, request: Request) -> Campaigns:
        """The campaigns the caller may see (not those on others' private datasets)."""
        return Campaigns(self.settings).seen_by(self.owner(request))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/campaigns", _guarded(self.list_or_create), methods=["GET", "POST"]),
            Route("/campaigns/{name}", _guarded(self.summary), methods=["GET"]),
            Route("/campaigns/{name}/labels", _guarded(self.labels), methods=["GET", "POST"]),
            Route("/campaigns/{name}/candidates", _guarded(self.candidates), methods=["GET"]),
            Route("/datasets/{name}/readers", _guarded(self.share), methods=["POST"]),
        ]

    async def share(self, request: Request) -> Response:
        """``{"readers": ["ben"]}``: make the caller's dataset private and invite readers
        (docs/security.md, *Private datasets*); answers the readers now invited."""
        data = await _payload(request)
        readers = parse_oracles(data.get("readers", ()))
        name, user = request.path_params["name"], self.owner(request)
        if not user:  # the operator shares with `alvo dataset share`
            raise AlvoError(
                Reason.SIGN_IN_REQUIRED,
                "private datasets need ALVO_AUTH=header and a signed-in owner",
            )
        engine = Datasets(self.settings).engine

        def share() -> tuple[str, ...]:
            return privacy.share(engine, name, user, readers)

        invited = await anyio.to_thread.run_sync(share)
        return JSONResponse({"dataset": name, "private": True, "readers": list(invited)})

    async def list_or_create(self, request: Request) -> Response:
        if request.method == "GET":
            names = await anyio.to_thread.run_sync(lambda: self.seen_by(request).names())
            return JSONResponse({"campaigns": names})
        data = await _payload(request)
        name = _identifier(data, "name")
        source, target = _identifier(data, "source"), _identifier(data, "target")
        batch = _count(data, "batch", 100, MAX_BATCH)
        description = _text(data, "description", required=False)
        if len(description) > MAX_DESCRIPTION:
            raise _bad(f"description: at most {MAX_DESCRIPTION} characters")
        owner, oracles = self.owner(request), parse_oracles(data.get("oracles", ()))

        def create() -> None:
            self.campaigns.create(name, source, target, batch, description, owner, oracles)

        await anyio.to_thread.run_sync(create)
        return JSONResponse({"campaign": name}, status_code=201, headers={"Location": f"{name}"})

    async def summary(self, request: Request) -> Response:
        name = request.path_params["name"]
        return JSONResponse(await anyio.to_thread.run_sync(self._summary, name, request))

    def _summary(self, name: str, request: Request) -> dict[str, Any]:
        campaigns = self.seen_by(request)
        campaign = campaigns.require(name)
        verdicts = campaigns.pool_verdicts(campaign)
        counts: dict[str, int] = {}
        for verdict in verdicts.values():
            counts[verdict] = counts.get(verdict, 0) + 1
        iterations = campaigns.iterations(campaign)
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
                for it in iterations
            ],
            # the stopping rule on the latest iteration: {"stop", "reason", "evidence"}
            "stopping": latest_stopping(iterations).to_dict(),
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
            campaigns = self.seen_by(request)
            campaign = campaigns.require(name)
            last = campaigns.last_iteration(campaign)
            iteration = last if number is None else number
            if iteration is None or (last is not None and iteration > last):
                raise AlvoError(
                    Reason.UNKNOWN_ITERATION,
                    f"campaign {name!r} has no iteration {iteration}: run /iterate",
                )
            roles = (QUERY, PRECISION_SAMPLE) if role == "query" else None
            return candidates_votable(
                self.settings, campaign, iteration, roles, role, fmt.serialization
            )

        return Response(await anyio.to_thread.run_sync(build), media_type=fmt.media_type)

    async def labels(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            fmt = request.query_params.get("FORMAT", request.query_params.get("format"))
            fmt = fmt or _accepted_format(request.headers.get("accept", ""))
            body, media = await anyio.to_thread.run_sync(self._export, name, fmt.lower(), request)
            return Response(body, media_type=media)
        user = self.owner(request)
        verdicts = await _verdicts(request, user or "", self.settings.max_label_bytes)

        def store() -> LabelOutcome:
            campaign = self.seen_by(request).require(name)
            if not campaign.may_label(user):
                raise refusal("campaign", name, campaign.owner, "ask its owner to invite you")
            return self.campaigns.add_labels(campaign, verdicts)

        outcome = await anyio.to_thread.run_sync(store)
        return JSONResponse(
            {
                "stored": outcome.stored,
                "unchanged": outcome.unchanged,
                "noted": outcome.noted,
                "unknown": outcome.unknown,
                "conflicts": outcome.conflicts,
            }
        )

    def _export(self, name: str, fmt: str, request: Request) -> tuple[bytes, str]:
        campaigns = self.seen_by(request)
        rows = campaigns.verdict_rows(campaigns.require(name))
        for row in rows:
            row["labelled"] = row["labelled"].isoformat() + "Z" if row["labelled"] else None
        if fmt == "json":
            import json

            return json.dumps({"labels": rows}).encode(), "application/json"
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=[c.name for c in VERDICT_COLUMNS])
            writer.writeheader()
            writer.writerows(rows)
            return out.getvalue().encode(), "text/csv"
        if fmt in ("votable", VOTABLE_TYPE):
            return _labels_votable(rows), VOTABLE_TYPE
        raise _bad(f"FORMAT must be json, csv or votable, not {fmt[:40]!r}")


def _accepted_format(accept: str) -> str:
    """The label export a client's ``Accept`` header asks for (pyvo, TOPCAT: VOTable)."""
    accept = accept.lower()
    if VOTABLE_TYPE in accept or "text/xml" in accept:
        return "votable"
    return "csv" if "text/csv" in accept else "json"


def _labels_votable(rows: list[dict[str, Any]]) -> bytes:
    from lxml import etree

    from service.store.schema import column_meta
    from service.vo.tap.output import field_element
    from service.vo.templates import VOTABLE_NS, VOTableDocument, v

    root = etree.Element(v("VOTABLE"), nsmap={None: VOTABLE_NS}, version="1.4")
    resource = etree.SubElement(root, v("RESOURCE"), type="results")
    etree.SubElement(resource, v("INFO"), name="QUERY_STATUS", value="OK")
    table = etree.SubElement(resource, v("TABLE"), name="labels")
    for column in VERDICT_COLUMNS:
        table.append(field_element(column_meta(column)))
    document = VOTableDocument(root)
    data: dict[str, Any] = {}
    for column in VERDICT_COLUMNS:
        values = [row[column.name] for row in rows]
        if column.name in ("ra", "dec"):
            data[column.name] = np.array([np.nan if x is None else x for x in values], float)
        elif column.name == "iteration":
            data[column.name] = np.ma.masked_array(
                [x or 0 for x in values], mask=[x is None for x in values], dtype=np.int32
            )
        elif column.name == "flag":
            data[column.name] = np.ma.masked_array(
                [bool(x) for x in values], mask=[x is None for x in values], dtype=bool
            )
        else:
            data[column.name] = np.array(values, dtype=object)
    document.fill("labels", data)
    return document.to_bytes()


async def _payload(request: Request) -> dict[str, Any]:
    """A small JSON object or form: the fields of a campaign to create."""
    if media_type(request) == "application/json":
        data = await read_json(request, MAX_FIELD_BYTES)
        if not isinstance(data, dict):
            raise AlvoError(Reason.BAD_REQUEST_BODY, "send a JSON object")
        return data
    form = await read_form(request, MAX_FIELD_BYTES, max_files=0)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _verdicts(request: Request, user: str, limit: int) -> list[Verdict]:
    """Verdicts from JSON, or from a VOTable/CSV body or ``file`` form upload."""
    content_type = media_type(request)
    if content_type == "application/json":
        return _json_verdicts(await read_json(request, limit), user)
    if content_type == "multipart/form-data":
        form = await read_form(request, limit, max_files=1)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise AlvoError(
                Reason.BAD_LABEL_FILE, "upload the labels as a 'file' part (VOTable or CSV)"
            )
        body = await upload.read()
    else:
        body = await read_body(request, limit)
    return _table_verdicts(body, user)


def _json_verdicts(data: Any, user: str) -> list[Verdict]:
    """``{"labels": [{"pubdid" | "spectrum_id", "label", "iteration"?}], "source"?}``."""
    if not isinstance(data, dict) or not isinstance(data.get("labels"), list):
        raise AlvoError(Reason.BAD_LABEL, 'send {"labels": [{"pubdid": ..., "label": ...}]}')
    source = data.get("source", "api")
    if source not in schema.LABEL_SOURCES:
        raise AlvoError(
            Reason.BAD_LABEL, f"source must be one of {', '.join(schema.LABEL_SOURCES)}"
        )
    return [_json_verdict(item, number, user, source) for number, item in enumerate(data["labels"])]


def _json_verdict(item: Any, number: int, user: str, source: str) -> Verdict:
    def bad(detail: str) -> AlvoError:
        return AlvoError(Reason.BAD_LABEL, f"labels[{number}]: {detail}")

    if not isinstance(item, dict):
        raise bad('each label is an object {"pubdid": ..., "label": ...}')
    label = item.get("label")
    if not isinstance(label, str) or not label:
        raise bad("'label' must be a verdict as text (emission, absorption...)")
    spectrum_id = item.get("spectrum_id")
    pubdid = item.get("pubdid", item.get("spectrum"))
    iteration = item.get("iteration")
    comment, flag = item.get("comment"), item.get("flag")
    if comment is not None and not isinstance(comment, str):
        raise bad("'comment' must be text (a note on the spectrum)")
    if flag is not None and not isinstance(flag, bool):
        raise bad("'flag' must be true or false (needs a second look)")
    for name, value in (("spectrum_id", spectrum_id), ("iteration", iteration)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31
        ):
            raise bad(f"{name!r} must be a non-negative integer, not {str(value)[:40]}")
    if pubdid is not None and not isinstance(pubdid, str):
        raise bad("'pubdid' must be text (the publisher DID)")
    if spectrum_id is None and not pubdid:
        raise bad("name the spectrum by 'pubdid' or 'spectrum_id'")
    return Verdict(
        label=label.lower(),
        spectrum_id=spectrum_id,
        pubdid=pubdid or None,
        user=user,
        source=source,
        iteration=iteration,
        comment=comment,
        flag=flag,
    )


def _table_verdicts(body: bytes, user: str) -> list[Verdict]:
    """Verdicts of a VOTable or CSV label file, their source named after the format;
    whatever it is instead is BAD_LABEL_FILE."""
    source = "votable" if b"<VOTABLE" in body[:4000].upper() else "csv"
    rows = parse_labels(body)
    return [
        Verdict(
            label=x.label,
            pubdid=x.spectrum,
            user=user,
            source=source,
            comment=x.comment,
            flag=x.flag,
        )
        for x in rows
    ]
