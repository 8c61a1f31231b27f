"""A tiny two-collection archive for the SSA/DataLink tests.

Same layout and catalogue columns as ``service.archive`` writes
(``home/archive/{collection}/catalogue.fits`` plus FITS files), in the real
formats: Ondrejov CCD700 DataLink BINTABLE (air Angstrom) and LAMOST DR2
5-row primary image (vacuum, log10 grid). Spectra are a continuum with an
H-alpha line (emission or absorption) so plots and cutouts have something to show.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

HALPHA_AIR = 6562.8
HALPHA_VAC = 6564.6


def _line(wavelength: np.ndarray, centre: float, depth: float, sigma: float) -> np.ndarray:
    return 1.0 + depth * np.exp(-0.5 * ((wavelength - centre) / sigma) ** 2)


def write_ondrejov(path: Path, pubdid: str, name: str, ra: float, dec: float, depth: float) -> int:
    wavelength = 6250.0 + 0.2567 * np.arange(2000)
    flux = _line(wavelength, HALPHA_AIR, depth, 1.5)
    columns = [
        fits.Column(name="spectral", format="D", unit="Angstrom", array=wavelength),
        fits.Column(name="flux", format="D", array=flux),
    ]
    table = fits.BinTableHDU.from_columns(columns)
    header = table.header
    header["TUTYP1"] = "spec:spectrum.data.spectralaxis.value"
    header["TUTYP2"] = "spec:spectrum.data.fluxaxis.value"
    header["TITLE"] = f"ccd700/data/{path.stem}.fit"  # as the Ondrejov DataLink files
    header["DS_IDPUB"] = pubdid
    header["TMID"] = 56000.0
    header["OBJECT"] = name
    header["RA"] = ra
    header["DEC"] = dec
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
    return wavelength.size


def write_lamost(path: Path, desig: str, ra: float, dec: float, depth: float) -> int:
    coeff0, coeff1, n = 3.5682, 1e-4, 3909
    wavelength = 10 ** (coeff0 + coeff1 * np.arange(n))
    flux = 100.0 * _line(wavelength, HALPHA_VAC, depth, 4.0)
    data = np.vstack([flux, np.full(n, 0.01), wavelength, np.zeros(n), np.zeros(n)])
    hdu = fits.PrimaryHDU(data.astype(np.float32))
    hdu.header.update(
        {
            "COEFF0": coeff0,
            "COEFF1": coeff1,
            "DESIG": desig,
            "RA": ra,
            "DEC": dec,
            "CLASS": "STAR",
            "SUBCLASS": "B9",
            "OBSID": 1,
            "MJD": 56000,
        }
    )
    hdu.writeto(path, overwrite=True)
    return n


def make_archive(home: Path, n: int = 6) -> dict[str, Table]:
    """Write ``n`` spectra per collection under ``home/archive``; return the catalogues."""
    catalogues = {}
    for collection in ("ondrejov", "lamost"):
        root = home / "archive" / collection
        (root / "spectra").mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            ra, dec = 10.0 + 0.01 * i, 60.0 - 0.01 * i
            depth = 2.0 if i % 2 == 0 else -0.5  # even rows: emission
            obsid = f"{collection[:2]}{i:06d}"
            pubdid = f"ivo://alvo.demo/{collection}?{obsid}"
            name = f"HD {1000 + i}"
            relative = f"spectra/{obsid}.fits"
            if collection == "ondrejov":
                length = write_ondrejov(root / relative, pubdid, name, ra, dec, depth)
                start, end = 6250e-10, (6250.0 + 0.2567 * (length - 1)) * 1e-10
            else:
                length = write_lamost(root / relative, f"J{i:04d}", ra, dec, depth)
                start, end = 10**3.5682 * 1e-10, 10 ** (3.5682 + 1e-4 * (length - 1)) * 1e-10
            rows.append(
                dict(
                    pubdid=pubdid,
                    obsid=obsid,
                    designation=f"J{i:04d}",
                    object=name,
                    ra=ra,
                    dec=dec,
                    mjd=56000.0 + 10 * i,
                    snr=20.0 + i,
                    pipeline_class="STAR" if collection == "lamost" else "",
                    label="emission" if depth > 0 else "absorption",
                    spec_start=start,
                    spec_end=end,
                    file=relative,
                    format="application/fits",
                    size=(root / relative).stat().st_size,
                    magnitude=8.0 + 0.5 * i,
                )
            )
        table = Table(rows=rows)
        table.write(root / "catalogue.fits", overwrite=True)
        catalogues[collection] = table
    return catalogues


@contextlib.contextmanager
def live_server(app: Any, port: int, lifespan: str = "off") -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1:``port``; yield its base URL.

    For clients that speak HTTP themselves (pyvo, STILTS): the TestClient is
    not reachable from them. Build the app with ``Settings(port=port)`` so
    the URLs in its documents point here (:func:`free_port`). ``lifespan="on"``
    also starts the app's job service (UWS executor and sweeper).
    """
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class ServedArchive:
    """A fixture archive under ``home`` and the ways tests talk to its service."""

    home: Path
    catalogues: dict[str, Table]

    def app(self, port: int = 8000) -> Any:
        """Only the SSA and DataLink routes (create_app's wiring is tested in test_ssa)."""
        from starlette.applications import Starlette

        from service.settings import Settings
        from service.vo import datalink, ssa

        settings = Settings(home=self.home, port=port, demo_archive_size=0)
        return Starlette(routes=ssa.routes(settings) + datalink.routes(settings))

    @functools.cached_property
    def client(self) -> Any:
        from starlette.testclient import TestClient

        return TestClient(self.app())

    @contextlib.contextmanager
    def live(self) -> Iterator[str]:
        """A real HTTP server for this archive (for pyvo, STILTS); yields its base URL."""
        port = free_port()
        with live_server(self.app(port), port) as url:
            yield url


