"""DataLink 1.1 for the embedded archive: ``/datalink/{collection}?ID=...``.

For each ID (publisher DID; several IDs per request allowed) the links
response has

- ``#this``: the archive's native FITS file, served from
  ``/datalink/{collection}/files/{path}`` (only catalogued files are served);
- ``#preview``: a PNG plot of the spectrum around H-alpha,
  ``/datalink/{collection}/preview?ID=...``, drawn once and cached under
  ``$ALVO_HOME/cache/datalink-preview/``;
- ``#proc``: a SODA-style synchronous cutout, ``/datalink/{collection}/proc``
  with ``ID``, ``BAND`` (DALI interval ``"lo hi"`` in metres, in the
  spectrum's own medium) and ``RESPONSEFORMAT`` (``application/fits`` or
  ``application/x-votable+xml;content=spectrum``; ``FORMAT`` is accepted as an
  alias), described by the service descriptor of ``votable_templates/datalink.xml``.

An unknown ID gives a row whose ``error_message`` starts with ``NotFoundFault``.
Errors of the whole request are DALI error documents; errors of the cutout
service are SODA ``text/plain`` messages (``UsageError: ...``).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
from astropy.io import fits
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.spectra import Spectrum, read_spectrum
from service.vo import dali, templates
from service.vo.holdings import Catalogue, Holdings, collection_vosi_routes
from service.vo.ssa import FITS_MEDIA_TYPE, SDM_MEDIA_TYPE, check_wavelength, data_url

LOG = logging.getLogger(__name__)
LINKS_MEDIA_TYPE = "application/x-votable+xml;content=datalink"
DATALINK_STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
MAX_IDS = 1000
#: The preview's wavelength window (Angstrom, in the spectrum's own medium).
PREVIEW_WINDOW = (6500.0, 6780.0)
HALPHA = {"air": 6562.80, "vacuum": 6564.61}
PROC_FORMATS = {
    "application/fits": FITS_MEDIA_TYPE,
    "fits": FITS_MEDIA_TYPE,
    SDM_MEDIA_TYPE: SDM_MEDIA_TYPE,
    "application/x-votable+xml": SDM_MEDIA_TYPE,
    "votable": SDM_MEDIA_TYPE,
}


# --- the links document --------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Described:
    """What a cutout's header and a preview's title say of a spectrum (any archive)."""

    pubdid: str
    obsid: str
    object: str
    ra: float
    dec: float
    mjd: float
    collection: str
    instrument: str

    @classmethod
    def of(cls, catalogue: Catalogue, index: int) -> Described:
        """Row ``index`` of an embedded collection's catalogue."""
        pubdid, obsid, name = (str(catalogue[k][index]) for k in ("pubdid", "obsid", "object"))
        ra, dec, mjd = (float(catalogue[k][index]) for k in ("ra", "dec", "mjd"))
        info = catalogue.info
        return cls(pubdid, obsid, name, ra, dec, mjd, info.name, info.instrument)

    @property
    def title(self) -> str:
        return f"{self.object}  ({self.collection} {self.obsid})"


def link_rows(
    identifier: str, file: tuple[str, str, int | None], preview_url: str, instrument: str
) -> list[dict[str, object]]:
    """The ``#this``, ``#preview`` and ``#proc`` rows of one dataset; ``file`` is the
    native file's (URL, content type, length in bytes or None)."""
    url, content_type, length = file
    common = {"dl_ID": identifier, "dl_link_auth": "false", "dl_link_authorized": True}
    return [
        {
            **common,
            "dl_access_url": url,
            "dl_description": f"The spectrum as FITS file ({instrument})",
            "dl_semantics": "#this",
            "dl_content_type": content_type,
            "dl_content_length": length,
            "dl_content_qualifier": "#spectrum",
        },
        {
            **common,
            "dl_access_url": preview_url,
            "dl_description": "Plot of the spectrum around H-alpha (PNG)",
            "dl_semantics": "#preview",
            "dl_content_type": "image/png",
        },
        {
            **common,
            "dl_service_def": "proc",
            "dl_description": "Wavelength cutout as FITS or as Spectrum DM VOTable",
            "dl_semantics": "#proc",
            "dl_content_qualifier": "#spectrum",
        },
    ]


def not_found_row(identifier: str, detail: str) -> dict[str, object]:
    return {
        "dl_ID": identifier,
        "dl_error_message": f"NotFoundFault: {detail}",
        "dl_semantics": "#this",
    }


def links_votable(rows: list[dict[str, object]], proc_url: str, serialization: str) -> bytes:
    """``votable_templates/datalink.xml`` with these rows; ``proc_url`` is the cutout service."""
    doc = templates.load("datalink.xml")
    doc.set_param("proc_accessURL", proc_url)
    doc.fill("links", _columns(rows), serialization)
    return doc.to_bytes()


