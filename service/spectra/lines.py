"""The equivalent width of H-alpha, the number astronomers read off an emission-line star.

``halpha_equivalent_width(wavelength, flux, sigma)`` on a batch of spectra that share
one vacuum wavelength grid: the continuum is the median flux of two side bands
clear of H-alpha ([N II] 6550/6585 Å stay inside the line band or outside the side
bands), the line band is H-alpha ± 15 Å (a LAMOST resolution element is ~3.6 Å,
a Be star's wings reach ~10 Å), and

    EW = ∫ (1 - F/Fc) dλ        (Å; negative for emission, positive for absorption)
    σ(EW) = sqrt(Σ (σ_i Δλ_i / Fc)²)

from the file's 1σ flux errors (the continuum's own error is left out: the side
bands hold ~10x more pixels than the line band). NaN where a band has too few
good pixels (a gap, a masked stretch) or the continuum is not positive.
"""

from __future__ import annotations

import warnings

import numpy as np

#: vacuum Å: H-alpha, its line band half-width, and the continuum side bands
HALPHA = 6564.61
LINE_HALF_WIDTH = 15.0
CONTINUUM_BANDS = ((6510.0, 6540.0), (6595.0, 6625.0))
#: fewer good pixels than this share of a band: no value
MIN_GOOD = 0.8


def halpha_equivalent_width(
    wavelength: np.ndarray, flux: np.ndarray, sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """EW(Hα) and its 1σ error, Å, for each spectrum.

    wavelength : (n,) Å, vacuum, increasing; flux, sigma : (k, n), NaN where unknown.
    Returns two (k,) float arrays (NaN where it cannot be measured).
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    k = flux.shape[0]
    side = np.zeros(wavelength.shape, dtype=bool)
    for lo, hi in CONTINUUM_BANDS:
        side |= (wavelength >= lo) & (wavelength <= hi)
    line = np.abs(wavelength - HALPHA) <= LINE_HALF_WIDTH
    nan = np.full(k, np.nan)
    if side.sum() < 3 or line.sum() < 3:
        return nan, nan.copy()
    step = np.gradient(wavelength)[line]  # Å per pixel
    good_side = np.isfinite(flux[:, side])
    good_line = np.isfinite(flux[:, line])
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands: NaN, said below
        continuum = np.nanmedian(np.where(good_side, flux[:, side], np.nan), axis=1)
        depth = 1.0 - flux[:, line] / continuum[:, None]
        ew = np.nansum(np.where(good_line, depth * step, 0.0), axis=1)
        error = np.sqrt(np.nansum((sigma[:, line] * step / continuum[:, None]) ** 2, axis=1))
    usable = (
        (good_side.mean(axis=1) >= MIN_GOOD)
        & (good_line.mean(axis=1) >= MIN_GOOD)
        & (continuum > 0)
    )
    error = np.where(np.isfinite(sigma[:, line]).any(axis=1), error, np.nan)
    return np.where(usable, ew, np.nan), np.where(usable, error, np.nan)
