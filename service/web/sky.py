"""Sky context for the labelling page: Aladin Lite, the survey under it, the neighbours.

The page's sky panel (``static/sky.js``) shows the current spectrum's position in
Aladin Lite (npm ``aladin-lite``, pinned in :data:`ALADIN_LITE_VERSION`) -- the fibre
drawn to scale, the other spectra of the tables in the field marked -- over a HiPS.
Everything the panel loads comes from this service, never a CDN:

``/sky/aladin-lite.js``      Aladin Lite itself (one ES module, its WebAssembly inlined),
                             from the copy :func:`install_aladin_lite` leaves in
                             ``~/.cache/alvo`` (``make aladin-lite``) or ``ALVO_ALADIN_LITE``
``/sky/demo/...``            the demo archive's own sky, a HiPS made by Hipsgen
                             (:mod:`service.archive.skyimage`)
``/sky?RA=&DEC=[&ID=]``      JSON: the survey to draw (the demo sky where it covers the
                             position, else ``ALVO_HIPS``), the fibre, and the spectra
                             within :data:`FIELD_ARCMIN` (nearest first; ``ID``, the
                             spectrum itself, left out)

The survey is the only thing fetched from elsewhere (a HiPS server such as CDS); the
panel probes it first and, unreachable, says so and draws no image: the page works on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from service.archive.skyimage import hips_folder
from service.http.errors import json_errors
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store.engine import engine_for
from service.store.stars import spectra_near

#: Pinned: a new Aladin Lite changes the panel's look and API; a deliberate change here.
ALADIN_LITE_VERSION = "3.8.2"
#: SHA-256 of that release's ``dist/aladin.js`` (npm checks the tarball; this the file).
ALADIN_LITE_SHA256 = "bed9c8ef1d1e83501b1cb782366092c72c5ecd1c88f16fef3166188ae8062066"
#: LAMOST fibres are 3.3 arcsec across.
FIBRE_DIAMETER_ARCSEC = 3.3
#: Radius of the field whose spectra the panel marks (and its view: twice this across).
FIELD_ARCMIN = 2.0
#: Most neighbours marked.
MAX_NEIGHBOURS = 30
#: Where a HiPS identifier (``CDS/P/DSS2/color``) is looked up; the panel's probe.
MOCSERVER = "https://alasky.cds.unistra.fr/MocServer/query"
OFF = "off"


def cache_folder() -> Path:
    """``$XDG_CACHE_HOME/alvo`` (``~/.cache/alvo``): downloads kept across builds."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "alvo"


def aladin_lite_file(settings: Settings) -> Path:
    """Where the served ``aladin.js`` is: ``ALVO_ALADIN_LITE`` or the cached release."""
    if settings.aladin_lite:
        return Path(settings.aladin_lite)
    folder = cache_folder() / f"aladin-lite-{ALADIN_LITE_VERSION}"
    return folder / "package" / "dist" / "aladin.js"


