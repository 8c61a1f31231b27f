"""Domain adaptation (service/adapt.py) against independent implementations.

Air/vacuum against specutils and PyAstronomy, blur against PyAstronomy's
instrumental broadening and scipy, flux-conserving rebin against SpectRes; then
the pipeline's handling of bad input, and the real Ondrejov/LAMOST pairs.
"""

from __future__ import annotations

import csv
import dataclasses

import astropy.units as u
import numpy as np
import pytest
from PyAstronomy import pyasl
from scipy.ndimage import gaussian_filter1d
from spectres import spectres
from specutils.utils.wcs_utils import air_to_vac, vac_to_air

from service.adapt import (
    AdaptConfig,
    adapt,
    adapt_array,
    blur_fixed_pixels,
    degrade_resolution,
    divide_continuum,
    kernel_sigma,
    rebin,
    scale,
    to_air,
    to_vacuum,
)
from service.reasons import AlvoError, Reason
from service.spectra import Spectrum, read_spectrum

RANGE = np.linspace(3500.0, 9500.0, 6001)
LAMOST_GRID = 10 ** (3.5682 + 1e-4 * np.arange(3909))  # log-linear, vacuum
CCD700_GRID = 6282.0 + 0.2567 * np.arange(1757)  # linear, air


def lines(lam: np.ndarray, centres=(6564.6,), depth=0.5, width=0.8) -> np.ndarray:
    """Continuum 1 with Gaussian absorption lines (σ = width Å)."""
    out = np.ones_like(lam)
    for c in centres:
        out -= depth * np.exp(-0.5 * ((lam - c) / width) ** 2)
    return out


def second_moment(lam: np.ndarray, profile: np.ndarray) -> float:
    """σ (Å) of an absorption profile on continuum 1."""
    w = 1.0 - profile
    mean = np.sum(w * lam) / np.sum(w)
    return float(np.sqrt(np.sum(w * (lam - mean) ** 2) / np.sum(w)))


# --------------------------------------------------------------------------- media


def test_to_vacuum_check_value_of_the_method():
    assert round(float(to_vacuum(6562.801)), 3) == 6564.614


@pytest.mark.parametrize("method", ["Morton2000", "Ciddor1996"])
def test_to_vacuum_and_to_air_agree_with_specutils(method):
    assert np.abs(to_vacuum(RANGE) - air_to_vac(RANGE * u.AA, method=method).value).max() < 1e-3
    assert np.abs(to_air(RANGE) - vac_to_air(RANGE * u.AA, method=method).value).max() < 1e-3


def test_to_vacuum_and_to_air_agree_with_pyastronomy():
    assert np.abs(to_vacuum(RANGE) - pyasl.airtovac2(RANGE)).max() < 1e-3
    assert np.abs(to_air(RANGE) - pyasl.vactoair2(RANGE)).max() < 1e-3


def test_to_air_inverts_to_vacuum_on_batches():
    batch = np.stack([RANGE, RANGE + 0.5])
    assert np.abs(to_air(to_vacuum(batch)) - batch).max() < 1e-9
    assert to_vacuum(batch).shape == batch.shape


# ------------------------------------------------------------------------ blurring

R_SOURCE, R_TARGET = 13000.0, 1800.0
R_EFFECTIVE = 1.0 / np.sqrt(1 / R_TARGET**2 - 1 / R_SOURCE**2)


def test_degrade_resolution_matches_pyastronomy_on_a_linear_grid():
    """PyAstronomy uses one σ at the mean λ: compare on a short stretch around the line."""
    lam = np.arange(6500.0, 6630.0, 0.25)
    flux = lines(lam, centres=(lam.mean(),))
    ours = degrade_resolution(lam, flux, R_SOURCE, R_TARGET)
    ref = pyasl.instrBroadGaussFast(lam, flux, R_EFFECTIVE, edgeHandling="firstlast", maxsig=6.0)
    inner = slice(60, -60)
    assert np.abs(ours - ref)[inner].max() < 2e-4  # line depth 0.5
    assert np.abs(ours - flux).max() > 0.1  # and it really blurred


def test_degrade_resolution_matches_pyastronomy_on_a_log_linear_grid():
    """On a log-linear grid λ/R is one σ in ln λ: PyAstronomy's broadGaussFast in ln λ."""
    lam = LAMOST_GRID[(LAMOST_GRID > 6300) & (LAMOST_GRID < 6800)]
    flux = lines(lam, centres=(6564.6,), width=1.0)
    ours = degrade_resolution(lam, flux, R_SOURCE, R_TARGET)
    sigma_ln = 1.0 / (R_EFFECTIVE * 2.0 * np.sqrt(2.0 * np.log(2.0)))
    ref = pyasl.broadGaussFast(np.log(lam), flux, sigma_ln, edgeHandling="firstlast", maxsig=6.0)
    assert np.abs(ours - ref)[20:-20].max() < 2e-4


