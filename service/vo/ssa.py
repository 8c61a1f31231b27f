"""SSA 1.1 (Simple Spectral Access) for the embedded archive: ``/ssa/{collection}``.

``REQUEST=queryData`` with POS (``ra,dec[;ICRS]``, degrees), SIZE (cone
diameter, degrees), BAND (metres; ``lo/hi``, open ends, lists), TIME (MJD or
ISO 8601 ranges), FORMAT (``all``/``native``/``fits``/``application/fits`` ->
the archive's FITS files; ``compliant``/``votable``/
``application/x-votable+xml`` -> IVOA Spectrum DM VOTables cut on request;
``METADATA`` -> the description of inputs and outputs), PUBDID, TARGETNAME,
MAXREC and RESPONSEFORMAT. Rows carry the SSA utypes and UCDs of
``votable_templates/ssa.xml`` and the response ends with a DataLink service
descriptor, so pyvo's ``SSARecord.getdatalink()`` works.

Selection is vectorised over the catalogue arrays (cone by unit vectors).
Parameter errors are DALI error documents with HTTP 400 (see :mod:`dali`).
"""

from __future__ import annotations

import dataclasses
import math
from urllib.parse import quote

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.settings import Settings
from service.vo import dali, templates
from service.vo.holdings import (
    Catalogue,
    Holdings,
    collection_vosi_routes,
    normalise_name,
    unit_vectors,
)

DEFAULT_MAXREC = 1000
MAX_MAXREC = 10000
DEFAULT_SIZE_DEG = 0.05
#: BAND values above this many metres cannot be wavelengths of an optical archive;
#: they are almost always Angstrom or nanometres given by mistake.
MAX_WAVELENGTH_M = 1e-3
SDM_MEDIA_TYPE = "application/x-votable+xml;content=spectrum"
FITS_MEDIA_TYPE = "application/fits"
NATIVE_FORMATS = frozenset({"all", "native", "fits", "application/fits", "image/fits"})
SDM_FORMATS = frozenset(
    {"compliant", "votable", "application/x-votable+xml", SDM_MEDIA_TYPE, "xml"}
)
SSA_STANDARD_ID = "ivo://ivoa.net/std/SSA"


@dataclasses.dataclass(frozen=True)
class SsaQuery:
    """A parsed queryData request. Angles in degrees, wavelengths in metres, times MJD."""

    pos: tuple[float, float] | None = None
    size: float = DEFAULT_SIZE_DEG
    bands: tuple[tuple[float, float], ...] = ()
    times: tuple[tuple[float, float], ...] = ()
    pubdids: tuple[str, ...] = ()
    targetname: str | None = None
    sdm: bool = False  # FORMAT asks for Spectrum DM VOTables instead of the FITS files
    nothing: bool = False  # FORMAT asks for a format this archive does not have
    metadata: bool = False  # FORMAT=METADATA
    maxrec: int = DEFAULT_MAXREC


