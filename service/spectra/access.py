"""From VO references to downloadable spectra: SSA queries, DataLink IDs, uploaded tables.

Any SSA 1.1 service (a GAVO DaCHS archive such as Ondrejov's, or alvo's own
embedded archive) and any DataLink 1.x service go through the same code: the
HTTP request is ours (:func:`service.net.fetch.fetch_document`: confined, a total
deadline, a size cap, named errors), the parsing is pyvo's
(records by utype, DataLink semantics), so the references a user sees are what
TOPCAT would see.
"""

from __future__ import annotations

import dataclasses
import io
import math
import urllib.parse
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from service.net.fetch import FetchPolicy, Params, fetch_document
from service.reasons import AlvoError, Reason


@dataclasses.dataclass(frozen=True)
class SpectrumReference:
    """Where one spectrum can be downloaded, and what the archive said about it."""

    access_url: str
    pubdid: str = ""
    title: str = ""
    format: str = ""
    ra: float = math.nan
    dec: float = math.nan
    datalink: str = ""  # URL of the DataLink {links} document, if the archive has one
    label: str = ""  # oracle label carried by an uploaded table (a labelled source set)


@dataclasses.dataclass(frozen=True)
class SSAQuery:
    """SSA 1.1 query constraints; BAND in metres, SIZE in degrees, TIME in MJD."""

    pos: tuple[float, float] | None = None
    size: float | None = None
    band: tuple[float | None, float | None] | None = None
    time: tuple[float | None, float | None] | None = None
    maxrec: int | None = None
    format: str = "all"

    def parameters(self) -> dict[str, str]:
        params = {"REQUEST": "queryData", "FORMAT": self.format}
        if self.pos is not None:
            params["POS"] = f"{self.pos[0]!r},{self.pos[1]!r}"
        if self.size is not None:
            params["SIZE"] = repr(self.size)
        if self.band is not None:
            params["BAND"] = _range(self.band)
        if self.time is not None:
            params["TIME"] = _range(self.time)
        if self.maxrec is not None:
            params["MAXREC"] = str(self.maxrec)
        return params


def _range(bounds: tuple[float | None, float | None]) -> str:
    return "/".join("" if value is None else repr(value) for value in bounds)


def _get(url: str, params: Params, policy: FetchPolicy | None, what: str) -> bytes:
    """A whole SSA/DataLink response; an error status with a VOTable body is left to its parser."""
    return fetch_document(
        url,
        params,
        policy=policy,
        what=what,
        timeout_reason=Reason.SSA_TIMEOUT,
        error_votables=True,
    )


def _votable(data: bytes, what: str) -> Any:
    """Parse a VOTable; DALI error documents become SSA_ERROR with the server's text."""
    from astropy.io.votable import parse

    try:
        votable = parse(io.BytesIO(data), verify="ignore")
    except Exception as error:
        raise AlvoError(Reason.CORRUPT_VOTABLE, f"{what}: {error}") from error
    for resource in votable.resources:
        for info in resource.infos:
            if info.name == "QUERY_STATUS" and info.value == "ERROR":
                raise AlvoError(Reason.SSA_ERROR, f"{what}: {info.content or 'error'}")
    return votable


def ssa_references(
    service_url: str, query: SSAQuery, policy: FetchPolicy | None = None
) -> list[SpectrumReference]:
    """Run one SSA query; one reference per record (its DataLink too, when offered).

    ``policy`` bounds the query (deadline, size, where); its timeout is SSA_TIMEOUT.
    One answer only: an archive's MAXREC may cut it (see :func:`ssa_listing`).
    """
    return ssa_page(service_url, query, policy)[0]