def test_kernel_follows_wavelength_on_a_linear_grid():
    lam = np.arange(4000.0, 9000.0, 0.25)
    flux = lines(lam, centres=(4500.0, 8500.0), width=0.3)
    out = degrade_resolution(lam, flux, R_SOURCE, R_TARGET)
    blue = second_moment(lam[(lam > 4460) & (lam < 4540)], out[(lam > 4460) & (lam < 4540)])
    red = second_moment(lam[(lam > 8430) & (lam < 8570)], out[(lam > 8430) & (lam < 8570)])
    expect = kernel_sigma(np.array([4500.0, 8500.0]), R_SOURCE, R_TARGET)
    expect = np.sqrt(expect**2 + 0.3**2)
    assert blue == pytest.approx(expect[0], rel=0.02)
    assert red == pytest.approx(expect[1], rel=0.02)


def test_kernel_is_constant_in_pixels_on_a_log_linear_grid():
    flux = np.ones((1, LAMOST_GRID.size))
    flux[0, [800, 3000]] = 0.0  # two one-pixel dips far apart in wavelength
    out = degrade_resolution(LAMOST_GRID, flux, 20000.0, R_TARGET)[0]
    np.testing.assert_allclose(out[790:811], out[2990:3011], atol=1e-12)


def test_no_blur_when_source_is_not_sharper_than_target():
    flux = lines(LAMOST_GRID)[None, :]
    np.testing.assert_array_equal(degrade_resolution(LAMOST_GRID, flux, 1800.0, 1800.0), flux)


def test_degrade_resolution_rows_with_their_own_resolving_power():
    flux = np.stack([lines(CCD700_GRID)] * 3)
    out = degrade_resolution(CCD700_GRID, flux, np.array([13000.0, 1500.0, 13000.0]), R_TARGET)
    np.testing.assert_array_equal(out[1], flux[1])
    np.testing.assert_allclose(out[0], out[2])
    assert not np.allclose(out[0], flux[0])


def test_blur_fixed_pixels_is_the_original_gaussian_filter():
    flux = lines(CCD700_GRID, centres=(6400.0, 6563.0))
    inner = slice(40, -40)
    np.testing.assert_allclose(
        blur_fixed_pixels(flux, 7.0)[inner], gaussian_filter1d(flux, 7.0)[inner], atol=1e-12
    )


def test_blur_skips_nan_instead_of_spreading_it():
    flux = lines(CCD700_GRID)
    flux[500] = np.nan
    out = degrade_resolution(CCD700_GRID, flux, R_SOURCE, R_TARGET)
    assert np.isfinite(out).all()


# ---------------------------------------------------------------------- rebinning

GRID = AdaptConfig().grid()


@pytest.mark.parametrize("lam", [CCD700_GRID + 2.0, LAMOST_GRID], ids=["linear", "log-linear"])
def test_flux_conserving_rebin_matches_spectres(lam):
    rng = np.random.default_rng(3)
    flux = lines(lam, width=2.0) + 0.05 * rng.standard_normal(lam.size)
    ours = rebin(lam, flux, GRID, "flux-conserving")
    np.testing.assert_allclose(ours, spectres(GRID, lam, flux, verbose=False), atol=1e-12)


def test_linear_rebin_is_interpolation():
    flux = np.stack([lines(LAMOST_GRID), 2 * lines(LAMOST_GRID)])
    out = rebin(LAMOST_GRID, flux, GRID, "linear")
    np.testing.assert_allclose(out[1], 2 * np.interp(GRID, LAMOST_GRID, flux[0]), atol=1e-12)


def test_flux_conserving_rebin_conserves_the_integral():
    lam = CCD700_GRID + 2.0
    flux = lines(lam, width=1.0)
    out = rebin(lam, flux, GRID, "flux-conserving")
    step = GRID[1] - GRID[0]
    inside = (lam > GRID[0] - step / 2) & (lam < GRID[-1] + step / 2)
    assert np.sum(1 - out) * step == pytest.approx(np.sum(1 - flux[inside]) * 0.2567, rel=5e-3)