def parse_query(params: dali.DaliParams, max_maxrec: int = MAX_MAXREC) -> SsaQuery:
    """Check and convert the SSA parameters; raise :class:`dali.DaliError` on bad input.

    ``max_maxrec`` is the operator's row limit (``ALVO_SSA_MAXREC``): a larger
    MAXREC is cut to it, and a query matching more rows says OVERFLOW.
    """
    request = params.get("REQUEST")
    if request is None:
        raise dali.bad_parameter("REQUEST", "missing; this service answers REQUEST=queryData")
    if request.lower() != "querydata":
        raise dali.bad_parameter("REQUEST", f"{request!r} is not supported; use queryData")
    version = params.get("VERSION")
    if version is not None and not version.startswith("1."):
        raise dali.bad_parameter("VERSION", f"{version!r} is not supported; this is SSA 1.1")
    fields: dict[str, object] = {}
    if (pos := params.get("POS")) is not None:
        fields["pos"] = parse_pos(pos)
    if (size := params.get("SIZE")) is not None:
        fields["size"] = parse_size(size)
    if (band := params.get("BAND")) is not None:
        fields["bands"] = tuple(dali.parse_ranges(band, "BAND", _wavelength))
    if (time := params.get("TIME")) is not None:
        fields["times"] = tuple(
            (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
            for lo, hi in dali.parse_ranges(time, "TIME", dali.parse_time)
        )
    if (pubdid := params.get("PUBDID")) is not None:
        fields["pubdids"] = tuple(p.strip() for p in pubdid.split(",") if p.strip())
    fields["targetname"] = params.get("TARGETNAME")
    fmt = (params.get("FORMAT") or "all").strip()
    if fmt.upper() == "METADATA":
        fields["metadata"] = True
    elif fmt.lower() in SDM_FORMATS:
        fields["sdm"] = True
    elif fmt.lower() not in NATIVE_FORMATS:
        if "/" not in fmt and fmt.lower() not in ("graphic", "image"):
            raise dali.bad_parameter(
                "FORMAT",
                f"{fmt!r} is neither a MIME type nor one of all, native, fits, "
                "compliant, votable, METADATA",
            )
        fields["nothing"] = True
    fields["maxrec"] = dali.maxrec(params, min(DEFAULT_MAXREC, max_maxrec), max_maxrec)
    return SsaQuery(**fields)  # type: ignore[arg-type]


def parse_pos(text: str) -> tuple[float, float]:
    """``ra,dec`` in degrees with an optional ``;ICRS`` frame."""
    coords, _, frame = text.partition(";")
    if frame.strip() and frame.strip().upper() != "ICRS":
        raise dali.bad_parameter("POS", f"frame {frame.strip()!r} is not supported; use ICRS")
    parts = coords.split(",")
    if len(parts) != 2:
        raise dali.bad_parameter("POS", f"{text!r} is not 'ra,dec' in decimal degrees")
    try:
        ra, dec = (float(p) for p in parts)
    except ValueError:
        raise dali.bad_parameter("POS", f"{text!r} is not 'ra,dec' in decimal degrees") from None
    if not (math.isfinite(ra) and 0.0 <= ra <= 360.0):
        raise dali.bad_parameter("POS", f"RA {ra} is outside 0..360 degrees")
    if not (math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise dali.bad_parameter("POS", f"Dec {dec} is outside -90..90 degrees")
    return ra % 360.0, dec


def parse_size(text: str) -> float:
    try:
        size = float(text)
    except ValueError:
        raise dali.bad_parameter("SIZE", f"{text!r} is not a diameter in degrees") from None
    if not (math.isfinite(size) and 0.0 < size <= 180.0):
        raise dali.bad_parameter("SIZE", f"{size} is not a diameter in degrees in (0, 180]")
    return size


def _wavelength(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise dali.bad_parameter(
            name, f"{text!r} is not a number; BAND takes wavelengths in metres, e.g. 6.5e-7/6.6e-7"
        ) from None
    return check_wavelength(value, name)


def check_wavelength(value: float, name: str = "BAND") -> float:
    """Refuse wavelengths that cannot be metres of an optical spectrum (Angstrom, nm given)."""
    if math.isnan(value):
        raise dali.bad_parameter(name, "NaN is not a wavelength")
    if value < 0:
        raise dali.bad_parameter(name, f"{value:g} m is negative; wavelengths are positive")
    if math.isfinite(value) and value > MAX_WAVELENGTH_M:
        raise dali.bad_parameter(
            name,
            f"{value:g} m is not an optical wavelength: BAND is in metres "
            f"(6563 Angstrom is 6.563e-07 m; you may have meant {value * 1e-10:.4g} m)",
        )
    return value


def matching_rows(catalogue: Catalogue, query: SsaQuery) -> np.ndarray:
    """Indices of the matching rows, nearest first for cone searches."""
    keep = np.ones(catalogue.size, dtype=bool)
    if query.nothing:
        return np.zeros(0, dtype=np.int64)
    if query.pubdids:
        keep &= np.isin(catalogue["pubdid"], np.array(query.pubdids))
    if query.targetname:
        keep &= catalogue.normalised_objects == normalise_name(query.targetname)
    if query.bands:
        start, end = catalogue["spec_start"], catalogue["spec_end"]
        in_band = np.zeros_like(keep)
        for lo, hi in query.bands:
            in_band |= (start <= hi) & (end >= lo)
        keep &= in_band
    if query.times:
        mjd = catalogue["mjd"]
        in_time = np.zeros_like(keep)
        for lo, hi in query.times:
            in_time |= (mjd >= lo) & (mjd <= hi)
        keep &= in_time
    if query.pos is not None:
        centre = unit_vectors(query.pos[0], query.pos[1])
        cosine = catalogue.xyz @ centre
        keep &= cosine >= math.cos(math.radians(query.size / 2.0))
        indices = np.flatnonzero(keep)
        return indices[np.argsort(-cosine[indices], kind="stable")]
    return np.flatnonzero(keep)


def data_url(base_url: str, collection: str, relative_path: str) -> str:
    """The public URL of a catalogued file (served by the DataLink module)."""
    return f"{base_url}/datalink/{collection}/files/{quote(relative_path)}"


def cutout_url(base_url: str, collection: str, pubdid: str, media_type: str) -> str:
    """The public URL of the whole spectrum through the cutout (#proc) service."""
    return (
        f"{base_url}/datalink/{collection}/proc?ID={quote(pubdid, safe='')}"
        f"&RESPONSEFORMAT={quote(media_type, safe='')}"
    )


def response_document(
    catalogue: Catalogue,
    indices: np.ndarray,
    query: SsaQuery,
    base_url: str,
    serialization: str = "tabledata",
    overflow: bool = False,
) -> bytes:
    """The queryData (or METADATA) VOTable for these catalogue rows."""
    info = catalogue.info
    doc = templates.load("ssa.xml")
    if not query.metadata:
        doc.remove("//v:PARAM[starts-with(@name, 'INPUT:')]")
    doc.set_params(
        {
            "ssa_datasource": info.data_source,
            "ssa_respower": info.resolving_power,
            "ssa_fluxunit": info.flux_unit,
            "ssa_fluxcalib": info.flux_calibration,
            "spectral_medium": info.medium,
            "datalink_accessURL": f"{base_url}/datalink/{info.name}",
        }
    )
    doc.fill("results", result_columns(catalogue, indices, query, base_url), serialization)
    if overflow:
        dali.add_overflow_info(doc.root)
    return doc.to_bytes()


def result_columns(
    catalogue: Catalogue, indices: np.ndarray, query: SsaQuery, base_url: str
) -> dict[str, object]:
    """FIELD ID -> values for the selected rows (see ``votable_templates/ssa.xml``)."""
    col = {name: values[indices] for name, values in catalogue.columns.items()}
    info = catalogue.info
    n = len(indices)
    start, end = col["spec_start"].astype(float), col["spec_end"].astype(float)
    mid = (start + end) / 2.0
    position = np.stack([col["ra"], col["dec"]], axis=-1).astype(float).reshape(n, 2)
    if query.sdm:
        accref = [cutout_url(base_url, info.name, p, SDM_MEDIA_TYPE) for p in col["pubdid"]]
        mime = np.full(n, SDM_MEDIA_TYPE, dtype=object)
        size = np.ma.masked_all(n, dtype=np.int64)
    else:
        accref = [data_url(base_url, info.name, f) for f in col["file"]]
        mime = col["format"].astype(object)
        size = col["size"].astype(np.int64)
    columns: dict[str, object] = {
        "ssa_dstitle": [
            f"{obj} ({info.name} {obsid})"
            for obj, obsid in zip(col["object"], col["obsid"], strict=True)
        ],
        "ssa_pubDID": col["pubdid"].astype(object),
        "ssa_collection": np.full(n, info.name, dtype=object),
        "accref": np.array(accref, dtype=object),
        "mime": mime,
        "accsize": size,
        "ssa_targname": col["object"].astype(object),
        "ssa_targclass": col["pipeline_class"].astype(object),
        "obsid": col["obsid"].astype(object),
        "designation": col["designation"].astype(object),
        "location_ra": col["ra"].astype(float),
        "location_dec": col["dec"].astype(float),
        "ssa_location": position,
        "ssa_targetpos": position,
        "ssa_instrument": np.full(n, info.instrument, dtype=object),
        "ssa_dateObs": col["mjd"].astype(float),
        "ssa_datadate": _iso_dates(col["mjd"].astype(float)),
        "ssa_specstart": start,
        "ssa_specend": end,
        "ssa_specmid": mid,
        "ssa_specext": end - start,
        "ssa_specres": mid / info.resolving_power,
        "ssa_snr": col["snr"].astype(float),
        "magnitude": col["magnitude"].astype(float),
    }
    if "length" in col:
        columns["ssa_length"] = col["length"].astype(np.int64)
    return columns


def _iso_dates(mjd: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS.sss`` (UTC) of each MJD; None (null) where the MJD is unknown."""
    from astropy.time import Time

    known = np.isfinite(mjd)
    out = np.full(len(mjd), None, dtype=object)
    if known.any():
        out[known] = Time(mjd[known], format="mjd", scale="utc").iso
    return out


def routes(settings: Settings, holdings: Holdings | None = None) -> list[BaseRoute]:
    """``/ssa/{collection}`` (GET and POST) and its VOSI availability/capabilities."""
    holdings = holdings or Holdings(settings.home, settings.demo_archive_size)

    @dali.endpoint
    async def query_data(request: Request) -> Response:
        collection = request.path_params["collection"]
        holdings.info(collection)
        params = await dali.DaliParams.from_request(request)
        query = parse_query(params, settings.ssa_maxrec)
        fmt = dali.response_format(params)

        def answer() -> bytes:
            catalogue = holdings.catalogue(collection)
            indices = (
                np.zeros(0, dtype=np.int64) if query.metadata else matching_rows(catalogue, query)
            )
            overflow = len(indices) > query.maxrec
            return response_document(
                catalogue,
                indices[: query.maxrec],
                query,
                settings.public_url,
                fmt.serialization,
                overflow,
            )

        return dali.votable_response(await run_in_threadpool(answer), fmt)

    return [
        Route("/ssa/{collection}", query_data, methods=["GET", "POST"]),
        *collection_vosi_routes("ssa", holdings, settings.public_url, [(SSA_STANDARD_ID, "")]),
    ]
