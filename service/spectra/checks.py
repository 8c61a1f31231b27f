"""Checks every reader applies, and the H-alpha coverage test consumers apply.

Reading and usability are kept apart on purpose: a spectrum that misses the
H-alpha window is still a valid spectrum (a user may want to look at it), so
:func:`~service.spectra.read_spectrum` returns it and
:func:`check_halpha_coverage` is what the classifier's consumers call to get the
named ``NO_HALPHA_COVERAGE`` refusal.
"""

from __future__ import annotations

import numpy as np

from service.reasons import Reason, SpectrumError
from service.spectra.spectrum import Medium, Spectrum
from service.vocabulary import FEATURE_WINDOW

#: Refractive index of air around H-alpha (IAU standard air, 6563 Å), good to
#: 1e-7 over the window: enough to place a window edge to 1 mÅ without importing
#: the adaptation module.
AIR_INDEX_HALPHA = 1.000276


def window_in_medium(window: tuple[float, float], medium: Medium) -> tuple[float, float]:
    """A vacuum window (Å) expressed in ``medium``."""
    if medium == "air":
        return window[0] / AIR_INDEX_HALPHA, window[1] / AIR_INDEX_HALPHA
    return window


def check_halpha_coverage(
    spectrum: Spectrum, window: tuple[float, float] = FEATURE_WINDOW
) -> Spectrum:
    """Return ``spectrum`` if its good pixels span ``window`` (vacuum Å), else raise.

    Raises ``SpectrumError(NO_HALPHA_COVERAGE)``: the wavelength axis, or the
    stretch of usable (unmasked, finite) pixels, starts after or ends before the
    window once converted to the spectrum's medium.
    """
    lo, hi = window_in_medium(window, spectrum.medium)
    good = spectrum.good
    if not good.any():
        raise SpectrumError(Reason.NO_HALPHA_COVERAGE, "no usable pixels at all")
    lam = spectrum.wavelength[good]
    if lam[0] > lo or lam[-1] < hi:
        raise SpectrumError(
            Reason.NO_HALPHA_COVERAGE,
            f"usable pixels span {lam[0]:.1f}-{lam[-1]:.1f} Å ({spectrum.medium}), "
            f"the window needs {lo:.1f}-{hi:.1f} Å",
        )
    return spectrum


def validate(spectrum: Spectrum) -> Spectrum:
    """The checks every reader ends with; returns the spectrum, sorted by wavelength.

    * shapes agree and there are at least 2 pixels (``WRONG_HDU_LAYOUT``);
    * the wavelength axis is finite and strictly monotonic; a decreasing axis is
      reversed (``BAD_WAVELENGTH`` otherwise);
    * some flux is finite and non-zero (``BAD_FLUX``).
    Non-finite flux pixels are added to the mask.
    """
    lam, flux = spectrum.wavelength, spectrum.flux
    assert spectrum.ivar is not None and spectrum.mask is not None
    if lam.ndim != 1 or lam.shape != flux.shape or lam.shape[0] < 2:
        raise SpectrumError(
            Reason.WRONG_HDU_LAYOUT,
            f"wavelength {lam.shape} and flux {flux.shape} must be equal 1-D arrays",
        )
    if not np.isfinite(lam).all():
        raise SpectrumError(Reason.BAD_WAVELENGTH, "wavelength has NaN or infinite values")
    step = np.diff(lam)
    if (step < 0).all():
        for name in ("wavelength", "flux", "ivar", "mask"):
            setattr(spectrum, name, getattr(spectrum, name)[::-1].copy())
    elif not (step > 0).all():
        bad = int(np.argmax(step <= 0))
        raise SpectrumError(
            Reason.BAD_WAVELENGTH,
            f"wavelength not strictly monotonic at pixel {bad} ({lam[bad]:.3f} Å)",
        )
    finite = np.isfinite(spectrum.flux)
    if not (finite & (spectrum.flux != 0)).any():
        what = "all zero" if finite.all() else "NaN or zero everywhere"
        raise SpectrumError(Reason.BAD_FLUX, f"flux is {what}")
    spectrum.mask = spectrum.mask | ~finite
    return spectrum


def der_snr(flux: np.ndarray) -> float:
    """Signal-to-noise ratio estimated from the flux alone (DER_SNR, Stoehr et al. 2008).

    median(flux) / (1.482602 / sqrt(6) * median |2 f_i - f_(i-2) - f_(i+2)|) over
    the finite pixels: unbiased for white noise on a smooth continuum, which is what
    an archive without an SNR keyword (Ondrejov) leaves us.
    """
    f = np.asarray(flux, dtype=np.float64)
    f = f[np.isfinite(f)]
    if f.shape[0] < 5:
        return float("nan")
    noise = 0.6052697 * np.median(np.abs(2.0 * f[2:-2] - f[:-4] - f[4:]))
    signal = float(np.median(f))
    return float(signal / noise) if noise > 0 else float("nan")
