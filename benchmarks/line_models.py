"""A second H-alpha line model for the rare-regime benchmark, independent of the archive's.

The archive simulator draws every circumstellar profile as a sum of Gaussians
(``service.archive.simulate.draw_emission``). A network, and a benchmark, tuned on
those alone may have learnt the generator, not the stars (issue 25). Here the
LAMOST-like *absorption* spectra of the same simulator get emission from other
physics, computed in velocity space and injected into the native flux:

* **disk** -- a Keplerian disk seen at inclination i: line-of-sight velocity
  v_K(r) sin i cos φ over annuli r = 1 .. R_out (stellar radii), emissivity r^-q,
  plus local broadening; double-peaked when the peaks survive R ≈ 1800;
* **shell** -- the same disk nearly edge-on, with a narrow absorption from the
  disk in front of the star cutting the centre;
* **P Cygni** -- an optically thin wind with a β velocity law: each shell emits a
  flat-topped box out to ±v(r), and the wind in front of the star absorbs from
  -v_inf to -v(1.1);
* **filled core** -- weak emission, narrower than the photospheric line, partly
  filling its core.

The oracle's verdict (the truth) is ``double-peak`` when the convolved profile
has two maxima with a dip of ≥ 5 % of the weaker between them, else
``single-peak``. Problem functions for ``alvo benchmark active-learning
--problem benchmarks.line_models:rare_1pc`` (0.3 %, 1 %, 3 % emission):

    .venv/bin/python benchmarks/bench_rarity.py --problem benchmarks.line_models:rare_1pc
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from service.learn.loop import Problem
    from service.spectra.spectrum import Spectrum

C_KMS = 299_792.458
HALPHA_VACUUM, HALPHA_AIR = 6564.61, 6562.80
KINDS = ("disk", "shell", "p-cygni", "filled-core")
SHARES = (0.4, 0.15, 0.15, 0.3)
VELOCITY = np.arange(-1500.0, 1500.0 + 1e-9, 5.0)  # km/s, the profiles' grid


def _smooth(profile: np.ndarray, sigma_kms: float) -> np.ndarray:
    """Gaussian convolution on the uniform VELOCITY grid."""
    step = VELOCITY[1] - VELOCITY[0]
    half = int(4 * sigma_kms / step) + 1
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * step / sigma_kms) ** 2)
    return np.convolve(profile, kernel / kernel.sum(), mode="same")


def disk_profile(rng: np.random.Generator, edge_on: bool) -> np.ndarray:
    """(len(VELOCITY),) Keplerian-disk emission, peak 1 (before the amplitude)."""
    v_sini = rng.uniform(200, 500) * (1.0 if edge_on else rng.uniform(0.3, 1.0))
    r_out, q = rng.uniform(4, 30), rng.uniform(1.5, 2.5)
    r = np.geomspace(1.0, r_out, 200)[:, None]
    phi = np.linspace(0, 2 * np.pi, 181)[None, :]
    v = (v_sini / np.sqrt(r) * np.cos(phi)).ravel()
    weight = np.broadcast_to(r ** (1 - q), (200, 181)).ravel()  # r^-q times the area r dr
    profile = np.histogram(v, bins=len(VELOCITY), range=_edges(), weights=weight)[0]
    profile = _smooth(profile.astype(np.float64), rng.uniform(10, 30))
    return profile / profile.max()


def wind_profile(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(emission with peak 1, blue absorption depth) of a β-law wind."""
    v_inf, beta = rng.uniform(150, 700), rng.uniform(0.8, 2.0)
    radii = np.geomspace(1.1, 20, 120)
    speed = v_inf * (1 - 1 / radii) ** beta
    emissivity = radii**-2.0 * np.diff(np.r_[1.0, radii])
    box = (np.abs(VELOCITY)[None, :] <= speed[:, None]) / (2 * speed[:, None])
    emission = (emissivity[:, None] * box).sum(axis=0)
    emission = _smooth(emission, 15.0)
    absorb = ((VELOCITY + v_inf >= 0) & (VELOCITY + speed[0] <= 0)).astype(np.float64)
    absorb = _smooth(absorb, 20.0)
    return emission / emission.max(), float(rng.uniform(0.15, 0.5)) * absorb


def _edges() -> tuple[float, float]:
    step = VELOCITY[1] - VELOCITY[0]
    return float(VELOCITY[0] - step / 2), float(VELOCITY[-1] + step / 2)


