"""Domain adaptation: make spectra of any archive look like LAMOST around H-alpha.

The classifier is trained on Ondrejov CCD700 spectra (air wavelengths, R ~ 13 000,
linear grid) and applied to LAMOST (vacuum, R ~ 1800, log-linear grid), so every
spectrum is brought into one feature space before it meets the network:

1. air -> vacuum wavelengths (:func:`to_vacuum`, IAU formula inverted by Piskunov);
2. Gaussian blur to the target resolving power (:func:`degrade_resolution`), or
   the original fixed sigma of 7 CCD700 pixels (:func:`blur_fixed_pixels`);
3. rebin onto the feature grid, 140 points 6519-6732 A in vacuum
   (:data:`service.vocabulary.FEATURE_WINDOW`; :func:`rebin`: linear interpolation as
   in the original, or flux-conserving as SpectRes does it);
4. division by a straight continuum through both ends of the window
   (:func:`divide_continuum`; not in the original): Ondrejov spectra come
   continuum-normalised, LAMOST flux-calibrated with a slope, and this is what
   separates the two most;
5. per-spectrum scaling (:func:`scale`: z-score, or min-max to [-1, 1] as the original).

Everything works on ``(n_spectra, n_pixels)`` arrays that share one wavelength grid
(archives deliver spectra on few distinct grids): blur and rebin are linear, so for
one grid they are one ``(n_pixels, 140)`` matrix built once and applied to the whole
batch with a single matrix product. :func:`adapt` groups a list of
:class:`~service.spectra.Spectrum` by grid and calls :func:`adapt_array` per group.
The :class:`AdaptConfig` used travels with the features (``AdaptedBatch.config``,
``AdaptConfig.fingerprint``) so a model records exactly how its inputs were made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import scipy.sparse

from service.reasons import AlvoError, Reason, SpectrumError
from service.spectra.spectrum import Medium, Spectrum
from service.vocabulary import FEATURE_PIXELS, FEATURE_WINDOW

#: FWHM of a Gaussian in units of its sigma, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Bump when the numbers adapt() produces for a given config change.
ALGORITHM_VERSION = 1
#: Rows adapted at once: bounds the float64 working copies (~60 MB each for CCD700).
CHUNK_ROWS = 8192

BlurMode = Literal["resolving-power", "fixed-pixels", "none"]
RebinMethod = Literal["linear", "flux-conserving"]
Scaling = Literal["zscore", "minmax", "none"]
Continuum = Literal["none", "linear"]
BLUR_MODES: tuple[str, ...] = get_args(BlurMode)
REBIN_METHODS: tuple[str, ...] = get_args(RebinMethod)
SCALINGS: tuple[str, ...] = get_args(Scaling)
CONTINUA: tuple[str, ...] = get_args(Continuum)


# --------------------------------------------------------------------------- media


def _piskunov_index(wavelength_air: np.ndarray) -> np.ndarray:
    """Refractive index of standard air as a function of the *air* wavelength (Å)."""
    s2 = (1e4 / wavelength_air) ** 2
    return (
        1.0
        + 8.336624212083e-5
        + 0.02408926869968 / (130.1065924522 - s2)
        + 1.599740894897e-4 / (38.92568793293 - s2)
    )


def to_vacuum(wavelength_air: np.ndarray | float) -> np.ndarray:
    """Air -> vacuum wavelengths, any shape, Å.

    IAU standard (Morton 2000 / Birch & Downs 1994) as inverted by N. Piskunov for
    VALD, the formula the original work used: 6562.801 Å (air) -> 6564.614 Å.
    """
    lam = np.asarray(wavelength_air, dtype=np.float64)
    return lam * _piskunov_index(lam)


def to_air(wavelength_vacuum: np.ndarray | float) -> np.ndarray:
    """Vacuum -> air wavelengths, any shape, Å: the exact inverse of :func:`to_vacuum`.

    Solved by fixed-point iteration λ_air = λ_vac / n(λ_air); n varies so slowly
    with λ that each step gains ~8 digits, so three steps reach machine precision.
    """
    lam_vac = np.asarray(wavelength_vacuum, dtype=np.float64)
    lam_air = lam_vac / _piskunov_index(lam_vac)
    for _ in range(3):
        lam_air = lam_vac / _piskunov_index(lam_air)
    return lam_air


# ---------------------------------------------------------------------- blurring


def _pixel_widths(x: np.ndarray) -> np.ndarray:
    """Width of each pixel of an increasing axis (midpoint edges, ends mirrored)."""
    edges = _pixel_edges(x)
    return np.diff(edges)


def _pixel_edges(x: np.ndarray) -> np.ndarray:
    """Bin edges (n+1,) around pixel centres x (n,): midpoints, outer edges mirrored.

    The same convention as SpectRes, so flux-conserving rebins agree with it.
    """
    mid = 0.5 * (x[1:] + x[:-1])
    return np.concatenate(([x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]))


def _gaussian_operator(
    x: np.ndarray, sigma: np.ndarray, truncate: float = 4.0
) -> scipy.sparse.csr_matrix:
    """Sparse (n, n) blur matrix: row i holds the Gaussian weights of output pixel i.

    x : (n,) increasing coordinate (Å, or pixel index); sigma : (n,) kernel sigma at
    each output pixel in the units of x (0 = leave that pixel alone). Weights are
    exp(-½((x_j - x_i)/σ_i)²) · width_j, cut at ``truncate`` σ and normalised per row,
    so the kernel follows σ(λ) on any monotonic grid (linear, log-linear, irregular)
    and edges are handled by renormalising what is left of the kernel.
    Built with one vectorised pass over the band's diagonals, not per pixel.
    """
    n = x.shape[0]
    steps = np.diff(x)
    half = int(np.ceil(truncate * float(np.max(sigma)) / float(np.min(steps)))) if n > 1 else 0
    offsets = np.arange(-half, half + 1)
    cols = np.arange(n)[:, None] + offsets[None, :]
    inside = (cols >= 0) & (cols < n)
    cols_c = np.clip(cols, 0, n - 1)
    dx = x[cols_c] - x[:, None]
    sig = sigma[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(sig > 0, dx / sig, np.where(dx == 0, 0.0, np.inf))
    weights = np.where(inside & (np.abs(u) <= truncate), np.exp(-0.5 * u * u), 0.0)
    weights = weights * _pixel_widths(x)[cols_c]
    weights /= weights.sum(axis=1, keepdims=True)
    # Every row holds the same number of (possibly zero) entries: build CSR directly.
    indptr = np.arange(0, n * offsets.size + 1, offsets.size)
    return scipy.sparse.csr_matrix((weights.ravel(), cols_c.ravel(), indptr), shape=(n, n))


def kernel_sigma(wavelength: np.ndarray, r_source: float, r_target: float) -> np.ndarray:
    """σ (Å) of the Gaussian that takes resolving power r_source to r_target at λ.

    σ_kernel = √(σ_target² − σ_source²) with σ = λ / (2.3548 R); zero where the
    source is already at or below the target resolution (LAMOST into LAMOST).
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    if not np.isfinite(r_source) or r_source <= 0 or r_source <= r_target:
        return np.zeros_like(lam)
    width = np.sqrt(1.0 / r_target**2 - 1.0 / r_source**2) / FWHM_PER_SIGMA
    return lam * width


