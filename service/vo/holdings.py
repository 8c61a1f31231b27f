"""What the embedded archive holds: its collections and their catalogues.

The SSA and DataLink endpoints serve the same catalogue (written by
:mod:`service.archive` under ``$ALVO_HOME/archive/{collection}/catalogue.fits``).
This module loads it once per change of the file into plain numpy arrays, with
the look-ups both protocols need (by publisher DID, by file) and unit vectors
for cone searches, and knows the per-collection constants that a VO client
expects in the response metadata (instrument, resolving power, wavelength
medium).

Catalogue columns: pubdid, obsid, designation, object, ra, dec (deg, ICRS), mjd
(d), snr, pipeline_class, label, spec_start, spec_end (m), file (path relative
to the collection folder), format (MIME), size (bytes), magnitude.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.archive.catalogue import catalogue_path, load_catalogue
from service.archive.generate import ensure_demo_archive
from service.reasons import Reason
from service.vo import dali, vosi
from service.vo.dali import DaliError

LOG = logging.getLogger(__name__)
#: One demo-archive generation at a time in this process, whichever endpoint asks first.
_GENERATION_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class CollectionInfo:
    """Constants of one collection, as SSA reports them (ssa:DataID.*, ssa:Char.*)."""

    name: str
    title: str
    instrument: str
    resolving_power: float  # lambda / delta-lambda (FWHM)
    medium: str  # wavelengths in the files: "air" or "vacuum"
    data_source: str  # ssa:DataID.DataSource: "survey" or "pointed"
    flux_calibration: str  # ssa:Char.FluxAxis.Calibration
    flux_unit: str  # VOUnit of the flux in the files; "" when arbitrary


COLLECTIONS: dict[str, CollectionInfo] = {
    "ondrejov": CollectionInfo(
        name="ondrejov",
        title="Ondrejov 2 m Perek telescope, CCD700 spectra around H-alpha (simulated)",
        instrument="Ondrejov 2m Perek telescope, CCD700 spectrograph",
        resolving_power=13000.0,
        medium="air",
        data_source="pointed",
        flux_calibration="RELATIVE",
        flux_unit="",
    ),
    "lamost": CollectionInfo(
        name="lamost",
        title="LAMOST DR2 low-resolution spectra (simulated)",
        instrument="LAMOST low-resolution spectrographs",
        resolving_power=1800.0,
        medium="vacuum",
        data_source="survey",
        flux_calibration="RELATIVE",
        flux_unit="",
    ),
}


class Catalogue:
    """One collection's catalogue as numpy arrays, with its look-ups.

    ``columns[name]`` is an (n,) array; strings are numpy ``str`` arrays.
    ``xyz`` is (n, 3): unit vectors of (ra, dec) for vectorised cone searches.
    """

    def __init__(self, info: CollectionInfo, root: Path, columns: dict[str, np.ndarray]) -> None:
        self.info = info
        self.root = root
        self.columns = columns
        self.size = len(columns["pubdid"])
        self.xyz = unit_vectors(columns["ra"], columns["dec"])
        self._by_pubdid = {str(p): i for i, p in enumerate(columns["pubdid"])}
        self._by_file = {str(f): i for i, f in enumerate(columns["file"])}

    @functools.cached_property
    def normalised_objects(self) -> np.ndarray:
        """Target names without spaces, lower case: what TARGETNAME is compared with."""
        names = np.char.lower(self.columns["object"].astype(str))
        return np.char.replace(names, " ", "")

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def index_of(self, pubdid: str) -> int | None:
        return self._by_pubdid.get(pubdid)

    def index_of_file(self, relative_path: str) -> int | None:
        return self._by_file.get(relative_path)

    def path_of(self, index: int) -> Path:
        """The absolute path of a catalogued file (only catalogued files are ever served)."""
        return self.root / str(self.columns["file"][index])


def normalise_name(name: str) -> str:
    return "".join(name.split()).lower()


def unit_vectors(ra_deg: Any, dec_deg: Any) -> np.ndarray:
    """(n, 3) unit vectors for ICRS (ra, dec) in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


