"""UWS 1.1 documents through ``vo-models`` (never ``skip_empty``), and the DALI error VOTable.

Nillable elements (ownerId, quote, startTime, endTime, destruction) are always
written, with ``xsi:nil="true"`` when empty, as the UWS schema asks. The
job's progress goes into ``jobInfo`` as ``<progress fraction="0.42">text</progress>``
in the :data:`JOBINFO_NS` namespace, and a job run again names its parent there as
``<parent jobId="..." href="..."/>``. :data:`UWS_XSD` is the bundled UWS 1.1
schema (offline validation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from lxml import etree
from pydantic_xml import BaseXmlModel, attr, element
from vo_models.uws import (
    ErrorSummary,
    Jobs,
    JobSummary,
    Parameter,
    Parameters,
    ResultReference,
    Results,
    ShortJobDescription,
)
from vo_models.uws.models import NSMAP

from uws.models import JobRecord, ResultRecord
from uws.store import JobRef

UWS_XSD = Path(__file__).with_name("schemas") / "UWS-1.1.xsd"
JOBINFO_NS = "urn:x-uws:jobinfo"
VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"

# Optional[...] rather than X | None: pydantic-xml reads these annotations at runtime.
# ruff: noqa: UP045


class AnyParameters(Parameters, tag="parameters"):
    """``uws:parameters`` with any parameter names (vo-models wants one field per name)."""

    parameter: list[Parameter] = element(tag="parameter", default_factory=list)

    def __init__(self, **data: object) -> None:
        BaseXmlModel.__init__(self, **data)  # skip Parameters' regrouping by field name


def iso_time(when: dt.datetime) -> str:
    """UTC ISO 8601 to the millisecond: ``2026-12-07T13:45:01.250Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ProgressInfo(BaseXmlModel, tag="progress", ns="p", nsmap={"p": JOBINFO_NS}):
    fraction: Optional[float] = attr(default=None)
    #: when the job reported it (ISO 8601, UTC): a client that reads it later estimates
    #: the time left as of then, not as of its own look (static/jobs.js)
    time: Optional[str] = attr(default=None)
    message: str = ""


class ParentInfo(BaseXmlModel, tag="parent", ns="p", nsmap={"p": JOBINFO_NS}):
    """The job this one was run again from: ``<p:parent jobId="..." href="..."/>``."""

    job_id: str = attr(name="jobId")
    href: str = attr()


class JobInfo(BaseXmlModel, tag="jobInfo", ns="uws", nsmap=NSMAP):
    progress: Optional[ProgressInfo] = element(default=None)
    parent: Optional[ParentInfo] = element(default=None)


class JobDocument(JobSummary[AnyParameters], tag="job"):
    job_info: Optional[JobInfo] = element(tag="jobInfo", default=None)  # type: ignore[assignment]


def _parameters(job: JobRecord) -> AnyParameters:
    return AnyParameters(parameter=[Parameter(id=k, value=v) for k, v in job.parameters.pairs()])


def _results(job: JobRecord, job_url: str) -> Results:
    return Results(results=[_reference(r, job_url) for r in job.results])


def _reference(result: ResultRecord, job_url: str) -> ResultReference:
    href = result.location if result.is_url else f"{job_url}/results/{result.id}"
    return ResultReference(id=result.id, href=href, mime_type=result.mime_type, size=result.size)


#: The XSLT (``uws/uws.xsl``) that shows job lists and jobs to a browser as HTML tables
#: with links; served by :meth:`uws.service.UWSService.routes` at ``/uws.xsl``.
STYLESHEET = Path(__file__).with_name("uws.xsl")


def _declared(model: BaseXmlModel, stylesheet: str | None = None) -> bytes:
    """The document with its XML declaration and, given a URL, an ``xml-stylesheet``
    processing instruction: a browser renders it through the XSLT, while every XML
    client (and schema validation) reads the very same elements."""
    text: bytes = model.to_xml(encoding="UTF-8", xml_declaration=True)  # type: ignore[assignment]
    if stylesheet is None:
        return text
    declaration, rest = text.split(b"?>", 1)
    href = stylesheet.replace("&", "&amp;").replace('"', "&quot;").encode()
    return declaration + b'?>\n<?xml-stylesheet type="text/xsl" href="' + href + b'"?>' + rest


def job_document(job: JobRecord, job_url: str, stylesheet: str | None = None) -> bytes:
    error = None
    if job.error is not None:
        error = ErrorSummary(message=job.error.message, type=job.error.type, has_detail=True)
    info = None
    if job.progress is not None or job.progress_message or job.parent:
        progress = None
        if job.progress is not None or job.progress_message:
            when = job.progress_time
            progress = ProgressInfo(
                fraction=job.progress,
                time=None if when is None else iso_time(when),
                message=job.progress_message or "",
            )
        parent = None
        if job.parent:
            list_url = job_url.rsplit("/", 1)[0]
            parent = ParentInfo(job_id=job.parent, href=f"{list_url}/{job.parent}")
        info = JobInfo(progress=progress, parent=parent)
    document = JobDocument(
        job_id=job.id,
        run_id=job.run_id,
        owner_id=job.owner,
        phase=job.phase,
        quote=job.quote,
        creation_time=job.creation_time,
        start_time=job.start_time,
        end_time=job.end_time,
        execution_duration=job.execution_duration,
        destruction=job.destruction,
        parameters=_parameters(job),
        results=_results(job, job_url),
        error_summary=error,
        job_info=info,
    )
    return _declared(document, stylesheet)


def job_list_document(
    jobs: Sequence[JobRef], list_url: str, stylesheet: str | None = None
) -> bytes:
    refs = [
        ShortJobDescription(
            job_id=j.id,
            href=f"{list_url}/{j.id}",
            phase=j.phase,
            run_id=j.run_id,
            owner_id=j.owner,
            creation_time=j.creation_time,
        )
        for j in jobs
    ]
    return _declared(Jobs(jobref=refs), stylesheet)


def results_document(job: JobRecord, job_url: str) -> bytes:
    return _declared(_results(job, job_url))


def parameters_document(job: JobRecord) -> bytes:
    return _declared(_parameters(job))


def error_votable(message: str, detail: str | None = None) -> bytes:
    """A DALI error document: QUERY_STATUS=ERROR with the message (and the detail)."""
    root = etree.Element(f"{{{VOTABLE_NS}}}VOTABLE", nsmap={None: VOTABLE_NS}, version="1.4")
    resource = etree.SubElement(root, f"{{{VOTABLE_NS}}}RESOURCE", type="results")
    status = etree.SubElement(resource, f"{{{VOTABLE_NS}}}INFO", name="QUERY_STATUS", value="ERROR")
    status.text = message
    if detail:
        more = etree.SubElement(resource, f"{{{VOTABLE_NS}}}INFO", name="DETAIL", value="detail")
        more.text = detail
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