def _apply_rows(operator: scipy.sparse.csr_matrix, flux: np.ndarray) -> np.ndarray:
    """flux (n, p) times a (q, p) operator's transpose -> (n, q), NaN-aware.

    Non-finite pixels are left out and the weights renormalised (a normalised
    convolution), so a bad pixel never spreads NaN over its neighbours.
    """
    good = np.isfinite(flux)
    if good.all():
        return np.asarray(operator @ flux.T).T
    num = np.asarray(operator @ np.where(good, flux, 0.0).T).T
    den = np.asarray(operator @ good.T.astype(np.float64)).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0.5, num / den, np.nan)


def _as_rows(flux: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(flux, dtype=np.float64)
    return (arr[None, :], True) if arr.ndim == 1 else (arr, False)


def degrade_resolution(
    wavelength: np.ndarray,
    flux: np.ndarray,
    r_source: float | np.ndarray,
    r_target: float,
    truncate: float = 4.0,
) -> np.ndarray:
    """Blur spectra from resolving power r_source down to r_target.

    wavelength : (p,) Å, increasing, shared by all rows (linear, log-linear or other)
    flux : (p,) or (n, p); NaN pixels are skipped (normalised convolution)
    r_source : scalar or (n,) λ/Δλ(FWHM) of each spectrum; rows with
        r_source <= r_target are returned unchanged
    Returns flux's shape. The kernel is a Gaussian of σ(λ) = λ·√(1/R_t² − 1/R_s²)/2.3548:
    constant in pixels on a log-linear grid, growing with λ on a linear one.
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    rows, single = _as_rows(flux)
    rs = np.broadcast_to(np.asarray(r_source, dtype=np.float64), (rows.shape[0],))
    out = rows.copy()
    for r in np.unique(rs):  # a handful of instruments, never per pixel
        sigma = kernel_sigma(lam, float(r), r_target)
        if not sigma.any():
            continue
        sel = rs == r
        out[sel] = _apply_rows(_gaussian_operator(lam, sigma, truncate), rows[sel])
    return out[0] if single else out


def blur_fixed_pixels(flux: np.ndarray, sigma_px: float = 7.0, truncate: float = 4.0) -> np.ndarray:
    """The original blur: a Gaussian of fixed σ in *pixels* (7 CCD700 px ≈ 1.8 Å).

    flux : (p,) or (n, p), blurred along the last axis; NaN pixels are skipped.
    """
    rows, single = _as_rows(flux)
    p = rows.shape[1]
    operator = _gaussian_operator(np.arange(p, dtype=np.float64), np.full(p, sigma_px), truncate)
    out = _apply_rows(operator, rows)
    return out[0] if single else out


# ---------------------------------------------------------------------- rebinning


def _linear_matrix(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Dense (p, m) matrix of linear interpolation from axis x onto grid (inside x)."""
    p = x.shape[0]
    idx = np.clip(np.searchsorted(x, grid, side="right") - 1, 0, p - 2)
    t = (grid - x[idx]) / (x[idx + 1] - x[idx])
    matrix = np.zeros((p, grid.shape[0]))
    cols = np.arange(grid.shape[0])
    matrix[idx, cols] = 1.0 - t
    matrix[idx + 1, cols] += t
    return matrix


def _flux_conserving_matrix(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Dense (p, m) matrix: mean flux density of x's pixels over each grid bin.

    Weight = overlap length of source pixel j with target bin k / width of bin k,
    with SpectRes's edge convention, so flux per Å is conserved.
    """
    src = _pixel_edges(x)
    dst = _pixel_edges(grid)
    lo = np.maximum(src[:-1, None], dst[None, :-1])
    hi = np.minimum(src[1:, None], dst[None, 1:])
    return np.clip(hi - lo, 0.0, None) / np.diff(dst)[None, :]


def _rebin_matrix(x: np.ndarray, grid: np.ndarray, method: str) -> np.ndarray:
    if method == "linear":
        return _linear_matrix(x, grid)
    if method == "flux-conserving":
        return _flux_conserving_matrix(x, grid)
    raise AlvoError(Reason.BAD_PARAMETER, f"rebin method {method!r} not in {REBIN_METHODS}")


def required_span(grid: np.ndarray, method: str) -> tuple[float, float]:
    """Wavelength range (Å) a spectrum must cover to be rebinned onto grid."""
    if method == "flux-conserving":
        edges = _pixel_edges(grid)
        return float(edges[0]), float(edges[-1])
    return float(grid[0]), float(grid[-1])


def rebin(
    wavelength: np.ndarray, flux: np.ndarray, grid: np.ndarray, method: str = "linear"
) -> np.ndarray:
    """Resample spectra onto grid.

    wavelength : (p,) Å increasing, shared; flux : (p,) or (n, p); grid : (m,) Å that
    must lie inside the wavelength range (see :func:`required_span`).
    method : "linear" interpolation (the original) or "flux-conserving" (mean flux
    density over each grid bin, as SpectRes). NaN pixels are left out and weights
    renormalised; a bin with less than half its weight on good pixels is NaN.
    Returns (m,) or (n, m).
    """
    lam = np.asarray(wavelength, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    lo, hi = required_span(grid, method)
    if lam[0] > lo + 1e-9 or lam[-1] < hi - 1e-9:
        raise SpectrumError(
            Reason.NO_HALPHA_COVERAGE,
            f"{lam[0]:.2f}-{lam[-1]:.2f} Å does not span {lo:.2f}-{hi:.2f} Å",
        )
    rows, single = _as_rows(flux)
    out = _apply_rows(_rebin_matrix(lam, grid, method).T, rows)
    return out[0] if single else out


# ------------------------------------------------------------------------ scaling


def scale(features: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Per-spectrum scaling of (n, m) features: "zscore" (zero mean, unit variance),
    "minmax" (to [-1, 1], the original) or "none" (rebinned flux as it is, for
    diagnostics). Flat or non-finite rows become NaN."""
    x = np.asarray(features, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "zscore":
            spread = x.std(axis=1, keepdims=True)
            out = (x - x.mean(axis=1, keepdims=True)) / spread
        elif method == "minmax":
            low = x.min(axis=1, keepdims=True)
            spread = x.max(axis=1, keepdims=True) - low
            out = 2.0 * (x - low) / spread - 1.0
        elif method == "none":
            out = x.copy()
            spread = np.ptp(x, axis=1, keepdims=True)
        else:
            raise AlvoError(Reason.BAD_PARAMETER, f"scaling {method!r} not in {SCALINGS}")
    # flat: no spread beyond rounding (a flat spectrum divided by its fitted
    # continuum varies by ~1e-16, which z-scoring would blow up into pure noise)
    with np.errstate(invalid="ignore"):
        tiny = 1e-9 * np.max(np.abs(x), axis=1)
    bad = ~(np.isfinite(spread[:, 0]) & (spread[:, 0] > tiny))
    out[bad] = np.nan
    return out


# ---------------------------------------------------------------------- continuum


def divide_continuum(features: np.ndarray, grid: np.ndarray, edge_px: int = 15) -> np.ndarray:
    """(n, m) rebinned flux divided by a straight line through both ends of the window.

    One least-squares line per row, fitted to the ``edge_px`` outer pixels at each
    end (for the default window: 6519-6542 and 6709-6732 Å, clear of H-alpha's core
    and of He I 6678), all rows in one matrix product. A row whose line is not
    positive over the whole window (no usable continuum) becomes NaN.
    """
    x = np.asarray(features, dtype=np.float64)
    ends = np.r_[0:edge_px, grid.size - edge_px : grid.size]
    design = np.stack([grid[ends], np.ones(ends.size)], axis=1)  # (2 edge_px, 2)
    coefficients = np.linalg.pinv(design) @ x[:, ends].T  # (2, n): slope, offset
    line = coefficients[0][:, None] * grid[None, :] + coefficients[1][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = x / line
    out[~(line > 0).all(axis=1)] = np.nan
    return out


# ------------------------------------------------------------------ masked pixels


def fill_masked(wavelength: np.ndarray, flux: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Replace bad pixels by linear interpolation between the nearest good ones.

    wavelength : (p,) Å; flux, good : (n, p). Pixels before the first / after the
    last good pixel take that pixel's value; rows without a good pixel stay NaN.
    Vectorised with running max/min of good-pixel indices, no loop over pixels.
    """
    n, p = flux.shape
    prev, nxt = _good_neighbours(good)
    prev_c = np.where(prev < 0, nxt, prev).clip(0, p - 1)
    nxt_c = np.where(nxt >= p, prev, nxt).clip(0, p - 1)
    rows = np.arange(n)[:, None]
    f0, f1 = flux[rows, prev_c], flux[rows, nxt_c]
    l0, l1 = wavelength[prev_c], wavelength[nxt_c]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(l1 > l0, (wavelength[None, :] - l0) / (l1 - l0), 0.0)
    filled = np.where(good, flux, f0 + t * (f1 - f0))
    filled[~good.any(axis=1)] = np.nan
    return filled


def _widest_gap(wavelength: np.ndarray, good: np.ndarray) -> np.ndarray:
    """(n,) widest run of bad pixels, in Å between the good pixels around it.

    wavelength : (p,) Å; good : (n, p). A run at either end is measured to the end
    of the axis; a row without good pixels gets the whole axis span.
    """
    p = good.shape[1]
    prev, nxt = _good_neighbours(good)
    gap = wavelength[nxt.clip(0, p - 1)] - wavelength[prev.clip(0, p - 1)]
    gap = np.where(good, 0.0, gap)
    gap[~good.any(axis=1)] = wavelength[-1] - wavelength[0]
    return gap.max(axis=1)


def _good_neighbours(good: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest good pixel at or before (-1: none) and at or after (p: none)."""
    p = good.shape[1]
    idx = np.arange(p)
    prev = np.maximum.accumulate(np.where(good, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(good, idx, p)[:, ::-1], axis=1)[:, ::-1]
    return prev, nxt


# ------------------------------------------------------------------ configuration


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """How spectra become feature vectors; stored with every model and feature store.

    start, stop, n : the vacuum grid ``np.linspace(start, stop, n)`` in Å
    blur : "resolving-power" (Gaussian from the resolving powers, default),
        "fixed-pixels" (σ = sigma_px source pixels, the original) or "none";
        spectra with resolving power <= target_resolving_power are never blurred
    rebin : "flux-conserving" (default) or "linear" (the original)
    scaling : "zscore" (default), "minmax" (to [-1, 1], the original) or "none"
    continuum : "linear" (default) divides by a straight line fitted to the
        ``continuum_edge_px`` outer feature pixels at each end; "none" is the original.
        Measured (docs/adaptation.md): Ondrejov/LAMOST twins r 0.85 -> 0.94, and a CNN
        trained on simulated Ondrejov spectra alone labels 36.8 instead of 35.0 of the
        40 real spectra (mean of 4 seeds)
    max_masked_fraction : largest share of bad pixels in the window we interpolate over
    max_gap_angstrom : widest run of bad pixels (Å between good neighbours) we bridge
    """

    start: float = FEATURE_WINDOW[0]
    stop: float = FEATURE_WINDOW[1]
    n: int = FEATURE_PIXELS
    blur: BlurMode = "resolving-power"
    target_resolving_power: float = 1800.0
    sigma_px: float = 7.0
    rebin: RebinMethod = "flux-conserving"
    scaling: Scaling = "zscore"
    continuum: Continuum = "linear"
    continuum_edge_px: int = 15
    max_masked_fraction: float = 0.1
    max_gap_angstrom: float = 6.0

    def __post_init__(self) -> None:
        problems = []
        if not (self.start < self.stop and self.n >= 2):
            problems.append("need start < stop and n >= 2")
        if self.blur not in BLUR_MODES:
            problems.append(f"blur {self.blur!r} not in {BLUR_MODES}")
        if self.rebin not in REBIN_METHODS:
            problems.append(f"rebin {self.rebin!r} not in {REBIN_METHODS}")
        if self.scaling not in SCALINGS:
            problems.append(f"scaling {self.scaling!r} not in {SCALINGS}")
        if self.continuum not in CONTINUA:
            problems.append(f"continuum {self.continuum!r} not in {CONTINUA}")
        if not 2 <= self.continuum_edge_px <= self.n // 3:
            problems.append("continuum_edge_px must be between 2 and n / 3")
        if not (self.target_resolving_power > 0 and self.sigma_px > 0):
            problems.append("target_resolving_power and sigma_px must be > 0")
        if problems:
            raise AlvoError(Reason.BAD_PARAMETER, "; ".join(problems))

    @classmethod
    def original(cls) -> AdaptConfig:
        """The configuration of Škoda, Podsztavek & Tvrdík (2020)."""
        return cls(blur="fixed-pixels", rebin="linear", scaling="minmax", continuum="none")

    def grid(self) -> np.ndarray:
        """(n,) vacuum wavelengths of the feature vector, Å."""
        return np.linspace(self.start, self.stop, self.n)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, with the algorithm version, for model files."""
        return {"algorithm_version": ALGORITHM_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdaptConfig:
        """Inverse of :meth:`to_dict`; refuses unknown keys and other algorithm versions."""
        data = dict(data)
        version = data.pop("algorithm_version", ALGORITHM_VERSION)
        if version != ALGORITHM_VERSION:
            raise AlvoError(
                Reason.BAD_PARAMETER,
                f"features made by adaptation algorithm v{version}, this is v{ALGORITHM_VERSION}",
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise AlvoError(Reason.BAD_PARAMETER, f"unknown adaptation settings {sorted(unknown)}")
        return cls(**data)

    @property
    def fingerprint(self) -> str:
        """16 hex digits that change whenever the features would change."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass
class AdaptedBatch:
    """Feature vectors of a batch; row i belongs to input spectrum i.

    features : (n, config.n) float32, a NaN row where spectrum i failed
    failures : {row: SpectrumError} naming why each failed row failed
    coverage : (n,) share of good (unmasked, finite) source pixels inside the window
    """

    features: np.ndarray
    failures: dict[int, SpectrumError]
    config: AdaptConfig
    coverage: np.ndarray


# ------------------------------------------------------------------------- batches


def _blur_and_rebin(
    lam: np.ndarray,
    flux: np.ndarray,
    r_source: float,
    config: AdaptConfig,
    rebin_matrix: np.ndarray,
) -> np.ndarray:
    """(k, p) finite flux on one grid, one resolving power -> (k, m) rebinned features.

    Blur B and rebin R are linear, so features = flux · Bᵀ · R. For a large batch
    Bᵀ·R is formed once and applied with one BLAS product; for a few spectra it is
    cheaper to blur them and then rebin.
    """
    blur = None
    if np.isfinite(r_source) and r_source > config.target_resolving_power:
        if config.blur == "resolving-power":
            sigma = kernel_sigma(lam, r_source, config.target_resolving_power)
            blur = _gaussian_operator(lam, sigma)
        elif config.blur == "fixed-pixels":
            p = lam.shape[0]
            pixels = np.arange(p, dtype=np.float64)
            blur = _gaussian_operator(pixels, np.full(p, config.sigma_px))
    if blur is None:
        return flux @ rebin_matrix
    if flux.shape[0] < rebin_matrix.shape[1]:
        return np.asarray(blur @ flux.T).T @ rebin_matrix
    return flux @ np.asarray(blur.T @ rebin_matrix)


def _margin(lam: np.ndarray, config: AdaptConfig, r_max: float) -> float:
    """Å of spectrum beyond the required span that the blur kernel reaches."""
    step = float(np.max(np.diff(lam)))
    if config.blur == "resolving-power":
        reach = 4.0 * float(
            kernel_sigma(np.array([config.stop]), r_max, config.target_resolving_power)[0]
        )
    elif config.blur == "fixed-pixels":
        reach = 4.0 * config.sigma_px * step
    else:
        reach = 0.0
    return reach + 2.0 * step


def adapt_array(
    wavelength: np.ndarray,
    flux: np.ndarray,
    mask: np.ndarray | None = None,
    medium: Medium = "vacuum",
    resolving_power: float | np.ndarray = 1800.0,
    config: AdaptConfig = AdaptConfig(),
) -> AdaptedBatch:
    """Adapt spectra that share one wavelength grid: the fast path of bulk ingest.

    wavelength : (p,) Å in ``medium``, strictly increasing
    flux : (n, p), NaN where a row has no data (e.g. padding of shorter spectra)
    mask : (n, p) bool, True = bad pixel (pipeline mask); None = only NaN and exact
        zeros are bad. Inverse variance is deliberately not used: LAMOST sets ivar = 0
        on strong H-alpha emission cores, the very pixels we look for.
    resolving_power : scalar or (n,) λ/Δλ of each row (non-finite = unknown, no blur)
    Returns an :class:`AdaptedBatch`; a row failing for a named reason is NaN.
    """
    flux = np.asarray(flux)
    flux = flux[None, :] if flux.ndim == 1 else flux
    n = flux.shape[0]
    if medium not in ("air", "vacuum"):
        raise AlvoError(Reason.BAD_PARAMETER, f"medium {medium!r} is neither 'air' nor 'vacuum'")
    power = np.broadcast_to(np.asarray(resolving_power, dtype=np.float64), (n,))
    masks = None if mask is None else np.asarray(mask, dtype=bool).reshape(flux.shape)
    parts = []
    for lo in range(0, max(n, 1), CHUNK_ROWS):  # bounded memory for bulk ingest
        rows = slice(lo, lo + CHUNK_ROWS)
        part_mask = None if masks is None else masks[rows]
        parts.append(_adapt_rows(wavelength, flux[rows], part_mask, medium, power[rows], config))
    if len(parts) == 1:
        return parts[0]
    failures = {
        k * CHUNK_ROWS + i: error
        for k, part in enumerate(parts)
        for i, error in part.failures.items()
    }
    return AdaptedBatch(
        np.concatenate([part.features for part in parts]),
        failures,
        config,
        np.concatenate([part.coverage for part in parts]),
    )


def _adapt_rows(
    wavelength: np.ndarray,
    flux: np.ndarray,
    mask: np.ndarray | None,
    medium: str,
    resolving_power: np.ndarray,
    config: AdaptConfig,
) -> AdaptedBatch:
    """:func:`adapt_array` on one chunk of rows."""
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    n, p = flux.shape
    lam = np.asarray(wavelength, dtype=np.float64)
    r_all = np.broadcast_to(np.asarray(resolving_power, dtype=np.float64), (n,))
    if lam.shape != (p,) or p < 2 or not (np.all(np.isfinite(lam)) and np.all(np.diff(lam) > 0)):
        raise SpectrumError(Reason.BAD_WAVELENGTH, "wavelengths must be finite, increasing, (p,)")
    if medium == "air":
        lam = to_vacuum(lam)
    # Exact zeros are archive drop-outs (LAMOST writes flux 0, ivar 0 past its good range).
    good = np.isfinite(flux) & (flux != 0.0)
    if mask is not None:
        good &= ~mask
    grid = config.grid()
    lo, hi = required_span(grid, config.rebin)
    failures: dict[int, SpectrumError] = {}

    # Coverage: the stretch of finite flux must span the grid.
    finite = np.isfinite(flux)
    first = np.argmax(finite, axis=1)
    last = p - 1 - np.argmax(finite[:, ::-1], axis=1)
    empty = ~finite.any(axis=1)
    uncovered = empty | (lam[first] > lo + 1e-9) | (lam[last] < hi - 1e-9)
    for i in np.flatnonzero(uncovered & ~empty):
        failures[int(i)] = SpectrumError(
            Reason.NO_HALPHA_COVERAGE,
            f"data span {lam[first[i]]:.1f}-{lam[last[i]]:.1f} Å (vacuum), "
            f"need {lo:.1f}-{hi:.1f} Å",
        )
    for i in np.flatnonzero(empty):
        failures[int(i)] = SpectrumError(Reason.BAD_FLUX, "no finite flux near H-alpha")

    # Work only on the window plus what the blur reaches.
    r_max = float(np.nanmax(r_all)) if np.isfinite(r_all).any() else 0.0
    margin = _margin(lam, config, r_max)
    i0 = max(int(np.searchsorted(lam, lo - margin)) - 1, 0)
    i1 = min(int(np.searchsorted(lam, hi + margin)) + 1, p)
    lam_c, flux_c, good_c = lam[i0:i1], flux[:, i0:i1], good[:, i0:i1]

    # The pixels the rebin reads (incl. the neighbours bracketing the window's ends).
    rebin_matrix = _rebin_matrix(lam_c, grid, config.rebin)
    inside = rebin_matrix.any(axis=1)
    coverage = good_c[:, inside].mean(axis=1)
    gap = np.zeros(n)
    holey = coverage < 1.0  # the gap search and filling only where there are holes
    gap[holey] = _widest_gap(lam_c[inside], good_c[holey][:, inside])
    too_masked = (1.0 - coverage > config.max_masked_fraction) | (gap > config.max_gap_angstrom)
    for i in np.flatnonzero(too_masked & ~uncovered):
        failures[int(i)] = SpectrumError(
            Reason.TOO_MANY_MASKED,
            f"{100 * (1 - coverage[i]):.0f}% of window pixels bad, widest gap {gap[i]:.1f} Å "
            f"(limits {100 * config.max_masked_fraction:.0f}%, {config.max_gap_angstrom} Å)",
        )
    filled = flux_c.copy()
    filled[holey] = fill_masked(lam_c, flux_c[holey], good_c[holey])

    features = np.full((n, grid.shape[0]), np.nan)
    ok = np.ones(n, dtype=bool)
    ok[list(failures)] = False
    r_key = np.where(np.isfinite(r_all), r_all, -1.0)
    for r in np.unique(r_key[ok]):  # one operator per instrument, not per spectrum
        sel = ok & (r_key == r)
        features[sel] = _blur_and_rebin(lam_c, filled[sel], float(r), config, rebin_matrix)
    if config.continuum == "linear":
        features = divide_continuum(features, grid, config.continuum_edge_px)
    scaled = scale(features, config.scaling)
    for i in np.flatnonzero(ok & ~np.isfinite(scaled).all(axis=1)):
        failures[int(i)] = SpectrumError(
            Reason.BAD_FLUX,
            "flux is flat or not finite in the window"
            + (", or its continuum is not positive" if config.continuum == "linear" else ""),
        )
        scaled[i] = np.nan
    return AdaptedBatch(scaled.astype(np.float32), failures, config, coverage)


#: Å of slack around the window when grouping spectra by grid: covers the blur's
#: reach (4 σ of a Gaussian to R = 1800, or 7 CCD700 px) and the air/vacuum offset.
GROUPING_SLACK = 16.0


def _window_slice(spectrum: Spectrum, config: AdaptConfig) -> slice:
    """The part of a spectrum adaptation can read: the window plus generous slack.

    Grouping by this part instead of the whole axis puts LAMOST spectra whose axes
    only differ in length (3899, 3906, 3909 px, ...) into one group.
    """
    lam = spectrum.wavelength
    slack = GROUPING_SLACK + 4.0 * config.sigma_px * float(np.max(np.diff(lam[:2]), initial=0))
    i0 = max(int(np.searchsorted(lam, config.start - slack)) - 1, 0)
    i1 = min(int(np.searchsorted(lam, config.stop + slack)) + 1, lam.shape[0])
    return slice(i0, i1)


def _check(spectrum: Spectrum) -> SpectrumError | None:
    """A reason why a spectrum cannot be adapted at all, or None."""
    lam = spectrum.wavelength
    assert spectrum.mask is not None
    if lam.ndim != 1 or spectrum.flux.shape != lam.shape or spectrum.mask.shape != lam.shape:
        return SpectrumError(Reason.BAD_FLUX, "flux, mask and wavelength differ in shape")
    if lam.shape[0] < 2 or not (np.isfinite(lam).all() and (np.diff(lam) > 0).all()):
        return SpectrumError(Reason.BAD_WAVELENGTH, "wavelengths not finite and increasing")
    return None


def adapt(spectra: Sequence[Spectrum], config: AdaptConfig = AdaptConfig()) -> AdaptedBatch:
    """Adapt any list of spectra; row i of the result belongs to spectra[i].

    Spectra whose wavelength axes agree around the window (the rule within one
    archive and instrument set-up) are stacked and adapted as one array by
    :func:`adapt_array`; a spectrum on a grid of its own costs ~1 ms.
    """
    n = len(spectra)
    features = np.full((n, config.n), np.nan, dtype=np.float32)
    coverage = np.zeros(n)
    failures: dict[int, SpectrumError] = {}
    groups: dict[tuple[str, str], list[tuple[int, slice]]] = {}
    for i, spectrum in enumerate(spectra):
        problem = _check(spectrum)
        if problem is not None:
            failures[i] = problem
            continue
        part = _window_slice(spectrum, config)
        lam = np.ascontiguousarray(spectrum.wavelength[part])
        if lam.shape[0] < 2:
            failures[i] = SpectrumError(
                Reason.NO_HALPHA_COVERAGE,
                f"spectrum spans {spectrum.wavelength[0]:.1f}-{spectrum.wavelength[-1]:.1f} Å",
            )
            continue
        key = (spectrum.medium, hashlib.blake2b(lam.tobytes(), digest_size=16).hexdigest())
        groups.setdefault(key, []).append((i, part))
    for members in groups.values():
        index = [i for i, _ in members]
        first, part = spectra[index[0]], members[0][1]
        flux = np.stack([spectra[i].flux[cut] for i, cut in members])
        mask = np.stack([np.asarray(spectra[i].mask)[cut] for i, cut in members])
        power = np.array([spectra[i].resolving_power for i in index], dtype=np.float64)
        try:
            batch = adapt_array(first.wavelength[part], flux, mask, first.medium, power, config)
        except SpectrumError as error:
            failures.update({i: error for i in index})
            continue
        features[index] = batch.features
        coverage[index] = batch.coverage
        failures.update({index[k]: err for k, err in batch.failures.items()})
    return AdaptedBatch(features, dict(sorted(failures.items())), config, coverage)
