"""The two simulated instruments: pixel grids, resolving power, wavelength medium.

Both grids are fixed per collection (one grid for every spectrum of it), so a
block of spectra is one (n_spectra, n_pixels) array.

* Ondrejov CCD700 (source domain): linear grid of 0.2567 Å/px in **air**, 1997
  pixels from 6265.0 Å (as the raw frame ``oe270005.fits``), R ≈ 13 000.
* LAMOST DR2 (target domain): log-linear **vacuum** grid
  ``10**(COEFF0 + COEFF1 * i)`` Å, COEFF0 = 3.5682, COEFF1 = 1e-4, 3909 pixels
  (3700-9099 Å, as the DR2 files of pipeline 2.7.5), R ≈ 1800.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from service.reasons import AlvoError, Reason

Collection = Literal["ondrejov", "lamost"]
COLLECTIONS: tuple[str, ...] = ("ondrejov", "lamost")

ONDREJOV_CRVAL1 = 6265.01713266358  # Å (air), first pixel of the real raw frame
ONDREJOV_CDELT1 = 0.25670607904715  # Å per pixel (SITe CCD)
ONDREJOV_NPIX = 1997
LAMOST_COEFF0 = 3.5682  # log10 Å of the first pixel
LAMOST_COEFF1 = 1e-4  # log10 Å per pixel
LAMOST_NPIX = 3909


@dataclasses.dataclass(frozen=True)
class Instrument:
    """What the simulator needs to know of one spectrograph.

    medium : "air" or "vacuum" — the medium of ``wavelength`` and of the files
    resolving_power : λ / FWHM of the line-spread function
    """

    collection: str
    medium: Literal["air", "vacuum"]
    resolving_power: float
    wavelength: np.ndarray  # (p,) Å in ``medium``

    @property
    def n_pixels(self) -> int:
        return int(self.wavelength.shape[0])

    def sigma_instrument(self, wavelength: np.ndarray | float) -> np.ndarray:
        """Gaussian σ (Å) of the line-spread function at ``wavelength`` (Å)."""
        return np.asarray(wavelength, dtype=np.float64) / (2.3548 * self.resolving_power)


def ondrejov_wavelength() -> np.ndarray:
    """(1997,) air Å: CRVAL1 + CDELT1 * i."""
    return ONDREJOV_CRVAL1 + ONDREJOV_CDELT1 * np.arange(ONDREJOV_NPIX)


def lamost_wavelength() -> np.ndarray:
    """(3909,) vacuum Å: 10 ** (COEFF0 + COEFF1 * i)."""
    return np.power(10.0, LAMOST_COEFF0 + LAMOST_COEFF1 * np.arange(LAMOST_NPIX))


def instrument(collection: str) -> Instrument:
    """The instrument of ``collection`` ("ondrejov" or "lamost")."""
    if collection == "ondrejov":
        return Instrument("ondrejov", "air", 13000.0, ondrejov_wavelength())
    if collection == "lamost":
        return Instrument("lamost", "vacuum", 1800.0, lamost_wavelength())
    raise AlvoError(
        Reason.UNKNOWN_COLLECTION, f"no collection {collection!r}; known: {COLLECTIONS}"
    )