def test_rebin_refuses_a_spectrum_that_misses_the_window():
    with pytest.raises(AlvoError) as info:
        rebin(CCD700_GRID[:1000], np.ones(1000), GRID)
    assert info.value.reason is Reason.NO_HALPHA_COVERAGE


def test_a_nan_pixel_only_touches_its_own_bins():
    flux = lines(LAMOST_GRID)
    flux[np.searchsorted(LAMOST_GRID, 6600.0)] = np.nan
    out = rebin(LAMOST_GRID, flux, GRID, "flux-conserving")
    assert np.isfinite(out).sum() >= GRID.size - 1


# ------------------------------------------------------------------------ scaling


def test_scalings():
    x = np.random.default_rng(0).normal(5, 3, (4, 140))
    z = scale(x, "zscore")
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1)
    m = scale(x, "minmax")
    np.testing.assert_allclose(m.min(axis=1), -1)
    np.testing.assert_allclose(m.max(axis=1), 1)
    assert np.isnan(scale(np.ones((1, 140)), "zscore")).all()
    np.testing.assert_array_equal(scale(x, "none"), x)


def test_continuum_division_flattens_a_sloped_spectrum():
    grid = AdaptConfig().grid()
    line = 2.0 + 1e-3 * (grid - 6519.0)
    profile = 1.0 + 0.8 * np.exp(-0.5 * ((grid - 6564.6) / 3.0) ** 2)  # emission at H-alpha
    flat = divide_continuum(np.stack([line * profile, -line]), grid)
    np.testing.assert_allclose(flat[0], profile, rtol=1e-6)
    assert np.isnan(flat[1]).all()  # a negative continuum cannot be divided out


def test_continuum_option_makes_a_slope_irrelevant():
    """Same star, two flux calibrations: equal features with the continuum step only."""
    grid = np.linspace(6450.0, 6800.0, 1500)
    star = 1.0 - 0.6 * np.exp(-0.5 * ((grid - 6564.6) / 4.0) ** 2)
    sloped = star * (1.0 + 2e-3 * (grid - 6450.0))
    flux = np.stack([star, sloped])
    flat = adapt_array(grid, flux, config=AdaptConfig(continuum="linear")).features
    plain = adapt_array(grid, flux, config=AdaptConfig(continuum="none")).features
    np.testing.assert_allclose(flat[0], flat[1], atol=2e-3)
    assert np.abs(plain[0] - plain[1]).max() > 0.1


# ------------------------------------------------------------------ configuration


def test_config_round_trip_and_fingerprint():
    config = AdaptConfig(rebin="linear")
    again = AdaptConfig.from_dict(config.to_dict())
    assert again == config and again.fingerprint == config.fingerprint
    assert config.fingerprint != AdaptConfig().fingerprint
    assert AdaptConfig().fingerprint == AdaptConfig().fingerprint
    np.testing.assert_array_equal(AdaptConfig().grid(), np.linspace(6519, 6732, 140))
    assert AdaptConfig.original().blur == "fixed-pixels"


@pytest.mark.parametrize(
    "bad",
    [
        {"blur": "boxcar"},
        {"rebin": "spline"},
        {"start": 7000.0},
        {"colour": "red"},
        {"continuum": "spline"},
        {"continuum_edge_px": 1},
    ],
)
def test_config_refuses_nonsense_with_a_reason(bad):
    with pytest.raises(AlvoError) as info:
        AdaptConfig.from_dict({**AdaptConfig().to_dict(), **bad})
    assert info.value.reason is Reason.BAD_PARAMETER


def test_config_refuses_features_of_another_algorithm_version():
    with pytest.raises(AlvoError):
        AdaptConfig.from_dict({**AdaptConfig().to_dict(), "algorithm_version": 0})


# ------------------------------------------------------------------------ pipeline


def ondrejov_like(shift: float = 0.0, emission: bool = False) -> Spectrum:
    lam = CCD700_GRID + shift
    flux = lines(lam, centres=(6562.801,))
    if emission:
        flux += 1.5 * np.exp(-0.5 * ((lam - 6562.801) / 1.0) ** 2)
    return Spectrum(lam, 1000 * flux, "air", 13000.0)


def lamost_like() -> Spectrum:
    return Spectrum(LAMOST_GRID, lines(LAMOST_GRID, width=2.0), "vacuum", 1800.0)


def test_air_spectrum_lands_on_the_vacuum_grid():
    batch = adapt([ondrejov_like()])
    assert batch.failures == {}
    assert abs(GRID[np.argmin(batch.features[0])] - 6564.614) < GRID[1] - GRID[0]
    assert batch.features.dtype == np.float32 and batch.features.shape == (1, 140)