def ssa_page(
    service_url: str, query: SSAQuery, policy: FetchPolicy | None = None
) -> tuple[list[SpectrumReference], bool]:
    """One SSA answer: its references, and whether the service said OVERFLOW."""
    from pyvo.dal.exceptions import DALOverflowWarning
    from pyvo.dal.ssa import SSAResults

    votable = _votable(_get(service_url, query.parameters(), policy, "SSA"), "SSA response")
    with warnings.catch_warnings():  # the overflow is returned, and paged by ssa_listing
        warnings.simplefilter("ignore", DALOverflowWarning)
        results = SSAResults(votable, url=service_url)
    datalink_base = _datalink_base(results)
    # one utype lookup per answer, not per record (pyvo's per-record lookup walks
    # every FIELD: it was half the time of a 1000-row page)
    names = {utype: results.fieldname_with_utype(utype) for utype in RECORD_UTYPES}
    references = []
    for record in results:
        pubdid = _text(record.get(names[PUBDID_UTYPE])) or _text(
            record.get("ssa_pubDID", default="")
        )
        ra, dec = _position(record, names)
        references.append(
            SpectrumReference(
                access_url=_text(record.get(names[ACREF_UTYPE])),
                pubdid=pubdid,
                title=_text(record.get(names[TITLE_UTYPE])),
                format=_text(record.get(names[FORMAT_UTYPE])),
                ra=ra,
                dec=dec,
                datalink=links_url(datalink_base, pubdid) if datalink_base and pubdid else "",
            )
        )
    return references, overflowed(votable)


def overflowed(votable: Any) -> bool:
    """Whether a DAL answer was cut at MAXREC: a QUERY_STATUS INFO says OVERFLOW.

    DALI 1.1 puts it in the results RESOURCE after the TABLE (astropy keeps it
    in ``resource.infos``); older services put it in the RESOURCE or the VOTABLE.
    """
    infos = list(votable.infos)
    for resource in votable.resources:
        infos += resource.infos
    return any(
        (info.name or "").upper() == "QUERY_STATUS" and (info.value or "").upper() == "OVERFLOW"
        for info in infos
    )


def _holds_any(tile: Any, references: Sequence[SpectrumReference]) -> bool:
    """Whether a tile's box holds one of these records (or one has no position).

    A tile's cone reaches into its neighbours' boxes, so one dense spot can
    overflow two smallest tiles; only the one whose box holds it reports it.
    """
    return any(
        not (math.isfinite(r.ra) and math.isfinite(r.dec)) or tile.contains(r.ra, r.dec)
        for r in references
    )


#: Tiles are not cut smaller than this (degrees, 1 arcsec): the spectra of one
#: star (repeated epochs) can never be told apart by position.
MIN_TILE_DEG = 1.0 / 3600.0


@dataclasses.dataclass
class SSAListing:
    """Every spectrum an SSA query names, however many pages the archive cuts it into."""

    references: list[SpectrumReference]
    queries: int  # SSA requests made (the query itself, then one per tile)
    tiles: int  # sky tiles queried after the query itself overflowed
    too_dense: list[AlvoError]  # tiles at the smallest size that still overflowed
    capped: bool  # stopped at the query's MAXREC (the user's total)
    listed: int = 0  # distinct records so far (what progress reports)


