"""Detector defects inside the H-alpha window: dead (flat) runs and cosmic-ray spikes.

Both fool the classifier and the oracle: a stretch of identical pixels across
H-alpha reads as a flat-topped or double-peaked line, a cosmic ray as a narrow
emission peak. They are found on the *native* pixels of the window
(:data:`~service.vocabulary.FEATURE_WINDOW`, in the spectrum's medium), for a
stack of spectra that share one wavelength grid, with array operations only:

* **dead run** -- :data:`DEAD_RUN_PIXELS` or more consecutive pixels whose flux is
  identical (a stuck or saturated read-out, a pipeline fill value, zeros) or not
  finite. Noise makes two neighbouring float32 fluxes equal with a chance of ~1e-7,
  three in a row ~1e-14, so four identical pixels are never a star. Four, not
  three: integer-valued raw CCD frames (Ondrejov ADU) repeat a neighbour's value
  with a chance of ~0.3 % per pixel at 10 000 counts, three in a row ~1e-5, which
  over the ~850 pixels of a CCD700 window would flag about 1 spectrum in 100;
  four in a row flags ~1 in 40 000. The issue's case, 30 Å at LAMOST's ~1.5 Å per
  pixel, is 20 pixels; the demo archive's dead runs are 3-25 pixels.
* **spike** -- one or two neighbouring pixels standing above the running median
  of :data:`MEDIAN_PIXELS` pixels by more than :data:`SPIKE_SIGMA` times the noise
  and by more than :data:`SPIKE_CONTRAST` of the flux there (a smaller bump could
  not pass for an emission line), whose outer neighbours stay below
  :data:`SPIKE_ISOLATION` of the spike's height. The noise is DER_SNR's robust
  estimate from second differences two pixels apart (a line or a spike barely
  moves it; resampled, correlated pixels do not fool it). A real line is at least
  as wide as the instrument's profile, 2-2.5 pixels FWHM for both LAMOST (R 1800)
  and CCD700 (R 13 000): the pixels beside its top 1-2 pixels keep >= 34 % (LAMOST)
  or >= 21 % (CCD700) of its height, while a cosmic ray's neighbours are at the
  noise. Pixels the pipeline masked already are not spikes (adaptation skips them).

What ingest does with them (:mod:`service.jobs.ingest`): a dead run wider than
the gap adaptation bridges (``AdaptConfig.max_gap_angstrom``) is refused as
``DEAD_PIXELS`` (a gap of NaN pixels that wide is refused as ``TOO_MANY_MASKED``,
so a stuck read-out is treated no better than a missing one); a shorter one and a
spike are masked (adaptation interpolates over them) and the spectrum is kept,
flagged in ``spectrum.quality_flag``. The page shades the runs and marks the
spikes from the same function.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import numpy as np
from scipy.ndimage import median_filter

from service.reasons import Reason, SpectrumError
from service.spectra.checks import window_in_medium
from service.spectra.spectrum import Medium
from service.vocabulary import FEATURE_WINDOW

#: A run of at least this many identical or non-finite pixels is dead (see above).
DEAD_RUN_PIXELS: Final = 4
#: Height above the running median, in robust noise units, a spike must exceed.
SPIKE_SIGMA: Final = 8.0
#: Pixels this far above a neighbour two pixels away make a spectrum worth the median.
PRESCREEN_SIGMA: Final = 5.0
#: ... and above this share of the local flux: a spike that could pass for a line.
SPIKE_CONTRAST: Final = 0.1
#: A spike's outer neighbours stay below this share of its height (a line's do not).
SPIKE_ISOLATION: Final = 0.2
#: Pixels of the running median the spikes stand out of (odd; a few line widths).
MEDIAN_PIXELS: Final = 15

#: ``spectrum.quality_flag`` words, joined by "," when both apply.
DEAD_RUN: Final = "dead-run"
COSMIC_RAY: Final = "cosmic-ray"
QUALITY_FLAGS: Final[tuple[str, ...]] = (DEAD_RUN, COSMIC_RAY)


@dataclasses.dataclass(frozen=True)
class PixelDefects:
    """Defective pixels of a stack of spectra.

    dead : (k, p) bool, pixels in a dead run of >= :data:`DEAD_RUN_PIXELS`
    stuck : (k, p) bool, the dead pixels whose flux is finite and non-zero (a flat
        run adaptation would otherwise take for data; NaN and zeros it skips itself)
    spikes : (k, p) bool, pixels of a cosmic-ray spike
    """

    dead: np.ndarray
    stuck: np.ndarray
    spikes: np.ndarray

    @property
    def flags(self) -> list[str]:
        """Per spectrum, the ``quality_flag`` value: '' (clean), or the words that apply."""
        dead, spiky = self.dead.any(axis=1), self.spikes.any(axis=1)
        words = np.where(dead, DEAD_RUN, "")
        both = np.where(dead & spiky, DEAD_RUN + "," + COSMIC_RAY, np.where(spiky, COSMIC_RAY, ""))
        return [str(b or w) for w, b in zip(words.tolist(), both.tolist(), strict=True)]

    def widest_stuck(self, wavelength: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per spectrum, the widest stuck run: (width Å, first λ, last λ); 0, NaN, NaN if none.

        wavelength : (p,) Å. Width is from the first to the last pixel of the run
        plus one pixel, the stretch the data are missing from.
        """
        return _widest_run(np.asarray(wavelength, dtype=np.float64), self.stuck)