def links_document(
    catalogue: Catalogue, ids: Sequence[str], base_url: str, serialization: str = "tabledata"
) -> bytes:
    """The {links} VOTable for these IDs, in the order given (unknown IDs as error rows)."""
    collection = catalogue.info.name
    rows: list[dict[str, object]] = []
    for identifier in ids:
        index = catalogue.index_of(identifier)
        if index is None:
            rows.append(not_found_row(identifier, not_found_detail(identifier, collection)))
            continue
        file = (
            data_url(base_url, collection, str(catalogue["file"][index])),
            str(catalogue["format"][index]),
            int(catalogue["size"][index]),
        )
        preview = f"{base_url}/datalink/{collection}/preview?ID={quote(identifier, safe='')}"
        rows += link_rows(identifier, file, preview, catalogue.info.instrument)
    return links_votable(rows, f"{base_url}/datalink/{collection}/proc", serialization)


def _columns(rows: list[dict[str, object]]) -> dict[str, object]:
    """Rows of optional values -> one (masked where absent) array per FIELD ID."""
    keys = [
        "dl_ID", "dl_access_url", "dl_service_def", "dl_error_message", "dl_description",
        "dl_semantics", "dl_content_type", "dl_content_qualifier", "dl_local_semantics",
        "dl_link_auth",
    ]  # fmt: skip
    columns: dict[str, object] = {
        key: np.array([row.get(key) for row in rows], dtype=object) for key in keys
    }
    for key, dtype in (("dl_content_length", np.int64), ("dl_link_authorized", bool)):
        values = [row.get(key) for row in rows]
        columns[key] = np.ma.masked_array(
            [0 if x is None else x for x in values], mask=[x is None for x in values], dtype=dtype
        )
    return columns


def not_found_detail(identifier: str, collection: str) -> str:
    prefix = f"ivo://alvo.demo/{collection}?"
    if identifier.startswith("ivo://alvo.demo/") and not identifier.startswith(prefix):
        other = identifier.removeprefix("ivo://alvo.demo/").split("?", 1)[0]
        return f"{identifier} is not in collection {collection!r}; ask /datalink/{other}"
    return f"no dataset {identifier!r} in collection {collection!r}"