def ssa_listing(
    service_url: str,
    query: SSAQuery,
    policy: FetchPolicy | None = None,
    progress: Callable[[SSAListing], None] | None = None,
    min_tile_deg: float = MIN_TILE_DEG,
) -> SSAListing:
    """Run an SSA query to the end, paging past the service's MAXREC by sky tiles.

    When the answer says OVERFLOW, the query's region (its POS/SIZE cone, or the
    whole sky) is cut into RA x Dec tiles (:mod:`service.spectra.sky_tiles`),
    each asked as a cone with the query's other constraints; a tile that
    overflows again is cut into quadrants, down to ``min_tile_deg``, where
    what its first page misses is reported as SSA_TOO_DENSE. Records are
    deduplicated by publisher DID (else access URL), kept only inside the
    query's cone, and ``query.maxrec`` caps the total. Every request goes
    through :func:`service.net.fetch.fetch_document` with ``policy``.
    """
    from service.spectra import sky_tiles

    cap = query.maxrec
    seen: dict[str, SpectrumReference] = {}
    listing = SSAListing([], 0, 0, [], False)

    def ask(asked: SSAQuery) -> tuple[list[SpectrumReference], bool]:
        page, overflow = ssa_page(service_url, asked, policy)
        listing.queries += 1
        for reference in page:
            key = reference.pubdid or reference.access_url
            if not key or key in seen:
                continue
            unplaced = not (math.isfinite(reference.ra) and math.isfinite(reference.dec))
            if unplaced or sky_tiles.in_cone(reference.ra, reference.dec, query.pos, query.size):
                seen[key] = reference
        listing.listed = len(seen)
        if progress is not None:
            progress(listing)
        return page, overflow

    def full() -> bool:
        return cap is not None and len(seen) >= cap

    overflowed = ask(query)[1]
    pending = sky_tiles.first_tiles(query.pos, query.size) if overflowed and not full() else []
    while pending and not full():
        tile = pending.pop(0)
        listing.tiles += 1
        page, overflow = ask(dataclasses.replace(query, pos=tile.centre, size=tile.diameter))
        if not overflow:
            continue
        if tile.diameter > min_tile_deg:
            # depth first, so the queue stays short; quadrants outside the cone are not asked
            quadrants = tile.quadrants()
            pending[:0] = [q for q in quadrants if sky_tiles.overlaps(q, query.pos, query.size)]
        elif _holds_any(tile, page):  # else a neighbour's spot reaching into this tile's cone
            ra, dec = tile.centre
            listing.too_dense.append(
                AlvoError(
                    Reason.SSA_TOO_DENSE,
                    f"SSA tile POS={ra:.6f},{dec:.6f} SIZE={tile.diameter:.2e} deg "
                    f"overflowed at {len(page)} records",
                )
            )
    listing.references = list(seen.values())[:cap]
    listing.capped = overflowed and full()
    return listing


def links_url(datalink_url: str, pubdid: str) -> str:
    """The DataLink {links} URL of one dataset; the ID is URL-encoded (DIDs hold ? & +)."""
    return f"{datalink_url}?{urllib.parse.urlencode({'ID': pubdid})}"


def _datalink_base(results: Any) -> str:
    """The accessURL of a DataLink service descriptor in an SSA response, if any."""
    for resource in results.votable.resources:
        if resource.type == "meta" and resource.utype == "adhoc:service":
            params = {p.name: p.value for p in resource.params}
            if "links" in _text(params.get("standardID", "")).lower():
                return _text(params.get("accessURL", ""))
    return ""


#: SSA 1.1 utypes, matched case-insensitively by pyvo.
PUBDID_UTYPE = "ssa:Curation.PublisherDID"
#: Where an SSA record's position is: the queried coverage location first
#: (mandatory in SSA 1.1; DaCHS fills only it), then the optional target position.
POSITION_UTYPES = ("ssa:Char.SpatialAxis.Coverage.Location.Value", "ssa:Target.Pos")
#: What pyvo's SSARecord.acref, .title and .format read.
ACREF_UTYPE, TITLE_UTYPE, FORMAT_UTYPE = (
    "ssa:Access.Reference",
    "ssa:DataID.Title",
    "ssa:Access.Format",
)
RECORD_UTYPES = (PUBDID_UTYPE, ACREF_UTYPE, TITLE_UTYPE, FORMAT_UTYPE, *POSITION_UTYPES)


def _position(record: Any, names: dict[str, str | None]) -> tuple[float, float]:
    """ICRS (RA, Dec) in degrees of an SSA record, NaN when it has none."""
    for utype in POSITION_UTYPES:
        try:
            ra, dec = (float(value) for value in record.get(names[utype]))
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(ra) and math.isfinite(dec):
            return ra, dec
    return math.nan, math.nan


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode()
    text = str(value).strip()
    return "" if text == "--" else text


