"""Noise-free spectra of a block of stars: continuum × (photosphere + circumstellar lines).

Everything is computed on (n_spectra, n_pixels) arrays at the instrument's own
resolution: each line is a Gaussian (or, for Balmer wings, a Lorentzian) whose
width already includes rotation (photospheric lines only) and the instrument's
line-spread function, with its equivalent width conserved. That is exactly a
convolution for Gaussians and costs no convolution at all. A line is evaluated
only on the pixels where it matters (a window around it), so a LAMOST spectrum
with ~60 lines costs a few times its pixel count.

Wavelengths here are vacuum Å; an air instrument's grid is converted first.
"""

from __future__ import annotations

import numpy as np

from service.archive import lines as ll

C_KMS = 299792.458
#: σ of a rotational profile relative to v sin i (FWHM ≈ 1.6 v sin i for limb darkening 0.6).
ROTATION_SIGMA = 0.68
SQRT_2PI = np.sqrt(2.0 * np.pi)


def _window(grid: np.ndarray, centre: np.ndarray, half_width: float) -> slice:
    """Pixels within ``half_width`` Å of any of ``centre`` (Å)."""
    lo = np.searchsorted(grid, float(np.min(centre)) - half_width)
    hi = np.searchsorted(grid, float(np.max(centre)) + half_width)
    return slice(int(lo), int(hi))


def _add_profiles(
    out: np.ndarray,
    grid: np.ndarray,
    centre: np.ndarray,
    width: np.ndarray,
    amp: np.ndarray,
    reach: float,
    shape: str,
) -> None:
    """out[i] += amp[i]·profile((λ − centre[i]) / width[i]) on the pixels within
    ``reach`` widths of any line; rows with amp 0 cost nothing."""
    rows = np.flatnonzero(amp != 0)
    if rows.size == 0:
        return
    window = _window(grid, centre[rows], reach * float(width[rows].max()))
    if window.stop <= window.start:
        return
    x = (grid[window][None, :] - centre[rows, None]) / width[rows, None]
    profile = np.exp(-0.5 * x * x) if shape == "gaussian" else 1.0 / (1.0 + 4.0 * x * x)
    out[rows, window] += amp[rows, None] * profile


def add_gaussians(
    out: np.ndarray, grid: np.ndarray, centre: np.ndarray, sigma: np.ndarray, amp: np.ndarray
) -> None:
    """out[i] += amp[i]·exp(−½((λ − centre[i]) / sigma[i])²) within 6 σ (in place).

    out : (n, p); grid : (p,) Å; centre, sigma (Å), amp : (n,)
    """
    _add_profiles(out, grid, centre, sigma, amp, 6.0, "gaussian")


def add_lorentzians(
    out: np.ndarray, grid: np.ndarray, centre: np.ndarray, fwhm: np.ndarray, amp: np.ndarray
) -> None:
    """out[i] += amp[i] / (1 + (2(λ − centre[i]) / fwhm[i])²) within 25 FWHM (in place)."""
    _add_profiles(out, grid, centre, fwhm, amp, 25.0, "lorentzian")


