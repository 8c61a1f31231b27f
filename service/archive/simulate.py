"""Blocks of simulated spectra with their ground truth, deterministic from a seed.

Row ``i`` of a collection belongs to block ``i // BLOCK``; each block draws
from its own ``numpy.random.SeedSequence([seed, collection, block])``, so any
range of rows — and so any chunking, in any order, on any number of processes —
gives the same spectra. :func:`simulate_rows` makes a range of rows;
:func:`simulate_batch` is the in-memory API for the learning core.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.table import Table

from service.adapt import to_vacuum
from service.archive import classes as cl
from service.archive import lines as ll
from service.archive import metadata, physics
from service.archive.instruments import Instrument, instrument
from service.spectra.spectrum import Spectrum, SpectrumMeta
from service.vocabulary import BAD, DOUBLE_PEAK, FEATURE_WINDOW, SINGLE_PEAK

BLOCK = 512
COLLECTION_CODE = {"ondrejov": 1, "lamost": 2}
ARTEFACTS: tuple[str, ...] = ("cosmic", "dead", "sky", "zeros", "nans", "truncated")
#: Effective wavelengths (Å) of the LAMOST SN_U..SN_Z bands.
SN_BANDS = {"u": 3560.0, "g": 4700.0, "r": 6200.0, "i": 7500.0, "z": 8900.0}

#: (K, type) anchors for spectral types; subtypes by linear interpolation in log T.
_TYPES = [
    (30000, "B0"), (20000, "B2"), (15200, "B5"), (11400, "B8"), (9700, "A0"), (8200, "A5"),
    (7200, "F0"), (6440, "F5"), (5920, "G0"), (5610, "G5"), (5240, "K0"), (4410, "K5"),
    (3850, "M0"),
]  # fmt: skip


@dataclasses.dataclass
class Block:
    """Simulated spectra of rows ``start .. start+n`` of one collection.

    flux : (n, p) float64, in the file's units (relative for Ondrejov, 1e-17
        erg/s/cm²/Å-like for LAMOST, ADU for Ondrejov raw frames); NaN where a
        'nans' or truncated artefact removed data
    ivar : (n, p) float64 inverse variance (0 where there are no data)
    truth : column name → (n,) array: ground truth and metadata (see catalogue.py)
    """

    collection: str
    start: int
    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    truth: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return int(self.flux.shape[0])


def spectral_type(teff: np.ndarray) -> np.ndarray:
    """(n,) MK type strings ('B3', 'A7', 'K1') of effective temperatures (K)."""
    anchors_t = np.log10([t for t, _ in _TYPES])[::-1]
    # a running number: B0 = 0 ... M0 = 30, 10 subtypes per letter
    number = np.array([10 * "BAFGKM".index(s[0]) + int(s[1:]) for _, s in _TYPES])[::-1]
    value = np.interp(np.log10(teff), anchors_t, number)
    index = np.clip(np.round(value).astype(int), 0, 59)
    letters = np.array(list("BAFGKM"))[index // 10]
    return np.char.add(letters, (index % 10).astype(str))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _mixture(
    rng: np.random.Generator, n: int, parts: list[tuple[float, float, float]]
) -> np.ndarray:
    """Log-uniform mixture: parts = [(weight, lo, hi)], always two draws per row."""
    weights = np.array([w for w, _, _ in parts])
    pick = np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(n), side="right")
    pick = np.minimum(pick, len(parts) - 1)
    lo = np.log(np.array([p[1] for p in parts]))[pick]
    hi = np.log(np.array([p[2] for p in parts]))[pick]
    return np.exp(lo + (hi - lo) * rng.random(n))


def draw_stars(
    rng: np.random.Generator, n: int, collection: str, priors: np.ndarray
) -> dict[str, np.ndarray]:
    """Fine class and the star's physical parameters (always the same draws, in order)."""
    fine = rng.choice(len(cl.FINE_CLASSES), size=n, p=priors)
    name = np.array(cl.FINE_CLASSES)[fine]
    emission = np.isin(name, (*cl.EMISSION_FINE, cl.UNKNOWN))
    if collection == "ondrejov":
        teff_abs = _mixture(rng, n, [(0.7, 9000, 28000), (0.3, 4300, 9000)])
        teff_em = _mixture(rng, n, [(0.9, 10500, 30000), (0.1, 8000, 10500)])
    else:
        teff_abs = _mixture(rng, n, [(0.03, 10000, 25000), (0.17, 6800, 10000), (0.8, 3900, 6800)])
        teff_em = _mixture(rng, n, [(0.75, 10000, 28000), (0.25, 3900, 6000)])
    teff = np.where(emission, teff_em, teff_abs)
    vsini_hot = rng.uniform(30, 300, n)
    vsini_be = rng.uniform(150, 420, n)
    vsini_f = rng.uniform(8, 120, n)
    vsini_cool = rng.uniform(2, 25, n)
    vsini = np.where(teff > 7500, np.where(emission, vsini_be, vsini_hot), vsini_f)
    vsini = np.where(teff < 6300, vsini_cool, vsini)
    ebv_scale = 0.12 if collection == "ondrejov" else 0.3
    return {
        "fine_class": name,
        "teff": teff,
        "vsini": vsini,
        "rv": rng.normal(0.0, 25.0, n),
        "ebv": rng.exponential(ebv_scale, n),
        "airmass": rng.uniform(1.0, 2.2, n),
        "spectral_type": spectral_type(teff),
    }