@dataclasses.dataclass(frozen=True)
class Screened:
    """What ingest does with a stack's defects (:func:`screen`).

    mask : (k, p) bool, the given mask plus the dead and spike pixels of the window
    flags : per spectrum, its ``quality_flag`` ('' when clean)
    refused : {row: DEAD_PIXELS error} for dead runs too wide to bridge
    """

    mask: np.ndarray
    flags: list[str]
    refused: dict[int, SpectrumError]


def screen(
    wavelength: np.ndarray,
    flux: np.ndarray,
    mask: np.ndarray,
    medium: Medium,
    max_gap: float,
    window: tuple[float, float] = FEATURE_WINDOW,
) -> Screened:
    """Find the defects of spectra on one grid inside ``window`` (vacuum Å) and decide.

    wavelength : (p,) Å in ``medium``; flux, mask : (k, p). A stuck run wider than
    ``max_gap`` Å (the widest gap adaptation interpolates over) refuses its
    spectrum with ``DEAD_PIXELS``; every dead or spike pixel is added to the mask,
    so adaptation interpolates over it, and named in the spectrum's flag.
    """
    wavelength = np.asarray(wavelength, dtype=np.float64)
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    mask = np.asarray(mask, dtype=bool).reshape(flux.shape)
    lo, hi = window_in_medium(window, medium)
    cols = (wavelength >= lo) & (wavelength <= hi)
    defects = find_defects(flux[:, cols], mask[:, cols])
    width, first, last = defects.widest_stuck(wavelength[cols])
    refused = {
        int(i): SpectrumError(
            Reason.DEAD_PIXELS,
            f"identical flux over {first[i]:.1f}-{last[i]:.1f} Å ({medium}), a {width[i]:.1f} Å "
            f"dead stretch; adaptation bridges at most {max_gap:g} Å",
        )
        for i in np.flatnonzero(width > max_gap)
    }
    marked = mask.copy()
    marked[:, cols] |= defects.dead | defects.spikes
    return Screened(marked, defects.flags, refused)


def find_defects(flux: np.ndarray, masked: np.ndarray | None = None) -> PixelDefects:
    """Dead runs and spikes of ``flux`` (k, p) on one grid (see the module's docstring).

    masked : (k, p) bool, pixels the pipeline already flagged (never spikes).
    No loop over pixels or spectra: run lengths by cumulative sums, the running
    median by scipy.ndimage's median filter along each row.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    k, p = flux.shape
    masked = np.zeros((k, p), bool) if masked is None else np.asarray(masked, bool).reshape(k, p)
    finite = np.isfinite(flux)
    if p == 0:
        empty = np.zeros((k, 0), bool)
        return PixelDefects(empty, empty, empty)
    dead = _long_runs(flux, finite)
    stuck = dead & finite & (flux != 0.0)
    model = _noise_free(flux, finite)[:, None]  # a model's flat continuum is not stuck
    dead &= ~(model & stuck)
    stuck &= ~model
    spikes = _spikes(flux, finite, masked | dead)
    return PixelDefects(dead, stuck, spikes)


def _noise_free(flux: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """(k,) bool: rows with no noise at all but not constant -- a model or template
    spectrum (a theory service's, a test's), whose flat continuum repeats one value
    by construction. Its identical runs say nothing of a detector; an observed
    spectrum always has noise, so this never excuses a stuck stretch in one (and a
    wholly constant row, which is dead through and through, stays dead)."""
    with np.errstate(invalid="ignore"):
        low = np.where(finite, flux, np.inf).min(axis=1)
        high = np.where(finite, flux, -np.inf).max(axis=1)
        second = np.abs(2.0 * flux[:, 1:-1] - flux[:, :-2] - flux[:, 2:])
        usable = finite[:, 1:-1] & finite[:, :-2] & finite[:, 2:]
        noisy = (usable & (second > 0)).sum(axis=1)
    # noise moves (nearly) every second difference; a model moves only its lines'
    return (high > low) & (noisy < 0.5 * usable.sum(axis=1))


def _long_runs(flux: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Pixels in runs of >= DEAD_RUN_PIXELS identical (or all non-finite) values."""
    k, p = flux.shape
    with np.errstate(invalid="ignore"):
        same = (flux[:, 1:] == flux[:, :-1]) | (~finite[:, 1:] & ~finite[:, :-1])
    starts = np.ones((k, p), dtype=bool)
    starts[:, 1:] = ~same
    run_id = np.cumsum(starts, axis=1) + (np.arange(k) * p)[:, None]  # unique over the stack
    length = np.bincount(run_id.ravel(), minlength=k * p + p + 1)[run_id]
    return length >= DEAD_RUN_PIXELS