def observed_gaussian(
    amp: np.ndarray, sigma: np.ndarray, extra_sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(amp, σ) of a Gaussian after convolution with Gaussians of σ ``extra_sigma``: area kept."""
    total = np.sqrt(sigma * sigma + extra_sigma * extra_sigma)
    return amp * sigma / total, total


def photosphere(
    grid: np.ndarray,
    sigma_instrument: np.ndarray,
    p: dict[str, np.ndarray],
) -> np.ndarray:
    """(n, p) line absorption (≥ 0) of photospheres, ISM and atmosphere; 1 − it is the flux.

    p : teff (K), vsini, rv (km/s), ebv (mag), airmass, balmer_strength
    sigma_instrument : (p,) instrument σ in Å along the grid (used at each line centre)
    """
    n = p["teff"].shape[0]
    depth = np.zeros((n, grid.shape[0]))
    doppler = 1.0 + p["rv"] / C_KMS
    rot = ROTATION_SIGMA * p["vsini"] / C_KMS
    s = p["balmer_strength"]
    for k, centre in enumerate(ll.BALMER):
        if not grid[0] - 200 < centre < grid[-1] + 200:
            continue
        inst = np.interp(centre, grid, sigma_instrument)
        lam = centre * doppler
        wing_fwhm = (3.0 + 17.0 * s) * ll.BALMER_WIDTH_SCALE[k]
        wing_depth = (0.2 + 0.2 * s) * ll.BALMER_DEPTH_SCALE[k]
        add_lorentzians(depth, grid, lam, wing_fwhm, wing_depth)
        core_amp, core_sigma = observed_gaussian(
            (0.25 + 0.2 * s) * ll.BALMER_DEPTH_SCALE[k],
            np.full(n, 1.2),
            np.hypot(rot * centre, inst),
        )
        add_gaussians(depth, grid, lam, core_sigma, core_amp)
    strength = ll.family_strength(p["teff"], p["ebv"], p["airmass"])
    in_range = (grid[0] - 50 < ll.LINE_WAVELENGTH) & (grid[-1] + 50 > ll.LINE_WAVELENGTH)
    stellar = ll.FAMILIES.index("dib")
    for j in np.flatnonzero(in_range):
        family = ll.LINE_FAMILY[j]
        centre = ll.LINE_WAVELENGTH[j]
        inst = np.interp(centre, grid, sigma_instrument)
        if family < stellar:  # moves with the star, rotates with it
            lam = centre * doppler
            broadening = np.hypot(rot * centre, inst)
        elif ll.FAMILIES[family] == "dib":  # interstellar: at rest, no rotation
            lam = np.full(n, centre)
            broadening = np.full(n, inst)
        else:  # telluric: the observer's frame (heliocentric correction ignored)
            lam = np.full(n, centre)
            broadening = np.full(n, inst)
        amp, sigma = observed_gaussian(
            ll.LINE_DEPTH[j] * strength[:, family], np.full(n, ll.LINE_SIGMA[j]), broadening
        )
        add_gaussians(depth, grid, lam, sigma, amp)
    return depth


def circumstellar(
    grid: np.ndarray,
    sigma_instrument: np.ndarray,
    rv: np.ndarray,
    components: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """(n, p) emission (+) and circumstellar absorption (−) in the Balmer lines.

    components : (velocity, sigma, amplitude), each (n, k): Gaussians in km/s
    relative to the star (k components per star, amplitude in continuum units
    at H-alpha; higher Balmer lines get the Balmer decrement ``BALMER_EMISSION``).
    """
    velocity, sigma_v, amplitude = components
    n = rv.shape[0]
    out = np.zeros((n, grid.shape[0]))
    for k, centre in enumerate(ll.BALMER):
        scale = ll.BALMER_EMISSION[k]
        if scale == 0 or not grid[0] - 50 < centre < grid[-1] + 50:
            continue
        inst = np.interp(centre, grid, sigma_instrument)
        for c in range(velocity.shape[1]):
            lam = centre * (1.0 + (rv + velocity[:, c]) / C_KMS)
            amp, sig = observed_gaussian(
                scale * amplitude[:, c], centre * sigma_v[:, c] / C_KMS, np.full(n, inst)
            )
            add_gaussians(out, grid, lam, sig, amp)
    return out


def planck_shape(wavelength: np.ndarray, teff: np.ndarray) -> np.ndarray:
    """(n, p) black body B_λ(T) normalised to 1 at H-alpha."""
    hc_k = 1.4387769e8  # h c / k in Å K
    lam = wavelength[None, :]
    t = teff[:, None]
    shape = lam**-5 / np.expm1(hc_k / (lam * t))
    ref = ll.HALPHA**-5 / np.expm1(hc_k / (ll.HALPHA * t))
    return shape / ref


def extinction(wavelength: np.ndarray, ebv: np.ndarray) -> np.ndarray:
    """(n, p) transmission 10^(−0.4 A_λ), A_λ ≈ 3.1 E(B−V) (5500/λ)^1.3, 1 at H-alpha."""
    a_rel = 3.1 * ((5500.0 / wavelength[None, :]) ** 1.3 - (5500.0 / ll.HALPHA) ** 1.3)
    return np.power(10.0, -0.4 * ebv[:, None] * a_rel)


def halpha_equivalent_width(
    grid: np.ndarray, normalised: np.ndarray, half_width: float = 30.0
) -> np.ndarray:
    """(n,) EW of H-alpha in Å (positive = absorption, negative = emission), ±half_width Å."""
    window = _window(grid, np.array([ll.HALPHA]), half_width)
    step = np.gradient(grid)[window]
    return ((1.0 - normalised[:, window]) * step[None, :]).sum(axis=1)


def emission_visible(
    grid: np.ndarray,
    emitted: np.ndarray,
    normalised: np.ndarray,
    above_continuum: bool,
    half_width: float = 15.0,
) -> np.ndarray:
    """(n,) True where an oracle would call H-alpha emission (noise-free profiles).

    The circumstellar emission, after the line-spread function, must reach 10 %
    of the continuum; with ``above_continuum`` (survey oracles, who have no
    photospheric model at hand: LAMOST) the profile must also rise 5 % above the
    continuum, so emission that only fills an absorption line reads as absorption.
    """
    window = _window(grid, np.array([ll.HALPHA]), half_width)
    visible = emitted[:, window].max(axis=1) > 0.1
    if above_continuum:
        visible &= normalised[:, window].max(axis=1) > 1.05
    return visible


def peaks_resolved(
    grid: np.ndarray, normalised: np.ndarray, half_width: float = 15.0
) -> np.ndarray:
    """(n,) True where H-alpha shows two separate emission peaks (noise-free profile).

    Peaks count if they rise above the continuum by at least 20 % of the highest
    one; they are separate if the profile between the outermost two dips by at
    least 5 % of that height below the lower of them.
    """
    window = _window(grid, np.array([ll.HALPHA]), half_width)
    m = normalised[:, window]
    height = m.max(axis=1) - 1.0
    inner = m[:, 1:-1]
    is_peak = (inner > m[:, :-2]) & (inner >= m[:, 2:]) & (inner - 1.0 > 0.2 * height[:, None])
    count = is_peak.sum(axis=1)
    w = inner.shape[1]
    left = np.argmax(is_peak, axis=1)
    right = w - 1 - np.argmax(is_peak[:, ::-1], axis=1)
    cols = np.arange(w)[None, :]
    between = (cols >= left[:, None]) & (cols <= right[:, None])
    dip = np.where(between, inner, np.inf).min(axis=1)
    rows = np.arange(m.shape[0])
    lower = np.minimum(inner[rows, left], inner[rows, right])
    return (count >= 2) & (height > 0) & (dip < lower - 0.05 * height)