def test_adapt_keeps_order_and_groups_by_grid():
    spectra = [ondrejov_like(0.0), lamost_like(), ondrejov_like(0.1, True), ondrejov_like(0.0)]
    batch = adapt(spectra)
    assert batch.failures == {}
    for i, spectrum in enumerate(spectra):
        alone = adapt_array(
            spectrum.wavelength,
            spectrum.flux[None],
            None,
            spectrum.medium,
            spectrum.resolving_power,
        )
        np.testing.assert_allclose(batch.features[i], alone.features[0], atol=1e-6)
    np.testing.assert_array_equal(batch.features[0], batch.features[3])
    assert batch.features[2].max() > 3  # the emission line stands out


def test_big_and_small_batches_give_the_same_features():
    """Large batches use one combined blur-rebin matrix, small ones blur then rebin."""
    spectrum = ondrejov_like(emission=True)
    flux = np.repeat(spectrum.flux[None], 150, axis=0)
    big = adapt_array(spectrum.wavelength, flux, None, "air", 13000.0).features
    small = adapt_array(spectrum.wavelength, flux[:1], None, "air", 13000.0).features
    np.testing.assert_allclose(big, np.repeat(small, 150, axis=0), atol=1e-5)


def test_lamost_axes_of_different_length_share_one_group():
    long, short = lamost_like(), lamost_like()
    short.wavelength, short.flux, short.mask = (
        short.wavelength[:3890],
        short.flux[:3890],
        short.mask[:3890],
    )
    batch = adapt([long, short])
    np.testing.assert_array_equal(batch.features[0], batch.features[1])


def test_broken_axes_are_named():
    backwards = lamost_like()
    backwards.wavelength = backwards.wavelength[::-1].copy()
    ragged = lamost_like()
    ragged.flux = ragged.flux[:-5]
    batch = adapt([backwards, ragged, lamost_like()])
    assert batch.failures[0].reason is Reason.BAD_WAVELENGTH
    assert batch.failures[1].reason is Reason.BAD_FLUX
    assert 2 not in batch.failures


def test_bulk_arrays_are_adapted_in_chunks(monkeypatch):
    import service.adapt

    flux = np.stack([lines(LAMOST_GRID, width=w) for w in np.linspace(1.5, 4.0, 7)])
    flux[4, :] = np.nan  # a failure in the second chunk keeps its row number
    whole = adapt_array(LAMOST_GRID, flux)
    monkeypatch.setattr(service.adapt, "CHUNK_ROWS", 3)
    chunked = adapt_array(LAMOST_GRID, flux)
    np.testing.assert_array_equal(chunked.features, whole.features)
    assert list(chunked.failures) == list(whole.failures) == [4]
    assert adapt_array(LAMOST_GRID, flux[:0]).features.shape == (0, 140)
    assert adapt([]).features.shape == (0, 140)


def test_failures_are_named_and_rows_are_nan():
    short = Spectrum(CCD700_GRID[:1000], np.ones(1000), "air", 13000.0)
    flat = Spectrum(LAMOST_GRID, np.ones(LAMOST_GRID.size), "vacuum", 1800.0)
    holey = lamost_like()
    holey.mask[(LAMOST_GRID > 6550) & (LAMOST_GRID < 6600)] = True
    empty = Spectrum(LAMOST_GRID, np.full(LAMOST_GRID.size, np.nan), "vacuum", 1800.0)
    batch = adapt([short, lamost_like(), flat, holey, empty])
    assert {i: e.reason for i, e in batch.failures.items()} == {
        0: Reason.NO_HALPHA_COVERAGE,
        2: Reason.BAD_FLUX,
        3: Reason.TOO_MANY_MASKED,
        4: Reason.BAD_FLUX,
    }
    assert np.isnan(batch.features[[0, 2, 3, 4]]).all() and np.isfinite(batch.features[1]).all()


def test_small_masked_gaps_are_bridged_and_counted():
    clean = lamost_like()
    gappy = lamost_like()
    hit = np.searchsorted(LAMOST_GRID, 6620.0)
    gappy.flux[hit] = np.nan
    gappy.mask[hit + 10] = True
    gappy.flux[hit + 10] = 1e6  # a cosmic the pipeline masked: must not show
    batch = adapt([clean, gappy])
    assert batch.failures == {}
    assert batch.coverage[0] == 1.0 and 0.95 < batch.coverage[1] < 1.0
    np.testing.assert_allclose(batch.features[1], batch.features[0], atol=0.05)