def served_archive(tmp_path_factory: Any, n: int = 6) -> ServedArchive:
    home = tmp_path_factory.mktemp("archive-home")
    return ServedArchive(home, make_archive(home, n=n))


def catalogue_real_files(home: Path, files: dict[str, list[Path]]) -> dict[str, Table]:
    """Copy real spectra under ``home/archive`` and catalogue them from their headers.

    Handles the three layouts of ``../shared/data/real``: Ondrejov DataLink
    BINTABLE, Ondrejov raw 1-D image (sexagesimal RA/DEC) and LAMOST DR2.
    """
    from astropy.coordinates import Angle

    catalogues = {}
    for collection, paths in files.items():
        root = home / "archive" / collection
        (root / "spectra").mkdir(parents=True, exist_ok=True)
        rows = []
        for path in paths:
            target = root / "spectra" / path.name
            target.write_bytes(path.read_bytes())
            with fits.open(target) as hdus:
                if len(hdus) > 1:  # Ondrejov DataLink BINTABLE
                    header, spectral = hdus[1].header, hdus[1].data["spectral"]
                    ra, dec, mjd = header["RA"], header["DEC"], header["TMID"]
                elif "COEFF0" in hdus[0].header:  # LAMOST
                    header = hdus[0].header
                    n = header["NAXIS1"]
                    spectral = 10 ** (header["COEFF0"] + header["COEFF1"] * np.arange(n))
                    ra, dec, mjd = header["RA"], header["DEC"], header["MJD"]
                else:  # Ondrejov raw image
                    header = hdus[0].header
                    spectral = header["CRVAL1"] + header["CDELT1"] * np.arange(header["NAXIS1"])
                    ra = Angle(header["RA"], unit="hourangle").deg
                    dec = Angle(header["DEC"], unit="deg").deg
                    mjd = 53517.0  # DATE-OBS 2005-05-27
            obsid = path.stem
            rows.append(
                dict(
                    pubdid=f"ivo://alvo.demo/{collection}?{obsid}", obsid=obsid,
                    designation=str(header.get("DESIG", "")), object=str(header.get("OBJECT", "")),
                    ra=float(ra), dec=float(dec), mjd=float(mjd), snr=float(header.get("SN_R", 0)),
                    pipeline_class=str(header.get("CLASS", "")), label="",
                    spec_start=float(np.min(spectral)) * 1e-10,
                    spec_end=float(np.max(spectral)) * 1e-10,
                    file=f"spectra/{path.name}", format="application/fits",
                    size=target.stat().st_size, magnitude=np.nan,
                )
            )  # fmt: skip
        table = Table(rows=rows)
        table.write(root / "catalogue.fits", overwrite=True)
        catalogues[collection] = table
    return catalogues