def install_aladin_lite(target: Path | None = None, timeout_s: float = 300) -> Path:
    """Fetch the pinned ``aladin-lite`` package with ``npm pack`` (the registry's
    tarball, checked by npm) into the cache and unpack its ``dist/aladin.js`` and
    licences; the file's SHA-256 must be :data:`ALADIN_LITE_SHA256`. A build step
    (``make aladin-lite``), never run while serving. Returns the script's path."""
    script = target or aladin_lite_file(Settings())
    if script.is_file() and _sha256(script) == ALADIN_LITE_SHA256:
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise AlvoError(Reason.SKY_TOOL_FAILED, "npm is not installed: cannot fetch aladin-lite")
    package = script.parent.parent  # .../package
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run(
            [npm, "pack", "--silent", f"aladin-lite@{ALADIN_LITE_VERSION}"],
            cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip
        tarballs = list(Path(work).glob("aladin-lite-*.tgz"))
        if done.returncode or not tarballs:
            raise AlvoError(
                Reason.SKY_TOOL_FAILED,
                f"npm pack aladin-lite@{ALADIN_LITE_VERSION}: {done.stderr[-300:]}",
            )
        wanted = ("package/dist/aladin.js", "package/LICENSE", "package/COPYING",
                  "package/COPYING.LESSER", "package/package.json")  # fmt: skip
        with tarfile.open(tarballs[0]) as archive:
            for name in wanted:
                member = archive.getmember(name)
                source = archive.extractfile(member)
                if source is None:
                    continue
                out = package / Path(name).relative_to("package")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(source.read())
    if _sha256(script) != ALADIN_LITE_SHA256:
        script.unlink()
        raise AlvoError(
            Reason.SKY_TOOL_FAILED,
            f"aladin-lite {ALADIN_LITE_VERSION}: aladin.js is not the pinned file",
        )
    return script


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def demo_sky_covers(settings: Settings, ra: float, dec: float) -> bool:
    """True when the demo archive's local HiPS exists and its MOC holds (ra, dec)."""
    hips = hips_folder(settings.home)
    moc = hips / "Moc.fits"
    if not (hips / "properties").is_file() or not moc.is_file():
        return False
    import astropy.units as u
    from mocpy import MOC

    # read each time (a few kB, ~1 ms): a cached MOC outlives mocpy at interpreter exit
    coverage = MOC.from_fits(moc)
    return bool(coverage.contains_lonlat(ra * u.deg, dec * u.deg)[0])


def survey_for(settings: Settings, ra: float, dec: float) -> dict[str, Any] | None:
    """The HiPS to draw at (ra, dec): ``id``, ``url`` (relative to the service root for
    the local one), ``name``, ``local`` and ``probe`` (a URL that answers when the
    survey is reachable); None when the panel is off."""
    if demo_sky_covers(settings, ra, dec):
        return {"id": "alvo/P/demo-sky", "url": "sky/demo", "name": "alvo demo sky (synthetic)",
                "local": True, "probe": "sky/demo/properties"}  # fmt: skip
    hips = settings.hips.strip()
    if not hips or hips.lower() == OFF:
        return None
    if hips.startswith(("http://", "https://")):
        return {"id": hips, "url": hips.rstrip("/"), "name": hips, "local": False,
                "probe": hips.rstrip("/") + "/properties"}  # fmt: skip
    return {"id": hips, "url": None, "name": hips, "local": False,
            "probe": f"{MOCSERVER}?ID={hips}&get=record&fmt=json"}  # fmt: skip


def field_spectra(
    settings: Settings, ra: float, dec: float, radius_arcmin: float, exclude: int | None
) -> list[dict[str, Any]]:
    """The spectra within ``radius_arcmin`` of (ra, dec), nearest first (at most
    :data:`MAX_NEIGHBOURS`), with their separation in arcsec."""
    found = spectra_near(engine_for(settings.sqlalchemy_url), np.array([dec]), radius_arcmin / 60)
    found = [f for f in found if f["ra"] is not None and f["spectrum_id"] != exclude]
    if not found:
        return []
    ra1, dec1 = (np.radians(np.array([f[c] for f in found], float)) for c in ("ra", "dec"))
    ra0, dec0 = np.radians(ra), np.radians(dec)
    hav = (
        np.sin((dec1 - dec0) / 2) ** 2 + np.cos(dec0) * np.cos(dec1) * np.sin((ra1 - ra0) / 2) ** 2
    )
    separation = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))) * 3600
    order = [i for i in np.argsort(separation) if separation[i] <= radius_arcmin * 60]
    return [
        {"spectrum_id": int(found[i]["spectrum_id"]), "designation": found[i]["designation"] or "",
         "collection": found[i]["collection"] or "", "ra": float(found[i]["ra"]),
         "dec": float(found[i]["dec"]), "separation_arcsec": round(float(separation[i]), 2)}
        for i in order[:MAX_NEIGHBOURS]
    ]  # fmt: skip


def sky_context(
    settings: Settings, ra: float, dec: float, exclude: int | None = None
) -> dict[str, Any]:
    """What the sky panel draws at (ra, dec): the JSON of ``/sky``."""
    script = aladin_lite_file(settings)
    return {
        "ra": ra,
        "dec": dec,
        "fibre_diameter_arcsec": FIBRE_DIAMETER_ARCSEC,
        "field_arcmin": FIELD_ARCMIN,
        "survey": survey_for(settings, ra, dec),
        "aladin_lite": "sky/aladin-lite.js" if script.is_file() else None,
        "aladin_lite_version": ALADIN_LITE_VERSION,
        "neighbours": field_spectra(settings, ra, dec, FIELD_ARCMIN, exclude),
    }


def _angle(query: dict[str, str], name: str, low: float, high: float) -> float:
    try:
        value = float(query.get(name, ""))
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise AlvoError(Reason.BAD_PARAMETER, f"{name}: degrees, {low:g} to {high:g}")
    return value


class DemoSky:
    """The demo sky's HiPS files; a 404 while it is not made (StaticFiles would fail)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = StaticFiles(directory=folder, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.folder.is_dir():
            await PlainTextResponse("no demo sky here", status_code=404)(scope, receive, send)
            return
        await self.files(scope, receive, send)


def routes(settings: Settings) -> list[BaseRoute]:
    """``/sky`` (JSON, refusals as the campaign API's), ``/sky/aladin-lite.js``, ``/sky/demo``."""

    @json_errors
    async def context(request: Request) -> Response:
        query = {k.upper(): v for k, v in request.query_params.items()}
        ra = _angle(query, "RA", 0.0, 360.0)
        dec = _angle(query, "DEC", -90.0, 90.0)
        raw = query.get("ID", "")
        if raw and (not raw.isdecimal() or len(raw) > 18):
            raise AlvoError(Reason.BAD_PARAMETER, "ID: a spectrum_id")
        exclude = int(raw) if raw else None
        found = await run_in_threadpool(sky_context, settings, ra, dec, exclude)
        return JSONResponse(found, headers={"Cache-Control": "no-store"})

    async def aladin_lite(request: Request) -> Response:
        script = aladin_lite_file(settings)
        if not script.is_file():
            return PlainTextResponse(
                f"Aladin Lite {ALADIN_LITE_VERSION} is not installed here: run "
                "'make aladin-lite' (or set ALVO_ALADIN_LITE)",
                status_code=404,
            )
        return FileResponse(
            script, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    return [
        Route("/sky", context, methods=["GET"]),
        Route("/sky/aladin-lite.js", aladin_lite, methods=["GET"]),
        Mount("/sky/demo", app=DemoSky(hips_folder(settings.home)), name="sky-demo"),
    ]
