"""The simulator: deterministic, chunk-invariant, right priors, right media, real artefacts."""

from __future__ import annotations

import numpy as np
import pytest

from service.archive import classes as cl
from service.archive import simulate_batch, simulate_rows
from service.archive.instruments import LAMOST_COEFF0, LAMOST_COEFF1, instrument
from service.archive.simulate import BLOCK, apply_artefacts
from service.reasons import AlvoError


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


@pytest.mark.parametrize("collection", ["ondrejov", "lamost"])
def test_same_seed_same_spectra_other_seed_others(collection):
    one = simulate_rows(collection, 0, 40, seed=5)
    two = simulate_rows(collection, 0, 40, seed=5)
    other = simulate_rows(collection, 0, 40, seed=6)
    assert _same(one.flux, two.flux) and _same(one.ivar, two.ivar)
    assert all(_same(one.truth[k], two.truth[k]) for k in one.truth)
    assert not _same(one.flux, other.flux)


def test_any_chunking_gives_the_same_rows():
    whole = simulate_rows("lamost", 0, BLOCK + 200, seed=3)
    parts = [
        simulate_rows("lamost", a, b, seed=3)
        for a, b in [(0, 77), (77, BLOCK + 5), (BLOCK + 5, BLOCK + 200)]
    ]
    assert _same(whole.flux, np.concatenate([p.flux for p in parts]))
    for key in ("label", "obsid", "ra", "snr", "ew_halpha"):
        assert _same(whole.truth[key], np.concatenate([p.truth[key] for p in parts])), key


def test_source_priors_follow_the_ondrejov_labels():
    _, truth = simulate_batch("ondrejov", 4 * BLOCK, seed=11)
    n = len(truth)
    total = sum(cl.ONDREJOV_COUNTS.values())
    emission = np.isin(truth["fine_class"], list(cl.SINGLE_SPLIT)).mean()
    double = np.isin(truth["fine_class"], list(cl.DOUBLE_SPLIT)).mean()
    for observed, count in [
        (emission, cl.ONDREJOV_COUNTS["emission"]),
        (double, cl.ONDREJOV_COUNTS["double-peak"]),
        ((truth["label"] == "absorption").mean(), cl.ONDREJOV_COUNTS["absorption"]),
        ((truth["label"] == "unknown").mean(), cl.ONDREJOV_COUNTS["unknown"]),
    ]:
        p = count / total
        assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / n), (observed, p)


@pytest.mark.parametrize("fraction", [0.001, 0.03])
def test_target_pool_has_rare_emission(fraction):
    _, truth = simulate_batch("lamost", 4 * BLOCK, seed=12, emission_fraction=fraction)
    emission = np.isin(truth["fine_class"], cl.EMISSION_FINE).mean()
    sigma = np.sqrt(fraction * (1 - fraction) / len(truth))
    assert abs(emission - fraction) < 4 * sigma + 1e-3
    labelled = np.isin(truth["label"], ("single-peak", "double-peak")).mean()
    assert labelled <= emission  # weak emission reads as absorption
    if fraction >= 0.01:
        assert labelled >= 0.6 * emission


def test_bad_emission_fraction_is_a_named_error():
    with pytest.raises(AlvoError, match="BAD_PARAMETER"):
        simulate_batch("lamost", 10, seed=1, emission_fraction=1.5)
    with pytest.raises(AlvoError, match="UNKNOWN_COLLECTION"):
        simulate_batch("sdss", 10, seed=1)


def test_spectra_are_in_the_instruments_media_and_grids():
    source, _ = simulate_batch("ondrejov", 20, seed=2)
    target, truth = simulate_batch("lamost", 20, seed=2)
    assert {s.medium for s in source} == {"air"} and {s.resolving_power for s in source} == {13000}
    assert {s.medium for s in target} == {"vacuum"}
    full = [s for s in source if len(s.wavelength) == 1997]
    assert np.allclose(np.diff(full[0].wavelength), 0.25670607904715)
    lam = target[0].wavelength
    assert np.array_equal(lam, 10 ** (LAMOST_COEFF0 + LAMOST_COEFF1 * np.arange(lam.size)))
    assert [s.meta.pubdid for s in target] == list(truth["pubdid"])
    assert all(s.meta.pubdid.startswith("ivo://alvo.demo/lamost?") for s in target)


