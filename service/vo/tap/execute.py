"""TAP 1.1 requests: DALI parameters in, a result document out; shared by sync and async.

:func:`execute` is the whole of a ``doQuery``: ``REQUEST`` (optional, must be
``doQuery``), ``LANG`` (``ADQL`` or ``ADQL-2.0``), ``QUERY``, ``MAXREC``
(default and hard limit from :class:`TapLimits`), ``RESPONSEFORMAT`` (or
``FORMAT``: VOTable TABLEDATA / BINARY / BINARY2, CSV) and ``UPLOAD``.
The sync route (:mod:`service.vo.tap.routes`) calls it in a thread; the async UWS
runner :func:`run_async` calls it in a worker process and writes the document
as the job's ``result``.

The async runner finds the database through the settings snapshot of the
service that owns the job directory (``Settings.for_job``), else the ``ALVO_*``
environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.reasons import AlvoError, Reason
from service.vo import dali
from service.vo.tap import output, upload
from service.vo.tap.query import TapDatabase

LANGUAGES = frozenset({"ADQL", "ADQL-2.0"})
CSV_FORMATS = frozenset({"csv", "text/csv"})


@dataclasses.dataclass(frozen=True)
class TapLimits:
    """Row, time and size limits of the TAP service (also published in its capabilities)."""

    default_maxrec: int = 10_000
    max_maxrec: int = 1_000_000
    timeout_s: float = 60.0
    #: A sync query's limit for a caller no authenticating proxy named (``ALVO_AUTH=header``).
    anonymous_timeout_s: float = 10.0
    max_upload_bytes: int = 16 * 1024 * 1024
    retention_s: int = 7 * 86400
    execution_s: int = 3600

    @classmethod
    def from_settings(cls, settings: Any) -> TapLimits:
        """The operator's limits (``ALVO_TAP_*``, ``ALVO_MAX_UPLOAD_BYTES``)."""
        return cls(
            default_maxrec=min(cls.default_maxrec, settings.tap_maxrec),
            max_maxrec=settings.tap_maxrec,
            timeout_s=float(settings.tap_timeout),
            anonymous_timeout_s=float(min(settings.tap_anonymous_timeout, settings.tap_timeout)),
            max_upload_bytes=settings.max_upload_bytes,
            execution_s=settings.tap_async_timeout,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "default_maxrec": self.default_maxrec,
            "max_maxrec": self.max_maxrec,
            "max_upload_bytes": self.max_upload_bytes,
            "retention_s": self.retention_s,
            "execution_s": self.execution_s,
        }


@dataclasses.dataclass(frozen=True)
class Document:
    body: bytes
    media_type: str


def check_parameters(params: dali.DaliParams) -> None:
    """Refuse a request whose REQUEST, LANG, QUERY or RESPONSEFORMAT is wrong (before running)."""
    request = params.get("REQUEST")
    if request is not None and request.lower() != "doquery":
        raise dali.bad_parameter("REQUEST", f"{request!r} is not supported; use doQuery")
    lang = params.get("LANG")
    if lang is not None and lang.upper() not in LANGUAGES:
        raise dali.bad_parameter("LANG", f"{lang!r} is not supported; use ADQL (ADQL-2.0)")
    if not params.get("QUERY"):
        raise dali.bad_parameter("QUERY", "missing; give an ADQL query")
    _format(params)
    upload.parse_upload_param(params.getlist("UPLOAD"))


def _format(params: dali.DaliParams) -> tuple[str, str]:
    """(kind, serialization or media type) from RESPONSEFORMAT / FORMAT."""
    name = "RESPONSEFORMAT" if "RESPONSEFORMAT" in params else "FORMAT"
    text = params.get(name)
    if text is not None and text.split(";")[0].strip().lower() in CSV_FORMATS:
        return "csv", output.CSV_MEDIA_TYPE
    fmt = dali.response_format(params, name)
    return "votable", fmt.serialization


def execute(
    db: TapDatabase,
    params: dali.DaliParams,
    uploads: Mapping[str, bytes],
    limits: TapLimits,
    timeout_s: float | None = None,
    user: str | None = None,
) -> Document:
    """Run one doQuery request; ``uploads`` maps each UPLOAD table name to its bytes;
    ``timeout_s`` is the caller's time limit (default: ``limits.timeout_s``); ``user``
    the caller (None: anonymous), who sees no rows of private datasets not theirs."""
    check_parameters(params)
    kind, detail = _format(params)
    maxrec = dali.maxrec(params, limits.default_maxrec, limits.max_maxrec)
    tables = {}
    for name, _ in upload.parse_upload_param(params.getlist("UPLOAD")):
        if name not in uploads:  # the caller resolves parts and URLs to bytes
            raise upload.upload_error(f"UPLOAD {name}: the request has no part for it")
        data = uploads[name]
        if len(data) > limits.max_upload_bytes:
            raise AlvoError(
                Reason.UPLOAD_TOO_LARGE,
                f"UPLOAD {name}: {len(data)} bytes; at most {limits.max_upload_bytes}",
            )
        tables[name] = upload.read_upload(name, data)
    result = db.run(params.get("QUERY") or "", maxrec, tables, timeout_s, user)
    if kind == "csv":
        return Document(output.csv_bytes(result), output.CSV_MEDIA_TYPE)
    return Document(output.votable(result, detail), dali.VOTABLE_MEDIA_TYPE)


# --- async (UWS runner) -----------------------------------------------------------------------
def run_async(job: Any, workdir: Path, progress: Any) -> dict[str, Any]:
    """UWS runner of /tap/async: run the query, write the document as result ``result``."""
    from service.settings import Settings
    from service.store.archive_roots import public_urls
    from uws import UWSJobError

    try:  # the settings of the service that owns this job directory
        settings = Settings.for_job(workdir)
    except FileNotFoundError:
        settings = Settings.from_env()
    params = dali.DaliParams(job.parameters.pairs())
    uploads = {}
    limits = TapLimits.from_settings(settings)
    db = TapDatabase(
        settings.sqlalchemy_url, timeout_s=limits.execution_s, links=public_urls(settings)
    )
    try:
        for name, where in job.uploads.items():
            if upload.is_url(where):
                uploads[name] = asyncio.run(
                    upload.fetch_upload(name, where, settings, limits.max_upload_bytes)
                )
            else:
                path = Path(where) if Path(where).is_absolute() else workdir / where
                uploads[name] = path.read_bytes()
        db.ensure_ready()  # the first TAP request may be an async one
        progress(0.1, "querying")
        document = execute(db, params, uploads, limits, user=job.owner)
    except AlvoError as error:
        raise UWSJobError(str(error)) from None
    finally:
        db.dispose()
    suffix = ".csv" if document.media_type == output.CSV_MEDIA_TYPE else ".vot"
    path = workdir / f"result{suffix}"
    path.write_bytes(document.body)
    progress(1.0, "done")
    return {"result": (path, document.media_type)}