def datalink_references(
    datalink_url: str, ids: Sequence[str], policy: FetchPolicy | None = None, batch: int = 50
) -> list[SpectrumReference | AlvoError]:
    """Resolve publisher DIDs through a DataLink service to their ``#this`` links.

    One request per ``batch`` IDs (DataLink accepts many); each ID ends as a
    reference or as the named error the service gave for it, in input order.
    """
    resolved: dict[str, SpectrumReference | AlvoError] = {}
    for start in range(0, len(ids), batch):
        chunk = list(ids[start : start + batch])
        try:
            params = httpx.QueryParams([("ID", pubdid) for pubdid in chunk])
            data = _get(datalink_url, params, policy, "DataLink")
            resolved.update(_this_links(data, chunk, datalink_url))
        except AlvoError as error:
            resolved.update({pubdid: error for pubdid in chunk})
    return [resolved[pubdid] for pubdid in ids]


def _this_links(
    data: bytes, ids: Sequence[str], datalink_url: str
) -> dict[str, SpectrumReference | AlvoError]:
    from pyvo.dal.adhoc import DatalinkResults

    links = DatalinkResults(_votable(data, "DataLink response"), url=datalink_url)
    found: dict[str, SpectrumReference | AlvoError] = {}
    for row in links:
        pubdid = _text(row.get("ID"))
        semantics = _text(row.get("semantics"))
        error = _text(row.get("error_message"))
        if semantics != "#this" or (pubdid in found and not isinstance(found[pubdid], AlvoError)):
            continue
        if error:
            found[pubdid] = AlvoError(_fault_reason(error), f"{pubdid}: {error}")
        else:
            found[pubdid] = SpectrumReference(
                access_url=_text(row.get("access_url")),
                pubdid=pubdid,
                format=_text(row.get("content_type")),
                datalink=links_url(datalink_url, pubdid),
            )
    for pubdid in ids:
        found.setdefault(pubdid, AlvoError(Reason.DATALINK_NO_THIS, f"{pubdid}: no #this link"))
    return found


def _fault_reason(error_message: str) -> Reason:
    """DataLink 1.1 error_message starts with a fault name; NotFoundFault = unknown ID."""
    if error_message.startswith("NotFoundFault"):
        return Reason.UNKNOWN_DATASET
    return Reason.HTTP_ERROR


#: Column names an uploaded table may use, most specific first (case-insensitive).
URL_COLUMNS = ("access_url", "accref", "access_reference", "url")
ID_COLUMNS = ("pubdid", "ssa_pubdid", "obs_publisher_did", "id", "datalink_id")


def references_from_votable(
    data: bytes,
) -> tuple[list[SpectrumReference], list[tuple[str, str]]]:
    """An uploaded table: ``(direct references, [(DataLink ID, label)] to resolve)``.

    A row with an access URL (a column named like ``access_url`` or with utype
    ``ssa:Access.Reference``) is a direct reference; a row with only a
    publisher DID must be resolved through DataLink. A ``label`` column, when
    present, makes the upload a labelled set.
    """
    votable = _votable(data, "uploaded table")
    try:
        table = votable.get_first_table()
    except Exception as error:
        raise AlvoError(Reason.CORRUPT_VOTABLE, "the upload holds no table") from error
    names = {field.name.lower(): field.name for field in table.fields}
    by_utype = {(field.utype or "").lower(): field.name for field in table.fields}
    url_column = by_utype.get("ssa:access.reference") or next(
        (names[c] for c in URL_COLUMNS if c in names), None
    )
    id_column = by_utype.get("ssa:curation.publisherdid") or next(
        (names[c] for c in ID_COLUMNS if c in names), None
    )
    if url_column is None and id_column is None:
        raise AlvoError(
            Reason.BAD_PARAMETER,
            f"the uploaded table needs an access URL column ({', '.join(URL_COLUMNS)}) "
            f"or a publisher DID column ({', '.join(ID_COLUMNS)})",
        )
    label_column = names.get("label")
    direct, to_resolve = [], []
    for row in table.array:
        url = _text(row[url_column]) if url_column else ""
        pubdid = _text(row[id_column]) if id_column else ""
        label = _text(row[label_column]) if label_column else ""
        if url:
            direct.append(SpectrumReference(access_url=url, pubdid=pubdid, label=label))
        elif pubdid:
            to_resolve.append((pubdid, label))
    return direct, to_resolve
