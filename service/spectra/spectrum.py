"""The one in-memory spectrum type every reader returns and every consumer takes."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

Medium = Literal["air", "vacuum"]


@dataclasses.dataclass
class SpectrumMeta:
    """What a VO user wants to know about a spectrum besides its pixels.

    ``pubdid`` is the IVOA publisher DID when the archive has one
    (``ivo://...?...``); ``obsid`` the archive's own identifier (LAMOST OBSID,
    Ondrejov file name). Angles in degrees (ICRS), ``mjd`` mid-exposure.
    """

    pubdid: str = ""
    obsid: str = ""
    designation: str = ""
    object: str = ""
    ra: float = float("nan")
    dec: float = float("nan")
    mjd: float = float("nan")
    snr: float = float("nan")
    pipeline_class: str = ""
    collection: str = ""  # "lamost", "ondrejov", or the SSA service's collection
    instrument: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Spectrum:
    """A 1-D spectrum.

    wavelength : (n,) float64, Å, in ``medium`` (air or vacuum), increasing
    flux : (n,) float64, arbitrary units (ADU, or 1e-17 erg/s/cm²/Å for LAMOST)
    ivar : (n,) float64 inverse variance of flux; 0 where unknown or bad
    mask : (n,) bool, True where a pixel must not be used (pipeline masks, NaN)
    resolving_power : λ/Δλ (FWHM) of the instrument
    """

    wavelength: np.ndarray
    flux: np.ndarray
    medium: Medium
    resolving_power: float
    ivar: np.ndarray | None = None
    mask: np.ndarray | None = None
    meta: SpectrumMeta = dataclasses.field(default_factory=SpectrumMeta)

    def __post_init__(self) -> None:
        self.wavelength = np.asarray(self.wavelength, dtype=np.float64)
        self.flux = np.asarray(self.flux, dtype=np.float64)
        n = self.wavelength.shape[0]
        if self.ivar is None:
            self.ivar = np.zeros(n)
        if self.mask is None:
            self.mask = ~np.isfinite(self.flux)
        self.ivar = np.asarray(self.ivar, dtype=np.float64)
        self.mask = np.asarray(self.mask, dtype=bool)

    @property
    def good(self) -> np.ndarray:
        """Pixels usable for science: unmasked with finite flux."""
        assert self.mask is not None
        return ~self.mask & np.isfinite(self.flux)

    def covers(self, start: float, stop: float) -> bool:
        """True if the wavelength axis spans [start, stop] Å (in this spectrum's medium)."""
        return bool(self.wavelength[0] <= start and self.wavelength[-1] >= stop)