def test_lamost_is_not_blurred_and_ccd700_is():
    fixed = AdaptConfig(blur="fixed-pixels")
    none = AdaptConfig(blur="none")
    lamost = [lamost_like()]
    np.testing.assert_array_equal(adapt(lamost).features, adapt(lamost, none).features)
    np.testing.assert_array_equal(adapt(lamost, fixed).features, adapt(lamost, none).features)
    ccd = [ondrejov_like()]
    assert adapt(ccd).features.min() > adapt(ccd, none).features.min() + 0.5


def test_original_configuration_scales_to_plus_minus_one():
    batch = adapt([ondrejov_like(), lamost_like()], AdaptConfig.original())
    assert batch.failures == {}
    np.testing.assert_allclose(batch.features.min(axis=1), -1, atol=1e-6)
    np.testing.assert_allclose(batch.features.max(axis=1), 1, atol=1e-6)


def test_adapt_array_with_ragged_rows_padded_by_nan():
    flux = np.stack([lines(LAMOST_GRID)] * 2)
    flux[1, 2000:] = np.nan  # shorter spectrum, ends before H-alpha (6200 Å)
    batch = adapt_array(LAMOST_GRID, flux, config=dataclasses.replace(AdaptConfig(), n=70))
    assert list(batch.failures) == [1] and batch.failures[1].reason is Reason.NO_HALPHA_COVERAGE
    assert batch.features.shape == (2, 70)


# ----------------------------------------------------------------------- real data


def test_real_pairs_adapt_and_emission_twins_match(real_data):
    from service.commands.adapt import compare_pair

    with open(real_data / "pairs.csv", newline="") as handle:
        pairs = list(csv.DictReader(handle))
    spectra = [
        read_spectrum(real_data / p[key]) for p in pairs for key in ("ondrejov_file", "lamost_file")
    ]
    batch = adapt(spectra)
    assert batch.failures == {}
    assert np.isfinite(batch.features).all()
    for pair in pairs:
        if pair["ondrejov_label"] == "emission":
            source = read_spectrum(real_data / pair["ondrejov_file"])
            target = read_spectrum(real_data / pair["lamost_file"])
            numbers = compare_pair(source, target, AdaptConfig())
            rms_fixed, r_fixed, rms_r, r_r, _, rms_best, _, _, r_continuum = numbers
            assert r_fixed > 0.98 and r_r > 0.98 and r_continuum > 0.98
            assert rms_best <= min(rms_fixed, rms_r) + 1e-12


def test_real_emission_star_peaks_at_halpha(real_data):
    files = ["ondrejov/gamma-cas-emission.fits", "ondrejov/bt-cmi-ondrejov.fits"]
    batch = adapt([read_spectrum(real_data / f) for f in files])
    assert batch.failures == {}
    for row in batch.features:
        assert abs(GRID[np.argmax(row)] - 6564.6) < 3.0


def test_zero_flux_dropouts_at_the_window_edge_are_bridged():
    clean = lamost_like()
    dropped = lamost_like()
    dropped.flux[LAMOST_GRID > 6732.5] = 0.0  # LAMOST writes 0 past its good range
    batch = adapt([clean, dropped])
    assert batch.failures == {} and batch.coverage[1] < 1.0
    np.testing.assert_allclose(batch.features[1], batch.features[0], atol=0.02)


# --------------------------------------------------------------------------- CLI


def test_plot_spectrum_command_writes_a_png(real_data, artifacts, tmp_path):
    from service.cli import main

    out = artifacts / "adapt-plot-spectrum.png"
    files = [
        real_data / "ondrejov/gamma-cas-emission.fits",
        real_data / "lamost-dr1/bt-cmi-lamost.fits",
    ]
    assert main(["plot", "spectrum", *map(str, files), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_adapt_pairs_command_prints_the_table(real_data, tmp_path, capsys):
    from service.cli import main

    (tmp_path / "pairs.csv").write_text(
        "ondrejov_file,lamost_file,ondrejov_label\n"
        f"{real_data / 'ondrejov/ub240016.fits'},"
        f"{real_data / 'lamost-dr1/spec-56284-GAC122S02V2_sp14-183.fits'},emission\n"
    )
    table = tmp_path / "table.csv"
    assert main(["adapt", "pairs", "--data", str(tmp_path), "--csv", str(table)]) == 0
    printed = capsys.readouterr().out
    assert "| ub240016 |" in printed and "mean of 1" in printed
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 1 and float(rows[0]["r_resolving"]) > 0.98