def _spikes(flux: np.ndarray, finite: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """Pixels of isolated 1-2 pixel spikes far above the running median.

    The running median (the costly part) is taken only for the spectra with a pixel
    :data:`PRESCREEN_SIGMA` noise units above the lower of its neighbours two pixels
    away (a spike 8 sigma above the median is there; pure noise passes ~6 % of
    LAMOST windows): ingest does this for every spectrum of an archive.
    """
    k, p = flux.shape
    spikes = np.zeros((k, p), dtype=bool)
    if p < MEDIAN_PIXELS:
        return spikes
    usable = finite & ~skip
    with np.errstate(all="ignore"):
        # each row's (lower) median of its usable pixels: sorted, NaN last (no np.ma)
        ordered = np.sort(np.where(usable, flux, np.nan), axis=1)
        middle = np.maximum(usable.sum(axis=1) - 1, 0) // 2
        level = ordered[np.arange(k), middle][:, None]
        filled = np.where(usable, flux, np.where(np.isfinite(level), level, 0.0))
        # DER_SNR's noise (Stoehr et al. 2008): right for resampled, correlated pixels too
        second = np.abs(2.0 * filled[:, 2:-2] - filled[:, :-4] - filled[:, 4:])
        noise = 0.6052697 * np.median(second, axis=1, keepdims=True)
        edged = np.pad(filled, ((0, 0), (2, 2)), mode="edge")
        rise = filled - np.minimum(edged[:, :p], edged[:, 4:])
    rows = np.flatnonzero((usable & (rise > PRESCREEN_SIGMA * noise) & (noise > 0)).any(axis=1))
    if not rows.size:
        return spikes
    filled, usable, noise = filled[rows], usable[rows], noise[rows]
    running = median_filter(filled, size=(1, MEDIAN_PIXELS), mode="nearest")
    height = filled - running
    high = usable & (height > SPIKE_SIGMA * noise) & (height > SPIKE_CONTRAST * np.abs(running))
    h = np.pad(np.where(usable, height, 0.0), ((0, 0), (1, 2)))  # zero beyond each end
    before, here, after, beyond = h[:, :p], h[:, 1 : p + 1], h[:, 2 : p + 2], h[:, 3 : p + 3]
    low = SPIKE_ISOLATION
    single = high & (np.maximum(before, after) < low * here)
    # a pair (this pixel and the next): both well up, the pixels around them low
    top = np.maximum(here, after)
    hi_next = np.pad(high, ((0, 0), (0, 1)))[:, 1:]
    pair = (
        (high | hi_next)
        & (np.minimum(here, after) >= low * top)
        & (np.maximum(before, beyond) < low * top)
    )
    pair[:, -1] = False
    found = single | pair
    found[:, 1:] |= pair[:, :-1]  # the pair's second pixel
    spikes[rows] = found
    return spikes


def _widest_run(
    wavelength: np.ndarray, run: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k, p = run.shape
    size = k * (p + 1)  # run ids: 1..p per row, 0 = outside every run, offset per row
    step = np.broadcast_to(np.gradient(wavelength) if p > 1 else np.ones(p), (k, p))
    starts = run & ~np.pad(run, ((0, 0), (1, 0)))[:, :p]
    ids = (np.where(run, np.cumsum(starts, axis=1), 0) + (np.arange(k) * (p + 1))[:, None])[run]
    lam = np.broadcast_to(wavelength, (k, p))[run]
    width = np.bincount(ids, weights=step[run], minlength=size)
    first, last = np.full(size, np.inf), np.full(size, -np.inf)
    np.minimum.at(first, ids, lam)
    np.maximum.at(last, ids, lam)
    per_row = width.reshape(k, p + 1)
    best = np.argmax(per_row, axis=1) + np.arange(k) * (p + 1)
    widest = width[best]
    return (
        widest,
        np.where(widest > 0, first[best], np.nan),
        np.where(widest > 0, last[best], np.nan),
    )