def draw_emission(
    rng: np.random.Generator, stars: dict[str, np.ndarray], collection: str
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Circumstellar H-alpha components (velocity, σ, amplitude), each (n, 3), per class.

    Returns the profile parameters for the truth table too (NaN where not applicable):
    emission_amplitude (continuum units), peak_separation (km/s), vr_ratio (V/R
    peak heights), central_depression (share of the peak height), shell_depth.
    """
    fine = stars["fine_class"]
    n = int(fine.shape[0])
    hi_amp = 8.0 if collection == "ondrejov" else 5.0
    amp = _log_uniform(rng, 0.4, hi_amp, n)
    cool = stars["teff"] < 7000
    sigma_single = np.where(cool, rng.uniform(20, 60, n), rng.uniform(50, 160, n))
    separation = _log_uniform(rng, 90, 520, n)
    peak_width = rng.uniform(0.22, 0.4, n)
    vr = _log_uniform(rng, 0.6, 1.6, n)
    depression = rng.uniform(0.0, 0.6, n)
    shell_depth = rng.uniform(0.25, 0.75, n)
    shell_sigma = rng.uniform(12, 35, n)
    fill = rng.uniform(0.15, 0.7, n)
    fill_sigma = rng.uniform(50, 120, n)
    wind_v = rng.uniform(100, 500, n)
    wind_depth = rng.uniform(0.15, 0.6, n)
    wind_sigma = rng.uniform(30, 100, n)
    em_shift = rng.uniform(0, 60, n)
    weak = rng.uniform(0.05, 0.25, n)

    v = np.zeros((n, 3))
    s = np.ones((n, 3)) * 50.0
    a = np.zeros((n, 3))
    single = fine == SINGLE_PEAK
    v[single, 0], s[single, 0], a[single, 0] = 0.0, sigma_single[single], amp[single]
    disk = np.isin(fine, (DOUBLE_PEAK, "shell"))
    violet, red = amp * np.sqrt(vr), amp / np.sqrt(vr)
    sigma_peak = separation * peak_width
    v[disk, 0], s[disk, 0], a[disk, 0] = -separation[disk] / 2, sigma_peak[disk], violet[disk]
    v[disk, 1], s[disk, 1], a[disk, 1] = separation[disk] / 2, sigma_peak[disk], red[disk]
    at_centre = (violet + red) * np.exp(-0.5 * (0.5 / peak_width) ** 2)
    double = fine == DOUBLE_PEAK
    v[double, 2], s[double, 2] = 0.0, 0.25 * separation[double]
    a[double, 2] = -depression[double] * at_centre[double]
    shell = fine == "shell"
    v[shell, 2], s[shell, 2] = 0.0, shell_sigma[shell]
    a[shell, 2] = -(at_centre[shell] + shell_depth[shell])
    filled = fine == "emission-in-absorption"
    v[filled, 0], s[filled, 0], a[filled, 0] = 0.0, fill_sigma[filled], fill[filled]
    pcyg = fine == "p-cygni"
    v[pcyg, 0], s[pcyg, 0], a[pcyg, 0] = em_shift[pcyg], sigma_single[pcyg], amp[pcyg]
    v[pcyg, 1], s[pcyg, 1], a[pcyg, 1] = -wind_v[pcyg], wind_sigma[pcyg], -wind_depth[pcyg]
    unknown = fine == cl.UNKNOWN
    v[unknown, 0], s[unknown, 0], a[unknown, 0] = 0.0, fill_sigma[unknown], weak[unknown]

    nan = np.full(n, np.nan)
    amplitude = np.select(
        [single | pcyg, disk, filled, unknown], [amp, np.maximum(violet, red), fill, weak], nan
    )
    profile = {
        "emission_amplitude": amplitude,
        "peak_separation": np.where(disk, separation, nan),
        "vr_ratio": np.where(disk, vr, nan),
        "central_depression": np.where(double, depression, nan),
        "shell_depth": np.where(shell, shell_depth, nan),
    }
    return profile, (v, s, a)


def draw_observation(
    rng: np.random.Generator, n: int, collection: str, fine: np.ndarray
) -> dict[str, np.ndarray]:
    """Brightness and SNR: Ondrejov V 2-9 mag, SNR log-normal ~100; LAMOST r 10-17.8 mag,
    SN_R ≈ 60·10^(−0.2(r − 14.5)) with scatter (log-normal-like, 3-400)."""
    if collection == "ondrejov":
        magnitude = rng.uniform(2.0, 9.0, n)
        snr = np.exp(rng.normal(np.log(110.0), 0.55, n)) * 10 ** (-0.1 * (magnitude - 5.5))
        snr = np.where(fine == cl.UNKNOWN, snr * 0.25, snr)
        snr = np.clip(snr, 8.0, 600.0)
    else:
        u = rng.random(n)  # p(r) ∝ 10^(0.25 r) on [10, 17.8]: more faint stars
        k = 0.25 * np.log(10.0)
        lo, hi = np.exp(k * 10.0), np.exp(k * 17.8)
        magnitude = np.log(lo + u * (hi - lo)) / k
        snr = 60.0 * 10 ** (-0.2 * (magnitude - 14.5)) * np.exp(rng.normal(0.0, 0.35, n))
        snr = np.clip(snr, 3.0, 400.0)
    return {"magnitude": magnitude, "snr": snr}


def lamost_throughput(wavelength: np.ndarray) -> np.ndarray:
    """(p,) relative photon throughput: rises ~λ^3.5 to the red arm (so SN_G ≈ 0.4 SN_R for
    an F star, as in DR2 headers), falls off below 4000 Å and above 8900 Å, dips at the
    dichroic (5900 Å); sets how much noisier the spectrum ends are."""
    blue = 1.0 / (1.0 + np.exp(-(wavelength - 3850.0) / 120.0))
    red = 1.0 / (1.0 + np.exp((wavelength - 9400.0) / 250.0))
    dichroic = 1.0 - 0.35 * np.exp(-0.5 * ((wavelength - 5900.0) / 60.0) ** 2)
    ramp = np.minimum((wavelength / SN_BANDS["r"]) ** 3.5, 1.0 + (wavelength - 6200.0) / 8000.0)
    return blue * red * dichroic * ramp


def continuum(
    rng: np.random.Generator, inst: Instrument, vac: np.ndarray, stars: dict[str, np.ndarray]
) -> np.ndarray:
    """(n, p) continuum in the files' units.

    Ondrejov DataLink spectra are continuum-normalised by the archive, with a
    residual tilt and curvature of ~1 %; LAMOST spectra are relatively flux
    calibrated: black body × reddening × a smooth calibration error, scaled by
    the magnitude.
    """
    n = int(stars["teff"].shape[0])
    x = np.linspace(-1.0, 1.0, vac.shape[0])[None, :]
    tilt = rng.normal(0.0, 0.01, (n, 1))
    curve = rng.normal(0.0, 0.008, (n, 1))
    if inst.collection == "ondrejov":
        return 1.0 + tilt * x + curve * (x * x - 1.0 / 3.0)
    shape = physics.planck_shape(vac, stars["teff"]) * physics.extinction(vac, stars["ebv"])
    calibration = np.exp(12 * tilt * x + 10 * curve * x * x)
    scale = 800.0 * 10 ** (-0.4 * (stars["magnitude"] - 14.0))
    return scale[:, None] * shape * calibration


def add_noise(
    rng: np.random.Generator,
    inst: Instrument,
    vac: np.ndarray,
    model: np.ndarray,
    cont: np.ndarray,
    snr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Photon + background noise so that the continuum near H-alpha (LAMOST: r band) has
    signal-to-noise ``snr``. Returns (flux, ivar, per-band SNR for LAMOST)."""
    if inst.collection == "ondrejov":
        throughput = np.ones_like(vac)
        ref = np.searchsorted(vac, ll.HALPHA)
    else:
        throughput = lamost_throughput(vac)
        ref = np.searchsorted(vac, SN_BANDS["r"])
    background = 0.15  # sky + read noise, in units of the reference continuum counts
    ref_counts = (cont[:, ref] * throughput[ref])[:, None]
    c_ref = (1.0 + background) / snr[:, None] ** 2  # variance of 1 count-unit at the reference
    # sigma = sqrt((counts + background) * c_ref) in counts, back to flux units; in place
    sigma = np.maximum(model, 0.0)
    sigma *= throughput[None, :] / ref_counts
    sigma += background
    sigma *= c_ref
    np.sqrt(sigma, out=sigma)
    sigma *= ref_counts / throughput[None, :]
    flux = rng.standard_normal(model.shape, dtype=np.float32) * sigma
    flux += model
    ivar = sigma
    ivar *= sigma
    np.reciprocal(ivar, out=ivar)
    bands = {}
    if inst.collection == "lamost":
        cont_sigma = np.sqrt((cont * throughput / ref_counts + background) * c_ref) * ref_counts
        cont_sigma = cont_sigma / throughput[None, :]
        for band, centre in SN_BANDS.items():
            window = slice(*np.searchsorted(vac, [centre - 150.0, centre + 150.0]))
            ratio = cont[:, window] / cont_sigma[:, window]
            bands[f"sn_{band}"] = np.round(np.median(ratio, axis=1), 2)
    return flux, ivar, bands


def apply_artefacts(
    rng: np.random.Generator,
    vac: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    cont: np.ndarray,
    bad: np.ndarray,
    sigma_instrument: np.ndarray,
) -> np.ndarray:
    """Spoil the rows ``bad`` in place with one artefact each; return (n,) artefact names.

    cosmic: 1-4 spikes of 1-2 px, 1-8× the continuum, in the H-alpha window;
    dead: a run of 3-25 px at ~5 % of the flux (not flagged);
    sky: sky-line residuals of either sign plus an over-subtracted continuum;
    zeros: a run of 20-120 px of exact zeros with ivar 0;
    nans: the same run as NaN;
    truncated: no data (NaN, ivar 0) red- or blue-ward of a cut inside the window.
    """
    n, p = int(flux.shape[0]), int(flux.shape[1])
    kind = rng.integers(0, len(ARTEFACTS), n)
    names = np.where(bad, np.array(ARTEFACTS)[kind], "")
    lo, hi = np.searchsorted(vac, FEATURE_WINDOW)  # inside the features, where they show
    cols = np.arange(p)[None, :]
    start = rng.integers(lo, max(hi - 130, lo + 1), n)[:, None]
    run = rng.integers(3, 26, n)[:, None]
    long_run = rng.integers(20, 121, n)[:, None]
    median = np.median(cont, axis=1)[:, None]

    spikes = rng.integers(lo, hi - 1, (n, 4))
    spike_amp = rng.uniform(1.0, 8.0, (n, 4)) * (rng.random((n, 4)) < [1.0, 0.6, 0.4, 0.3])
    is_cosmic = names == "cosmic"
    rows = np.repeat(np.flatnonzero(is_cosmic), 4)
    if rows.size:
        pix = spikes[is_cosmic].ravel()
        amp = spike_amp[is_cosmic].ravel() * median[rows, 0]
        np.add.at(flux, (rows, pix), amp)
        np.add.at(flux, (rows, np.minimum(pix + 1, p - 1)), amp * rng.uniform(0, 0.6, rows.size))

    dead = (names == "dead")[:, None] & (cols >= start) & (cols < start + run)
    flux[dead] = (0.05 * median * np.ones((1, p)))[dead]

    is_sky = names == "sky"
    if is_sky.any():
        residual = np.zeros((int(is_sky.sum()), p))
        for centre in ll.SKY_LINES[(vac[0] < ll.SKY_LINES) & (vac[-1] > ll.SKY_LINES)]:
            k = residual.shape[0]
            amp = rng.normal(0.0, 2.0, k) * median[is_sky, 0]
            sig = np.full(k, float(np.interp(centre, vac, sigma_instrument)))
            physics.add_gaussians(residual, vac, np.full(k, centre), sig, amp)
        offset = rng.uniform(0.3, 1.3, int(is_sky.sum()))[:, None] * median[is_sky]
        flux[is_sky] += residual - offset

    gap = (cols >= start) & (cols < start + long_run)
    zeros = (names == "zeros")[:, None] & gap
    flux[zeros], ivar[zeros] = 0.0, 0.0
    nans = (names == "nans")[:, None] & gap
    flux[nans], ivar[nans] = np.nan, 0.0
    cut = rng.integers(lo + 20, hi - 20, n)[:, None]
    red_side = (rng.random(n) < 0.7)[:, None]
    missing = np.where(red_side, cols > cut, cols < cut)
    truncated = (names == "truncated")[:, None] & missing
    flux[truncated], ivar[truncated] = np.nan, 0.0
    return names


def simulate_block(
    collection: str, index: int, seed: int, priors: np.ndarray, size: int = BLOCK
) -> Block:
    """Rows ``index*size .. (index+1)*size`` of ``collection``, from their own seed."""
    inst = instrument(collection)
    code = COLLECTION_CODE[collection]
    rng = np.random.default_rng(np.random.SeedSequence([seed, code, index]))
    n = size
    vac = inst.wavelength if inst.medium == "vacuum" else to_vacuum(inst.wavelength)
    sigma_inst = inst.sigma_instrument(vac)

    stars = draw_stars(rng, n, collection, priors)
    shared, which = metadata.draw_shared(rng, stars["fine_class"], collection, seed)
    known = metadata.shared_stars(seed)
    for key in ("teff", "vsini", "ebv"):
        stars[key] = np.where(shared, known[key][which], stars[key])
    stars["spectral_type"] = spectral_type(stars["teff"])
    stars.update(draw_observation(rng, n, collection, stars["fine_class"]))
    profile, components = draw_emission(rng, stars, collection)
    stars["balmer_strength"] = ll.balmer_strength(stars["teff"])

    absorbed = physics.photosphere(vac, sigma_inst, stars)
    emitted = physics.circumstellar(vac, sigma_inst, stars["rv"], components)
    normalised = np.maximum(1.0 - absorbed, 0.02) + emitted
    normalised = np.maximum(normalised, 0.0)
    cont = continuum(rng, inst, vac, stars)
    model = cont * normalised
    flux, ivar, bands = add_noise(rng, inst, vac, model, cont, stars["snr"])
    bad = stars["fine_class"] == BAD
    artefact = apply_artefacts(rng, vac, flux, ivar, cont, bad, sigma_inst)

    resolved = physics.peaks_resolved(vac, normalised)
    visible = physics.emission_visible(vac, emitted, normalised, collection == "lamost")
    rows = np.arange(index * size, (index + 1) * size, dtype=np.int64)
    where = metadata.observation_metadata(rng, rows, collection, seed, code, shared, which)
    truth: dict[str, np.ndarray] = {
        "row": rows,
        **where,
        "fine_class": stars["fine_class"],
        "label": cl.observed_label(stars["fine_class"], resolved, visible),
        "teff": stars["teff"],
        "spectral_type": stars["spectral_type"],
        "vsini": stars["vsini"],
        "rv": stars["rv"],
        "ebv": stars["ebv"],
        "magnitude": stars["magnitude"],
        "snr": stars["snr"],
        "ew_halpha": physics.halpha_equivalent_width(vac, normalised),
        **profile,
        "peaks_resolved": resolved,
        "artefact": artefact,
        **bands,
    }
    truth["pipeline_class"], truth["subclass"] = pipeline_class(collection, truth)
    truth["exptime"] = np.round(rng.uniform(300.0, 3600.0, n), 1)
    if collection == "ondrejov":
        truth["form"] = raw_frames(rng, inst.wavelength, flux, ivar)
    return Block(collection, index * size, inst.wavelength.copy(), flux, ivar, truth)


def resolve_priors(collection: str, emission_fraction: float | None = None) -> np.ndarray:
    """Fine-class probabilities: the Ondrejov label counts, or the rare-emission pool."""
    if collection == "ondrejov":
        if emission_fraction is None:
            return cl.prior_vector(cl.source_priors())
        priors = cl.target_priors(emission_fraction, 0.0)
        priors[cl.UNKNOWN] = 0.0
        return cl.prior_vector(priors)
    fraction = cl.DEFAULT_EMISSION_FRACTION if emission_fraction is None else emission_fraction
    return cl.prior_vector(cl.target_priors(fraction))


def simulate_rows(
    collection: str,
    start: int,
    stop: int,
    seed: int,
    emission_fraction: float | None = None,
) -> Block:
    """Rows [start, stop) of a collection: the covering blocks, concatenated and sliced."""
    instrument(collection)  # refuses unknown collections by name
    priors = resolve_priors(collection, emission_fraction)
    first, last = start // BLOCK, (stop - 1) // BLOCK
    blocks = [simulate_block(collection, b, seed, priors) for b in range(first, last + 1)]
    cut = slice(start - first * BLOCK, stop - first * BLOCK)
    truth = {k: np.concatenate([b.truth[k] for b in blocks])[cut] for k in blocks[0].truth}
    return Block(
        collection,
        start,
        blocks[0].wavelength,
        np.concatenate([b.flux for b in blocks])[cut],
        np.concatenate([b.ivar for b in blocks])[cut],
        truth,
    )


def raw_frames(
    rng: np.random.Generator, wavelength: np.ndarray, flux: np.ndarray, ivar: np.ndarray
) -> np.ndarray:
    """Turn ~10 % of Ondrejov rows into raw IRAF frames in place: ADU, with the blaze.

    Returns (n,) 'raw' or 'datalink': the form of the file the archive holds.
    """
    n = int(flux.shape[0])
    raw = rng.random(n) < 0.1
    level = np.exp(rng.uniform(np.log(5e3), np.log(2e5), n))
    x = (wavelength - wavelength.mean()) / np.ptp(wavelength)
    blaze = 1.0 - rng.uniform(0.1, 0.5, n)[:, None] * (x * x)[None, :] + 0.1 * x[None, :]
    scale = np.where(raw[:, None], level[:, None] * blaze, 1.0)
    flux *= scale
    ivar /= scale * scale
    return np.where(raw, "raw", "datalink")


def pipeline_class(collection: str, truth: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(CLASS, SUBCLASS) a pipeline would give: LAMOST 'STAR' + MK type, 'Unknown' for
    most spoiled spectra; Ondrejov has no pipeline classes ('')."""
    n = int(truth["teff"].shape[0])
    if collection != "lamost":
        return np.full(n, ""), np.full(n, "")
    spoiled = np.isin(truth["artefact"], ("sky", "zeros", "nans", "truncated"))
    return (
        np.where(spoiled, "Unknown", "STAR"),
        np.where(spoiled, "Non", truth["spectral_type"]),
    )


def to_spectra(block: Block) -> list[Spectrum]:
    """:class:`~service.spectra.Spectrum` objects of a block's rows, as a reader would give.

    Ondrejov: air wavelengths; a truncated spectrum loses its no-data end (the
    archive's files are shorter). LAMOST: vacuum; mask = no data (ivar 0 with flux 0
    or NaN), as the LAMOST reader masks.
    """
    inst = instrument(block.collection)
    t = block.truth
    out = []
    for i in range(block.n):
        flux, ivar, wavelength = block.flux[i], block.ivar[i], block.wavelength
        mask = ~np.isfinite(flux) | ((flux == 0) & (ivar == 0))
        if block.collection == "ondrejov" and t["artefact"][i] == "truncated":
            keep = np.isfinite(flux)
            flux, ivar, wavelength, mask = flux[keep], ivar[keep], wavelength[keep], mask[keep]
        meta = SpectrumMeta(
            pubdid=str(t["pubdid"][i]),
            obsid=str(t["obsid"][i]),
            designation=str(t["designation"][i]),
            object=str(t["object"][i]),
            ra=float(t["ra"][i]),
            dec=float(t["dec"][i]),
            mjd=float(t["mjd"][i]),
            snr=float(t["snr"][i]),
            pipeline_class=str(t["pipeline_class"][i]),
            collection=block.collection,
            instrument="CCD700" if block.collection == "ondrejov" else "LAMOST",
            extra={"simulated": True, "label": str(t["label"][i])},
        )
        out.append(
            Spectrum(
                wavelength.copy(),
                flux.copy(),
                inst.medium,
                inst.resolving_power,
                ivar=ivar.copy(),
                mask=mask,
                meta=meta,
            )
        )
    return out


def simulate_batch(
    collection: str, n: int, seed: int, emission_fraction: float | None = None
) -> tuple[list[Spectrum], Table]:
    """``n`` simulated spectra of ``collection`` ('ondrejov' or 'lamost') and their truth.

    emission_fraction : None for the collection's default priors (Ondrejov: the
        label counts of the real archive; LAMOST: 1 % emission); otherwise the
        share of emission-line spectra (single + double peak fine classes).
    Returns (spectra, truth): truth is an astropy Table, row i ↔ spectra[i], with
    ``label`` ('single-peak', 'double-peak', 'absorption', 'bad', 'unknown'),
    ``fine_class`` and the profile parameters (see :mod:`service.archive.catalogue`).
    The same (collection, seed) gives the same rows as the archive on disk.
    """
    block = simulate_rows(collection, 0, n, seed, emission_fraction)
    return to_spectra(block), Table(block.truth)