class Holdings:
    """The collections under ``home/archive``, loaded lazily and reloaded when rewritten.

    ``demo_size`` > 0 makes the first request generate the demo archive (with
    :func:`service.archive.catalogue.ensure_demo_archive`, ``demo_size``
    spectra per collection) when its catalogue is missing.
    """

    def __init__(self, home: Path, demo_size: int = 0) -> None:
        self.home = Path(home)
        self.archive = self.home / "archive"
        self.demo_size = demo_size
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Catalogue]] = {}

    def info(self, collection: str) -> CollectionInfo:
        try:
            return COLLECTIONS[collection]
        except KeyError:
            known = ", ".join(sorted(COLLECTIONS))
            raise DaliError(
                Reason.UNKNOWN_COLLECTION, f"no collection {collection!r}; known: {known}", 404
            ) from None

    def catalogue(self, collection: str) -> Catalogue:
        """The current catalogue (blocking: call it from a worker thread)."""
        info = self.info(collection)
        path = catalogue_path(self.home, collection)
        with self._lock:
            if not path.exists() and self.demo_size > 0:
                self._ensure_demo_archive(path)
            if not path.exists():
                raise DaliError(
                    Reason.UNKNOWN_COLLECTION,
                    f"collection {collection!r} has no catalogue yet ({path} is missing; "
                    "run 'alvo archive generate')",
                    404,
                )
            stamp = path.stat().st_mtime
            cached = self._cache.get(collection)
            if cached is None or cached[0] != stamp:
                cached = (stamp, Catalogue(info, path.parent, read_columns(self.home, collection)))
                self._cache[collection] = cached
            return cached[1]

    def _ensure_demo_archive(self, path: Path) -> None:
        with _GENERATION_LOCK:
            if path.exists():  # made while this thread waited
                return
            LOG.info("generating the demo archive (%d spectra per collection)", self.demo_size)
            ensure_demo_archive(self.home, self.demo_size)


def read_columns(home: Path, collection: str) -> dict[str, np.ndarray]:
    """The catalogue's columns (``service.archive.catalogue.load_catalogue``) as numpy arrays."""
    table = load_catalogue(home, collection)
    columns: dict[str, np.ndarray] = {}
    for name in table.colnames:
        values = np.asarray(table[name])
        if values.dtype.kind in ("S", "O"):
            values = values.astype(str)
        columns[name] = values
    return columns


def collection_vosi_routes(
    protocol: str, holdings: Holdings, base_url: str, services: list[tuple[str, str]]
) -> list[BaseRoute]:
    """VOSI availability and capabilities below ``/{protocol}/{collection}``.

    ``services``: (standardID, path below ``/{protocol}/{collection}``, "" for
    the base itself) of the protocol's own capabilities.
    """

    @dali.endpoint
    async def availability(request: Request) -> Response:
        holdings.info(request.path_params["collection"])
        return Response(vosi.availability_document(), media_type=vosi.XML_MEDIA_TYPE)

    @dali.endpoint
    async def capabilities(request: Request) -> Response:
        collection = request.path_params["collection"]
        holdings.info(collection)
        base = f"{protocol}/{collection}"
        listed = [(sid, f"{base}/{path}".rstrip("/")) for sid, path in services]
        listed += [
            ("ivo://ivoa.net/std/VOSI#availability", f"{base}/availability"),
            ("ivo://ivoa.net/std/VOSI#capabilities", f"{base}/capabilities"),
        ]
        document = vosi.capabilities_document(base_url, listed)
        return Response(document, media_type=vosi.XML_MEDIA_TYPE)

    return [
        Route(f"/{protocol}/{{collection}}/availability", availability, methods=["GET"]),
        Route(f"/{protocol}/{{collection}}/capabilities", capabilities, methods=["GET"]),
    ]