def line_profile(rng: np.random.Generator, kind: str) -> np.ndarray:
    """(len(VELOCITY),) continuum-relative flux change of one emission star."""
    amplitude = float(np.exp(rng.uniform(np.log(0.3), np.log(5.0))))
    if kind in ("disk", "shell"):
        out = amplitude * disk_profile(rng, edge_on=kind == "shell")
        if kind == "shell":
            depth = rng.uniform(0.3, 0.8) * (out.max() + rng.uniform(0.1, 0.4))
            out -= depth * np.exp(-0.5 * (VELOCITY / rng.uniform(15, 40)) ** 2)
        return out
    if kind == "p-cygni":
        emission, absorption = wind_profile(rng)
        return amplitude * emission - absorption
    # filled core: weak and narrower than the photospheric line (σ ~ 100-200 km/s at LAMOST)
    return rng.uniform(0.15, 0.6) * np.exp(-0.5 * (VELOCITY / rng.uniform(30, 80)) ** 2)


def double_peaked(observed: np.ndarray) -> bool:
    """Two maxima with a dip of >= 5 % of the weaker between them (after the instrument)."""
    positive = np.clip(observed, 0, None)
    top = positive.max()
    if top <= 0:
        return False
    inner = (positive[1:-1] >= positive[:-2]) & (positive[1:-1] > positive[2:])
    peaks = np.flatnonzero(inner & (positive[1:-1] > 0.2 * top)) + 1
    if peaks.size < 2:
        return False
    left, right = peaks[0], peaks[-1]
    dip = positive[left : right + 1].min()
    return bool(dip < 0.95 * min(positive[left], positive[right]))


def inject(spectrum: Spectrum, profile: np.ndarray, rv: float) -> None:
    """Add ``profile`` (continuum units, velocity space, at the instrument's resolution)
    around H-alpha to the flux; the continuum is the median 25-60 Å from the line."""
    wave, flux = spectrum.wavelength, spectrum.flux
    centre = HALPHA_VACUUM if spectrum.medium == "vacuum" else HALPHA_AIR
    centre *= 1 + rv / C_KMS
    sides = (np.abs(wave - centre) > 25) & (np.abs(wave - centre) < 60) & np.isfinite(flux)
    continuum = float(np.median(flux[sides])) if sides.any() else 0.0
    velocity = (wave / centre - 1) * C_KMS
    spectrum.flux = flux + continuum * np.interp(velocity, VELOCITY, profile, left=0, right=0)


def problem(n_source: int, n_target: int, seed: int, emission_fraction: float = 0.01) -> Problem:
    """Ondrejov-like source from the archive simulator; LAMOST-like absorption spectra of
    the simulator with ``emission_fraction`` of them given this module's lines."""
    from service.adapt import AdaptConfig, adapt
    from service.archive import simulate_batch
    from service.archive.classes import UNKNOWN
    from service.learn.labels import verdict_codes
    from service.learn.loop import Problem
    from service.vocabulary import CLASSES, NOT_SURE

    config = AdaptConfig()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 25]))
    spectra, truth = simulate_batch("ondrejov", n_source, 2 * seed, None)
    source = adapt(spectra, config)
    names = [{UNKNOWN: NOT_SURE}.get(str(v), str(v)) for v in truth["label"]]
    good = np.isfinite(source.features).all(axis=1)
    source_x, source_v = source.features[good], verdict_codes(names)[good]

    spectra, truth = simulate_batch("lamost", n_target, 2 * seed + 1, 0.0)
    labels = [{UNKNOWN: NOT_SURE}.get(str(v), str(v)) for v in truth["label"]]
    absorption = np.flatnonzero(np.asarray(labels) == "absorption")
    n_stars = min(round(emission_fraction * n_target), absorption.size)
    stars = rng.choice(absorption, n_stars, replace=False)
    sigma = C_KMS / (2.3548 * spectra[0].resolving_power)
    for row, kind in zip(stars, rng.choice(KINDS, n_stars, p=SHARES), strict=True):
        profile = line_profile(rng, str(kind))
        observed = _smooth(profile, sigma)
        inject(spectra[row], observed, float(truth["rv"][row]))
        labels[row] = "double-peak" if double_peaked(observed) else "single-peak"
    target = adapt(spectra, config)
    good = np.isfinite(target.features).all(axis=1)
    target_x, target_v = target.features[good], verdict_codes(labels)[good]
    trainable = source_v < len(CLASSES)
    return Problem(
        source_x[trainable], source_v[trainable].astype(np.int64), target_x, target_v,
        config.grid(), config.to_dict(), config.fingerprint,
    )  # fmt: skip


rare_03pc = functools.partial(problem, emission_fraction=0.003)
rare_1pc = functools.partial(problem, emission_fraction=0.01)
rare_3pc = functools.partial(problem, emission_fraction=0.03)
