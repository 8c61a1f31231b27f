"""The ``ingest`` job: fill a named dataset from SSA, DataLink, access URLs or an upload.

Parameters (case-insensitive; UWS ``/ingest``):

``DATASET``
    Name of the dataset to create or extend (required).
``DOMAIN``
    ``source`` (a labelled instrument), ``target`` (a pool to search) or
    ``auto`` (default: by resolving power, R >= 5000 is the source).
``SSA`` + ``POS``, ``SIZE``, ``BAND``, ``TIME``, ``MAXREC``
    Query any SSA 1.1 service (BAND in metres, SIZE in degrees, as SSA says).
``DATALINK`` + ``ID`` (repeatable)
    Resolve publisher DIDs through a DataLink service to their ``#this`` files.
``URL`` (repeatable)
    Direct access URLs of spectrum files.
``UPLOAD=refs,param:refs``
    A VOTable of references (access URL and/or publisher DID columns, as an
    SSA response or TOPCAT table has them); a ``label`` column makes it a
    labelled set. DIDs without URLs need ``DATALINK``.
``PRIVATE``
    ``yes``: the dataset is private (``ALVO_AUTH=header`` only): its rows, and those of
    campaigns built on it, are shown over TAP only to its owner and invited readers
    (``POST /datasets/{name}/readers``; :mod:`service.store.privacy`). Default ``no``.
``LABELS``
    http(s) URL of a CSV or VOTable with ``pubdid`` and ``label`` columns (like
    the Ondrejov labels), or ``LABELS=labels`` with ``UPLOAD=labels,param:labels``.
    Never a path: the service reads no file of its own for a request.

Every URL (SSA, DataLink, access URLs, LABELS, an UPLOAD by URL) is fetched by
:mod:`service.net.fetch`: confined to public addresses unless allowed, within the
fetch deadline and size cap (``ALVO_FETCH_*``, docs/security.md).
Spectra are fetched concurrently (per-host limit, retries, disk cache), read
by content, adapted and appended in chunks; under the Dask executor the chunks
are Dask tasks. A spectrum that fails is listed with its named reason in the
``failures`` result and the others go on.

Ingest is idempotent: a spectrum whose publisher DID or access URL the dataset
holds already is neither fetched nor added again (the summary counts it as
``already_present``). Each chunk is stored whole or not at all, so re-running
an ingest that was killed, failed or aborted adds exactly what it had not
stored yet.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.adapt import AdaptConfig, adapt
from service.jobs.fanout import map_chunks, on_dask_worker
from service.jobs.ingest.chunk import Chunk, Failure, describe
from service.jobs.params import JobParams, validator
from service.jobs.runner import job_runner
from service.net.fetch import Fetcher, FetchPolicy, fetch_document
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.spectra import read_spectrum
from service.spectra.access import (
    SpectrumReference,
    SSAListing,
    SSAQuery,
    datalink_references,
    references_from_votable,
    ssa_listing,
)
from service.store.datasets import Datasets
from service.vo import dali, templates
from service.vo.label_tables import parse_labels
from service.vo.ssa import parse_pos
from uws.runner import Progress, Results, RunnerJob

DOMAINS = ("auto", "source", "target")
#: Names a DALI UPLOAD of references may have (``UPLOAD=refs,param:refs``).
REFERENCE_UPLOADS = frozenset({"refs", "references"})
#: Resolving power above which an instrument counts as the (high-resolution) source.
SOURCE_MIN_R = 5000.0


@dataclasses.dataclass(frozen=True)
class IngestRequest:
    dataset: str
    domain: str
    ssa_url: str | None
    ssa_query: SSAQuery
    datalink_url: str | None
    ids: tuple[str, ...]
    urls: tuple[str, ...]
    references_upload: str | None
    labels: str | None
    chunk: int
    private: bool = False

    @classmethod
    def from_params(cls, params: JobParams, uploads: Mapping[str, str]) -> IngestRequest:
        pos = None
        if params.get("POS"):
            pos = parse_pos(params.get("POS") or "")
        band = _one_range(params.get("BAND"), "BAND")
        time = _one_range(params.get("TIME"), "TIME", dali.parse_time)
        query = SSAQuery(
            pos=pos,
            size=params.number("SIZE", 0.1, 0.0, 180.0) if params.get("SIZE") or pos else None,
            band=band,
            time=time,
            maxrec=params.integer("MAXREC", 10000, 0, 10_000_000),
        )
        request = cls(
            dataset=params.identifier("DATASET"),
            domain=params.choice("DOMAIN", DOMAINS, "auto"),
            ssa_url=params.get("SSA"),
            ssa_query=query,
            datalink_url=params.get("DATALINK"),
            ids=tuple(params.getlist("ID")),
            urls=tuple(params.getlist("URL")),
            references_upload=next((uploads[n] for n in REFERENCE_UPLOADS if n in uploads), None),
            labels=uploads.get("labels") or params.get("LABELS"),
            chunk=params.integer("CHUNK", 500, 1, 100_000),
            private=params.flag("PRIVATE"),
        )
        uploaded = {spec.split(",")[0].strip().lower() for spec in params.getlist("UPLOAD")}
        labels = params.get("LABELS")
        if labels and not is_url(labels) and labels.lower() not in uploaded:
            raise dali.bad_parameter(
                "LABELS",
                "give the http(s) URL of a CSV or VOTable, or LABELS=labels with "
                "UPLOAD=labels,param:labels (the service reads no files of its own)",
            )
        if not (request.ssa_url or request.ids or request.urls or uploaded & REFERENCE_UPLOADS):
            raise dali.bad_parameter(
                "SSA",
                "say where the spectra are: SSA=<service URL>, ID=<DataLink ID> with "
                "DATALINK=<service URL>, URL=<file URL>, or UPLOAD=refs,param:refs (a VOTable)",
            )
        if request.ids and not request.datalink_url:
            raise dali.bad_parameter("DATALINK", "ID needs DATALINK=<DataLink service URL>")
        return request


def _one_range(
    text: str | None, name: str, convert: Any = None
) -> tuple[float | None, float | None] | None:
    if not text:
        return None
    ranges = dali.parse_ranges(text, name, convert) if convert else dali.parse_ranges(text, name)
    if len(ranges) != 1:
        raise dali.bad_parameter(name, "give one range")
    lo, hi = ranges[0]
    return (None if math.isinf(lo) else lo, None if math.isinf(hi) else hi)


check = validator(lambda params: IngestRequest.from_params(params, {}))


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


# --- references ---------------------------------------------------------------------------------
def gather_references(
    request: IngestRequest,
    workdir: Path,
    policy: FetchPolicy | None = None,
    progress: Any = None,
    listings: list[SSAListing] | None = None,
) -> tuple[list[SpectrumReference], list[Failure]]:
    """Every reference the request names; IDs that do not resolve become failures.

    The SSA query is paged past the archive's MAXREC (:func:`ssa_listing`);
    its listing (queries, tiles) is appended to ``listings`` when given, and
    each query is reported to ``progress(fraction, message)``. A tile too
    dense to list whole is a failure named SSA_TOO_DENSE.
    """
    references: list[SpectrumReference] = []
    failures: list[Failure] = []
    if request.ssa_url:

        def listed(listing: SSAListing) -> None:
            if progress is not None:
                progress(0.0, f"listing SSA: {_listing_words(listing)}")

        listing = ssa_listing(request.ssa_url, request.ssa_query, policy, listed)
        references += listing.references
        failures += [Failure.of(request.ssa_url, "", error) for error in listing.too_dense]
        if listings is not None:
            listings.append(listing)
    references += [SpectrumReference(access_url=url) for url in request.urls]
    to_resolve: list[tuple[str, str]] = [(pubdid, "") for pubdid in request.ids]
    if request.references_upload:
        upload = read_table(request.references_upload, workdir, policy, "UPLOAD refs")
        direct, pending = references_from_votable(upload)
        references += direct
        to_resolve += pending
    if to_resolve:
        if not request.datalink_url:
            raise AlvoError(
                Reason.BAD_PARAMETER,
                f"{len(to_resolve)} references have only a publisher DID: give DATALINK=<url>",
            )
        resolved = datalink_references(
            request.datalink_url, [pubdid for pubdid, _ in to_resolve], policy
        )
        for (pubdid, label), found in zip(to_resolve, resolved, strict=True):
            if isinstance(found, AlvoError):
                failures.append(Failure.of(pubdid, pubdid, found))
            else:
                references.append(dataclasses.replace(found, label=label or found.label))
    return references, failures


def _listing_words(listing: SSAListing) -> str:
    return f"{listing.queries} queries, {listing.tiles} tiles, {listing.listed} spectra"


def read_table(location: str, workdir: Path, policy: FetchPolicy | None, what: str) -> bytes:
    """A table the request names: an http(s) URL (fetched), or a file this job uploaded.

    Uploaded files are where the UWS layer stored them, inside the job's
    folder; anything else is refused without looking at it, so no request can
    make the service read, or say whether it has, a file of its own.
    """
    if is_url(location):
        return fetch_document(location, policy=policy, what=what)
    folder = workdir.resolve()
    path = (folder / location).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise AlvoError(Reason.BAD_PARAMETER, f"{what}: give an http(s) URL or an UPLOAD")
    return path.read_bytes()


def read_labels(location: str, workdir: Path, policy: FetchPolicy | None = None) -> dict[str, str]:
    """``{pubdid: verdict}`` from a CSV or VOTable (URL or uploaded file)."""
    data = read_table(location, workdir, policy, "LABELS")
    try:
        return {x.spectrum: x.label for x in parse_labels(data)}
    except AlvoError as error:
        raise AlvoError(error.reason, f"LABELS: {error.detail}") from None


# --- one chunk ---------------------------------------------------------------------------------
def fetch_chunk(
    references: Sequence[SpectrumReference],
    cache_dir: str,
    labels: Mapping[str, str],
    policy: FetchPolicy | None = None,
) -> Chunk:
    """Fetch, read and adapt a chunk of references (pure apart from the disk cache)."""
    fetched = Fetcher(Path(cache_dir), policy).fetch_all([r.access_url for r in references])
    spectra, kept, failures = [], [], []
    for reference, result in zip(references, fetched, strict=True):
        if result.error is not None:
            failures.append(Failure.of(reference.access_url, reference.pubdid, result.error))
            continue
        assert result.path is not None
        try:
            spectrum = read_spectrum(result.path)
        except AlvoError as error:
            failures.append(Failure.of(reference.access_url, reference.pubdid, error))
            continue
        spectra.append(spectrum)
        kept.append(reference)
    batch = adapt(spectra, AdaptConfig())
    good = [i for i in range(len(spectra)) if i not in batch.failures]
    for i, adapt_error in batch.failures.items():
        failures.append(Failure.of(kept[i].access_url, kept[i].pubdid, adapt_error))
    return describe(
        batch.features[good] if good else np.zeros((0, batch.features.shape[1]), "f4"),
        [spectra[i].meta for i in good],
        [kept[i] for i in good],
        np.array([spectra[i].resolving_power for i in good], dtype=np.float64),
        failures,
        labels,
    )


# --- the runner ---------------------------------------------------------------------------------
@job_runner
def run(job: RunnerJob, workdir: Path, progress: Progress) -> Results:
    settings = Settings.for_job(workdir)
    policy = FetchPolicy.from_settings(settings)
    request = IngestRequest.from_params(JobParams(job.parameters.pairs()), job.uploads)
    progress(0.0, "finding spectra")
    listings: list[SSAListing] = []
    references, failures = gather_references(request, workdir, policy, progress, listings)
    labels = read_labels(request.labels, workdir, policy) if request.labels else {}
    if not references and not failures:
        where = "the SSA query" if request.ssa_url else "the given references"
        raise AlvoError(
            Reason.BAD_PARAMETER,
            f"{where} named no spectra: nothing to ingest "
            "(widen POS/SIZE/BAND/TIME, or check the uploaded table's access URL or DID column)",
        )
    datasets = Datasets(settings)
    references, present = without_ingested(datasets, request.dataset, references)
    chunks = [references[i : i + request.chunk] for i in range(0, len(references), request.chunk)]
    cache = str(settings.home / "cache" / "spectra")
    dataset = None
    added = 0
    chunk_results = map_chunks(fetch_chunk, chunks, cache, labels, policy)
    for done, result in enumerate(chunk_results, start=1):
        failures += result.failures
        if dataset is None and len(result.features):
            # made by the first spectrum that can be stored: an ingest whose every spectrum
            # is refused creates no dataset, and (under auth) claims no name
            domain = request.domain
            if domain == "auto":
                median_r = (
                    float(np.median(result.resolving_powers)) if len(result.resolving_powers) else 0
                )
                domain = "source" if median_r >= SOURCE_MIN_R else "target"
            # another's dataset, or another domain: refused by name (job_runner)
            dataset = datasets.open_or_create(
                request.dataset, domain, owner=job.owner, private=request.private
            )
        if dataset is not None:
            added += len(
                datasets.append(
                    dataset, result.features, result.columns, result.labels, job.owner or ""
                )
            )
        progress(done / len(chunks), f"{added} spectra added, {len(failures)} failed")
    if dataset is not None:
        datasets.count_failures(dataset, len(failures))
    if dataset is None and present:
        dataset = datasets.get(request.dataset)
    summary = {
        "dataset": request.dataset,
        "domain": dataset.domain if dataset else None,
        "added": added,
        "already_present": present,
        "failed": len(failures),
        "reasons": _reason_counts(failures),
        "chunks": len(chunks),
        "chunks_ran_on": "dask cluster" if on_dask_worker() else "job process",
    }
    if listings:
        summary["ssa"] = {
            "listed": len(listings[0].references),
            "queries": listings[0].queries,
            "tiles": listings[0].tiles,
            "too_dense_tiles": len(listings[0].too_dense),
            "capped_at_maxrec": listings[0].capped,
        }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    (workdir / "failures.vot").write_bytes(failures_votable(request.dataset, failures))
    return {
        "summary": (workdir / "summary.json", "application/json"),
        "failures": (workdir / "failures.vot", "application/x-votable+xml"),
    }


def without_ingested(
    datasets: Datasets, name: str, references: list[SpectrumReference]
) -> tuple[list[SpectrumReference], int]:
    """The references dataset ``name`` does not hold yet, and how many it holds.

    Re-running an ingest (after a kill, a crash or by mistake) fetches and adds
    only what is missing; :meth:`service.store.datasets.Datasets.append` makes sure
    of it again when the rows are stored.
    """
    keys = [key for r in references for key in (r.pubdid, r.access_url) if key]
    held = datasets.ingested(name, keys)
    missing = [r for r in references if not ({r.pubdid, r.access_url} & held)]
    return missing, len(references) - len(missing)


def _reason_counts(failures: Sequence[Failure]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for failure in failures:
        counts[failure.reason.code] = counts.get(failure.reason.code, 0) + 1
    return counts


def failures_votable(dataset: str, failures: Sequence[Failure]) -> bytes:
    document = templates.load("failures.xml")
    document.by_id("info_dataset").set("value", dataset)
    document.fill(
        "failures",
        {
            "reference": np.array([f.reference for f in failures], dtype=object),
            "pubdid": np.array([f.pubdid for f in failures], dtype=object),
            "reason": np.array([f.reason.code for f in failures], dtype=object),
            "detail": np.array([f.detail for f in failures], dtype=object),
        },
    )
    return document.to_bytes()