def test_emission_and_absorption_look_like_their_class():
    """Noise-free H-alpha EW: emission negative, absorption positive; disks resolved at R=13000."""
    _, truth = simulate_batch("ondrejov", 2 * BLOCK, seed=4)
    absorption = truth["ew_halpha"][truth["fine_class"] == "absorption"]
    single = truth["ew_halpha"][truth["fine_class"] == "single-peak"]
    assert (absorption > 0).all()
    assert np.median(single) < -1.0
    disks = truth["fine_class"] == "shell"
    assert truth["peaks_resolved"][disks].mean() > 0.9
    assert (truth["label"][disks] == "double-peak").mean() > 0.9


def test_low_resolution_smears_close_peaks_into_one():
    _, truth = simulate_batch("lamost", 4 * BLOCK, seed=9, emission_fraction=0.5)
    disk = truth["fine_class"] == "double-peak"
    close, wide = disk & (truth["peak_separation"] < 150), disk & (truth["peak_separation"] > 400)
    assert truth["peaks_resolved"][close].mean() < truth["peaks_resolved"][wide].mean()
    assert (truth["label"][close] == "single-peak").mean() > 0.7


def test_artefacts_are_really_there():
    inst = instrument("lamost")
    vac = inst.wavelength
    n = 600
    flux, ivar = np.ones((n, vac.size)), np.ones((n, vac.size))
    rng = np.random.default_rng(0)
    names = apply_artefacts(
        rng, vac, flux, ivar, np.ones_like(flux), np.ones(n, bool), inst.sigma_instrument(vac)
    )
    window = (vac > 6519) & (vac < 6732)
    assert set(names) == {"cosmic", "dead", "sky", "zeros", "nans", "truncated"}
    rows = {k: names == k for k in set(names)}
    assert (np.nanmax(flux[rows["cosmic"]][:, window], axis=1) >= 2.0).all()
    assert ((flux[rows["dead"]][:, window] == 0.05).sum(axis=1) >= 3).all()
    assert (np.nanmin(flux[rows["sky"]], axis=1) < 0.75).all()
    zeros = rows["zeros"]
    assert (((flux[zeros] == 0) & (ivar[zeros] == 0)).sum(axis=1) >= 20).all()
    assert (np.isnan(flux[rows["nans"]][:, window]).sum(axis=1) >= 20).all()
    truncated = flux[rows["truncated"]]
    assert (
        np.isnan(truncated[:, window]).any(axis=1) & ~np.isnan(truncated[:, window]).all(axis=1)
    ).all()
    assert (np.isnan(truncated[:, 0]) | np.isnan(truncated[:, -1])).all()
    clean = flux[rows["cosmic"]][:, ~window]
    assert np.allclose(clean, 1.0)  # nothing outside the window was touched


def test_simulated_spectra_adapt():
    from service.adapt import adapt

    spectra, _ = simulate_batch("ondrejov", 64, seed=8)
    batch = adapt(spectra)
    assert batch.features.shape == (64, 140)
    good = np.isfinite(batch.features).all(axis=1)
    assert good.sum() >= 60


def test_emission_filling_absorption_reads_as_absorption_only_in_the_survey():
    _, source = simulate_batch("ondrejov", 2 * BLOCK, seed=13)
    _, target = simulate_batch("lamost", 2 * BLOCK, seed=13, emission_fraction=0.5)
    filled_source = source["fine_class"] == "emission-in-absorption"
    filled_target = target["fine_class"] == "emission-in-absorption"
    assert (source["label"][filled_source] == "single-peak").mean() > 0.9
    hidden = target["label"][filled_target] == "absorption"
    assert 0 < hidden.mean() < 1
    assert (target["ew_halpha"][filled_target][hidden] > 0).all()  # net absorption
