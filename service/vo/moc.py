"""A campaign's pool footprint on the sky as an IVOA MOC (``/campaigns/{name}/moc``).

The MOC (Multi-Order Coverage map, IVOA MOC 2.0) is the set of HEALPix cells of
order ``MOCORDER`` (default :data:`DEFAULT_ORDER`, cells of ~3.4 arcmin) that hold a
spectrum of the campaign's pool: Aladin draws it over any survey, TOPCAT and mocpy
intersect catalogues with it. Built by mocpy from the pool's positions; spectra
without a position are left out. ``RESPONSEFORMAT`` is ``fits`` (default, MOC 2.0
FITS, ``application/fits``) or ``json`` (``{"order": [cells...]}``).
"""

from __future__ import annotations

import io
import json

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.http.access import caller
from service.http.errors import json_errors
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store.campaigns import Campaigns

#: HEALPix order of the cells (10: 3.4 arcmin; 29 is the finest MOC allows).
DEFAULT_ORDER = 10
MAX_ORDER = 18
FORMATS = {"fits": "application/fits", "json": "application/json"}


def footprint(ra: np.ndarray, dec: np.ndarray, order: int = DEFAULT_ORDER) -> object:
    """The mocpy ``MOC`` of the cells of ``order`` holding these positions (deg, ICRS)."""
    import astropy.units as u
    from mocpy import MOC

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    known = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    return MOC.from_lonlat(lon=ra[known] % 360 * u.deg, lat=dec[known] * u.deg, max_norder=order)


def serialized(moc: object, fmt: str) -> bytes:
    """The MOC as FITS bytes or JSON text."""
    if fmt == "json":
        cells = moc.serialize(format="json")  # type: ignore[attr-defined]
        return json.dumps({order: np.asarray(c).tolist() for order, c in cells.items()}).encode()
    buffer = io.BytesIO()
    moc.serialize(format="fits").writeto(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def routes(settings: Settings) -> list[BaseRoute]:
    """``/campaigns/{name}/moc`` (refusals as the campaign API's JSON). The store is opened
    per request: an app is built before its database need answer."""

    @json_errors
    async def moc(request: Request) -> Response:
        name = request.path_params["name"]
        query = {k.upper(): v for k, v in request.query_params.items()}
        fmt = query.get("RESPONSEFORMAT", "fits").strip().lower()
        fmt = {"application/fits": "fits", "application/json": "json"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise AlvoError(Reason.BAD_PARAMETER, "RESPONSEFORMAT: fits or json")
        text = query.get("MOCORDER", str(DEFAULT_ORDER)).strip()
        if not text.isdecimal() or int(text[:3]) > MAX_ORDER:
            raise AlvoError(Reason.BAD_PARAMETER, f"MOCORDER: a whole number 0..{MAX_ORDER}")

        user = caller(request)

        def build() -> bytes:
            campaigns = Campaigns(settings).seen_by(user)
            campaign = campaigns.require(name)
            where = campaigns.datasets.spectra(campaign.target, ["ra", "dec"])
            ra = np.array([np.nan if v is None else v for v in where["ra"]], float)
            dec = np.array([np.nan if v is None else v for v in where["dec"]], float)
            return serialized(footprint(ra, dec, int(text)), fmt)

        body = await run_in_threadpool(build)
        disposition = f'inline; filename="{name}-moc.{fmt}"'
        return Response(body, media_type=FORMATS[fmt], headers={"Content-Disposition": disposition})

    return [Route("/campaigns/{name}/moc", moc, methods=["GET"])]