# --- preview ---------------------------------------------------------------------
def preview_png(spectrum: Spectrum, title: str) -> bytes:
    """A 640x320 PNG of the flux around H-alpha (matplotlib Agg, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lo, hi = PREVIEW_WINDOW
    window = (spectrum.wavelength >= lo) & (spectrum.wavelength <= hi) & spectrum.good
    if window.sum() < 2:  # spectrum outside the window: show all of it
        window = spectrum.good
    figure = Figure(figsize=(6.4, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(spectrum.wavelength[window], spectrum.flux[window], lw=0.8, color="k")
    axes.axvline(HALPHA[spectrum.medium], color="tab:red", ls=":", lw=0.8, label="H-alpha")
    axes.set_xlabel(f"wavelength [Angstrom, {spectrum.medium}]")
    axes.set_ylabel("flux")
    axes.set_title(title, fontsize=9)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def cached_preview(cache_dir: Path, catalogue: Catalogue, index: int) -> Path:
    """The preview PNG of a catalogue row (see :func:`cached_png`)."""
    obsid = re.sub(r"[^A-Za-z0-9._-]", "_", str(catalogue["obsid"][index]))
    target = cache_dir / catalogue.info.name / f"{obsid}.png"
    title = Described.of(catalogue, index).title
    return cached_png(target, catalogue.path_of(index), title)


def cached_png(target: Path, source: Path, title: str) -> Path:
    """The preview PNG of the spectrum file ``source`` at ``target``, drawn on first use
    and redrawn if the file changed."""
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    png = preview_png(read_spectrum(source), title)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as handle:
        handle.write(png)
    os.replace(handle.name, target)  # atomic: concurrent readers never see half a PNG
    return target


# --- cutout (#proc) -------------------------------------------------------------------
def cutout(spectrum: Spectrum, band: tuple[float, float] | None) -> Spectrum:
    """The part of ``spectrum`` inside ``band`` (metres, in the spectrum's medium)."""
    if band is None:
        return spectrum
    metres = spectrum.wavelength * 1e-10
    keep = (metres >= band[0]) & (metres <= band[1])
    if not keep.any():
        raise AlvoError(
            Reason.BAD_PARAMETER,
            f"BAND {band[0]:g} {band[1]:g} m does not overlap the spectrum "
            f"({metres[0]:.6g} to {metres[-1]:.6g} m, {spectrum.medium})",
        )
    assert spectrum.ivar is not None and spectrum.mask is not None
    return Spectrum(
        spectrum.wavelength[keep],
        spectrum.flux[keep],
        spectrum.medium,
        spectrum.resolving_power,
        ivar=spectrum.ivar[keep],
        mask=spectrum.mask[keep],
        meta=spectrum.meta,
    )


def _flux_error(spectrum: Spectrum) -> np.ndarray:
    ivar = np.asarray(spectrum.ivar, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan)


def cutout_fits(spectrum: Spectrum, described: Described) -> bytes:
    """FITS: empty primary HDU + BINTABLE ``SPECTRUM`` (spectral [Angstrom], flux, flux_error).

    Header keywords follow the Ondrejov DataLink files (``DS_IDPUB``,
    ``OBJECT``, ``RA``, ``DEC``) plus ``AIRORVAC`` (``air``/``vac``, as SDSS)
    and ``RESPOWER`` so readers need not guess the wavelength medium.
    """
    air = spectrum.medium == "air"
    columns = [
        fits.Column(name="spectral", format="D", unit="Angstrom", array=spectrum.wavelength),
        fits.Column(name="flux", format="D", array=spectrum.flux),
        fits.Column(name="flux_error", format="D", array=_flux_error(spectrum)),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="SPECTRUM")
    header = table.header
    header["TUTYP1"] = "spec:Spectrum.Data.SpectralAxis.Value"
    header["TUCD1"] = "em.wl;obs.atmos" if air else "em.wl"
    header["TUTYP2"] = "spec:Spectrum.Data.FluxAxis.Value"
    header["TUCD2"] = "phot.flux.density;em.wl"
    header["TUTYP3"] = "spec:Spectrum.Data.FluxAxis.Accuracy.StatError"
    header["VOCLASS"] = ("Spectrum-1.0", "IVOA Spectrum data model")
    header["DS_IDPUB"] = described.pubdid
    header["OBJECT"] = described.object
    for key, value, comment in (
        ("RA", described.ra, "[deg] ICRS"),
        ("DEC", described.dec, "[deg] ICRS"),
        ("MJD", described.mjd, "[d] mid-exposure"),
    ):
        if np.isfinite(value):  # FITS headers hold no NaN; an unknown value is left out
            header[key] = (value, comment)
    header["AIRORVAC"] = ("air" if air else "vac", "medium of the wavelengths")
    header["RESPOWER"] = (float(spectrum.resolving_power), "lambda / delta-lambda")
    header["COLLECTN"] = described.collection
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(out)
    return out.getvalue()


def cutout_votable(spectrum: Spectrum, described: Described) -> bytes:
    """The IVOA Spectrum DM VOTable of ``votable_templates/sdm-spectrum.xml``."""
    doc = templates.load("sdm-spectrum.xml")
    d = described
    doc.set_params(
        {
            "sdm_pubdid": d.pubdid,
            "sdm_title": f"{d.object} ({d.collection} {d.obsid})",
            "sdm_collection": d.collection,
            "sdm_instrument": d.instrument,
            "sdm_target": d.object,
            "sdm_ra": d.ra,
            "sdm_dec": d.dec,
            "sdm_mjd": d.mjd,
            "sdm_respower": float(spectrum.resolving_power),
            "sdm_medium": spectrum.medium,
        }
    )
    if spectrum.medium == "air":
        doc.by_id("spectral").set("ucd", "em.wl;obs.atmos")
    error = _flux_error(spectrum)
    doc.fill(
        "spectrum",
        {
            "spectral": spectrum.wavelength,
            "flux": spectrum.flux,
            "flux_error": np.ma.masked_invalid(error),
        },
        serialization="binary2",
    )
    return doc.to_bytes()


def soda_endpoint(handler: dali.Handler) -> dali.Handler:
    """Wrap the cutout handler: SODA errors are ``text/plain`` with an error-type prefix."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except AlvoError as error:
            status = getattr(error, "status", 400)
            kind = "NotFoundError" if status == 404 else "UsageError"
            return PlainTextResponse(f"{kind}: {error}", status_code=status)
        except Exception:
            LOG.exception("cutout failed for %s", request.url)
            return PlainTextResponse("Error: the service failed; the error is logged", 500)

    return wrapped


def proc_arguments(params: dali.DaliParams) -> tuple[tuple[float, float] | None, str]:
    """``BAND`` (metres, checked) and the media type ``RESPONSEFORMAT`` asks for."""
    band_text = single(params, "BAND")
    band = dali.parse_interval(band_text, "BAND") if band_text else None
    if band is not None:
        band = (check_wavelength(band[0]), check_wavelength(band[1]))
    requested = single(params, "RESPONSEFORMAT") or single(params, "FORMAT")
    media = PROC_FORMATS.get((requested or FITS_MEDIA_TYPE).replace(" ", "").lower())
    if media is None:
        raise dali.bad_parameter(
            "RESPONSEFORMAT",
            f"{requested!r} is not offered; use {FITS_MEDIA_TYPE} or {SDM_MEDIA_TYPE}",
        )
    return band, media


def proc_body(
    path: Path, described: Described, band: tuple[float, float] | None, media: str
) -> bytes:
    """The cutout of the spectrum file ``path`` as ``media`` (blocking: a worker thread)."""
    spectrum = cutout(read_spectrum(path), band)
    if media == FITS_MEDIA_TYPE:
        return cutout_fits(spectrum, described)
    return cutout_votable(spectrum, described)


def requested_ids(params: dali.DaliParams) -> list[str]:
    """The ``ID`` values of a {links} request: at least one, at most :data:`MAX_IDS`."""
    ids = params.getlist("ID")
    if not ids:
        raise dali.bad_parameter("ID", "missing; give one or more publisher DIDs")
    if len(ids) > MAX_IDS:
        raise dali.bad_parameter("ID", f"{len(ids)} IDs; at most {MAX_IDS} per request")
    return ids


def single(params: dali.DaliParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise dali.bad_parameter(name, "MultiValuedParamNotSupported: give one value")
    return values[0] if values else None


def _find(catalogue: Catalogue, identifier: str | None) -> int:
    if identifier is None:
        raise dali.bad_parameter("ID", "missing; give the publisher DID of a spectrum")
    index = catalogue.index_of(identifier)
    if index is None:
        raise dali.DaliError(
            Reason.UNKNOWN_DATASET, not_found_detail(identifier, catalogue.info.name), 404
        )
    return index


# --- routes ------------------------------------------------------------------------
def routes(settings: Settings, holdings: Holdings | None = None) -> list[BaseRoute]:
    """``/datalink/{collection}`` and its files, preview, proc and VOSI endpoints."""
    holdings = holdings or Holdings(settings.home, settings.demo_archive_size)
    base_url = settings.public_url
    cache_dir = settings.home / "cache" / "datalink-preview"

    async def catalogue_of(request: Request) -> Catalogue:
        collection = request.path_params["collection"]
        holdings.info(collection)
        return await run_in_threadpool(holdings.catalogue, collection)

    @dali.endpoint
    async def links(request: Request) -> Response:
        params = await dali.DaliParams.from_request(request)
        ids = requested_ids(params)
        fmt = dali.response_format(params)
        catalogue = await catalogue_of(request)
        body = await run_in_threadpool(links_document, catalogue, ids, base_url, fmt.serialization)
        media = LINKS_MEDIA_TYPE if fmt.media_type == dali.VOTABLE_MEDIA_TYPE else fmt.media_type
        return Response(body, media_type=media)

    @dali.endpoint
    async def files(request: Request) -> Response:
        catalogue = await catalogue_of(request)
        path = request.path_params["path"]
        index = catalogue.index_of_file(path)
        if index is None:
            leaves = path.startswith("/") or ".." in path.split("/")
            raise dali.DaliError(
                Reason.PATH_OUTSIDE_COLLECTION if leaves else Reason.UNKNOWN_FILE,
                f"no file {path[:200]!r} in collection {catalogue.info.name!r}; the "
                "DataLink document of a spectrum gives its file's URL",
            )
        return FileResponse(catalogue.path_of(index), media_type=str(catalogue["format"][index]))

    @dali.endpoint
    async def preview(request: Request) -> Response:
        params = await dali.DaliParams.from_request(request)
        catalogue = await catalogue_of(request)
        index = _find(catalogue, single(params, "ID"))
        path = await run_in_threadpool(cached_preview, cache_dir, catalogue, index)
        return FileResponse(path, media_type="image/png")

    @soda_endpoint
    async def proc(request: Request) -> Response:
        params = await dali.DaliParams.from_request(request)
        catalogue = await catalogue_of(request)
        index = _find(catalogue, single(params, "ID"))
        band, media = proc_arguments(params)

        def make() -> bytes:
            return proc_body(catalogue.path_of(index), Described.of(catalogue, index), band, media)

        return Response(await run_in_threadpool(make), media_type=media)

    return [
        Route("/datalink/{collection}", links, methods=["GET", "POST"]),
        Route("/datalink/{collection}/files/{path:path}", files, methods=["GET", "HEAD"]),
        Route("/datalink/{collection}/preview", preview, methods=["GET"]),
        Route("/datalink/{collection}/proc", proc, methods=["GET", "POST"]),
        *collection_vosi_routes(
            "datalink",
            holdings,
            base_url,
            [(DATALINK_STANDARD_ID, ""), ("ivo://ivoa.net/std/SODA#sync-1.0", "proc")],
        ),
    ]
